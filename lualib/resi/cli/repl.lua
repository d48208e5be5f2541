--- resi repl: the REPL (resi.repl) on a terminal or on piped input.
---
--- On a terminal: a banner, libedit line editing through
--- resi.lineedit_core driven by the loop (background tasks keep running
--- while the prompt waits, and their output appears above the prompt with
--- the partial input redrawn), history (resi.repl.history), Tab completion
--- (resi.repl.complete). Keys as Node's REPL: Ctrl-C while an entry runs
--- cancels its task (a runaway pure-Lua loop is interrupted by the C
--- handler armed on its coroutine), Ctrl-C on a partial entry clears it,
--- Ctrl-C twice on an empty line or Ctrl-D exits. SIGWINCH resizes;
--- SIGTERM and SIGHUP restore the terminal and exit.
---
--- Stdin not a terminal: entries are read line by line (with continuation)
--- with no prompt, no banner and no colour; values go to stdout, errors to
--- stderr, and the exit status is 1 when an entry failed.
local task = require "resi.task"
local repl = require "resi.repl"
local help = require "resi.repl.help"
local context = require "resi.repl.context"

local usage = [=[
usage: resi repl [--sim] [-e CODE] [FILE [ARGS...]]

The resi REPL: every entry runs in its own task, so provider calls, HTTP
and sleeps just work. FILE or CODE runs first (its globals stay), then the
prompt. With stdin not a terminal, entries are read from stdin with no
prompt and the exit status is 1 if one failed.

Options:
  --sim        start the provider sandbox (resi sim) in this process with
               generated accounts; up, oxy and rf talk to it
  -e CODE      run CODE first (may be given more than once)

At the prompt: help(), help(rf), help(rf.generate); .help .exit .clear
.load FILE .tasks .cancel N. History: $RESI_HISTORY (empty: off), else
$XDG_STATE_HOME/resi/history (~/.local/state/resi/history).]=]

local M = {}

--- Parses the command line: {sim, code (list), file, args}; raises a usage
--- error (argparse's) on a bad option.
---@param args string[]
---@return table
function M.parse(args)
  local o, i = { code = {}, args = {} }, 1
  while i <= #args do
    local a = args[i]
    if a == "--sim" then o.sim = true
    elseif a == "-e" or a == "--eval" then
      i = i + 1
      if args[i] == nil then require("resi.argparse").usage_error(a .. " needs a chunk of code") end
      o.code[#o.code + 1] = args[i]
    elseif a == "--" then
      o.file = args[i + 1]
      for j = i + 2, #args do o.args[#o.args + 1] = args[j] end
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      require("resi.argparse").usage_error("unknown option " .. a)
    else
      o.file = a
      for j = i + 1, #args do o.args[#o.args + 1] = args[j] end
      break
    end
    i = i + 1
  end
  return o
end

-- Runs -e CODE and FILE in the session (no echo). False when one failed.
local function run_first(session, o)
  local ok = true
  for _, code in ipairs(o.code) do ok = session:eval(code, { chunkname = "(command line)", echo = false }) and ok end
  if o.file then
    local f, err = io.open(o.file, "rb")
    if not f then
      session.failures = session.failures + 1
      session:say_error("resi repl: cannot open " .. o.file .. ": " .. tostring(err))
      return false
    end
    local src = f:read("a"):gsub("^#![^\n]*", "")
    f:close()
    ok = session:eval(src, { chunkname = o.file, echo = false }) and ok
  end
  return ok
end

-- ---- reading lines without blocking the loop ------------------------------

-- Reads the next chunk of stdin in the thread pool: the text, or nil at
-- the end (or on an error).
local function read_chunk()
  local uv = require "luv"
  local err, data = task.await(function(done) uv.fs_read(0, 65536, -1, done) end)
  if err or data == nil or data == "" then return nil end
  return data
end

--- An iterator over stdin's lines (the last one may lack its newline),
--- read without blocking the loop.
---@return fun(): string|nil
function M.stdin_lines()
  local buf, eof = "", false
  return function()
    while true do
      local nl = buf:find("\n", 1, true)
      if nl then
        local line = buf:sub(1, nl - 1):gsub("\r$", "")
        buf = buf:sub(nl + 1)
        return line
      end
      if eof then
        if buf == "" then return nil end
        local line = buf
        buf = ""
        return line
      end
      local data = read_chunk()
      if data then buf = buf .. data else eof = true end
    end
  end
end

--- Feeds lines to the session one entry at a time, waiting for each
--- (piped stdin, or a terminal without line editing). opts.prompt(text),
--- when given, shows the prompt; opts.on_entry(src) sees accepted entries.
---@param session table
---@param lines fun(): string|nil
---@param opts? {prompt?: fun(text: string), on_entry?: fun(src: string), exit?: fun()}
function M.feed(session, lines, opts)
  opts = opts or {}
  local prompt = opts.prompt or function() end
  local hooks = { exit = opts.exit or function() os.exit(session.failures > 0 and 1 or 0) end,
    clear = function() session:reset() end }
  prompt("> ")
  for line in lines do
    if not session:pending() and help.is_command(line) then
      help.command(session, line, hooks)
    else
      local r, src = session:submit(line)
      if type(r) == "table" then
        if opts.on_entry then opts.on_entry(src) end
        pcall(r.wait, r)
      end
    end
    prompt(session:pending() and ".. " or "> ")
  end
  if session:pending() then
    session:clear_buffer()
    session.failures = session.failures + 1
    session:say_error("stdin: unfinished entry at the end of input (syntax error at <eof>)")
  end
end

-- ---- the terminal ---------------------------------------------------------

-- The banner: version, how to get help, the sandbox when started.
local function banner(sim)
  local lines = { ("resi %s (%s): every entry runs as a task. help() for help, .exit or Ctrl-D to leave.")
    :format(require("resi").version, _VERSION) }
  if sim then lines[#lines + 1] = context.sim_banner(sim) end
  return table.concat(lines, "\n") .. "\n"
end

local Term = {}
Term.__index = Term

--- Writes text above the prompt while it is shown, else straight out.
---@param text string
function Term:write(text)
  if self.prompting then self.ed:print(text) else
    io.stdout:write(text)
    io.stdout:flush()
  end
end

--- Routes print, io.write and resi.log through the terminal writer.
---@return nil
function Term:route_output()
  local write = function(text) self:write(text) end
  self.saved = { print = _G.print, write = io.write }
  _G.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    write(table.concat(parts, "\t", 1, parts.n) .. "\n")
  end
  io.write = function(...) -- luacheck: ignore 122 (the prompt's writer, while it is up)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    write(table.concat(parts, "", 1, parts.n))
    return io.stdout
  end
  local sink = { write = function(f, ...) write(table.concat({ ... })) return f end, flush = function() end }
  require("resi.log").configure { file = sink }
  if require("resi.core").isatty(2) then io.stderr = M.file_proxy(io.stderr, write) end -- luacheck: ignore 122
end

--- A stand-in for a file whose write goes through `write` (the prompt's
--- writer); its other methods go to the file. Task failure reports and
--- other stderr writes then appear above the prompt, not inside it.
---@param file file*
---@param write fun(text: string)
---@return table
function M.file_proxy(file, write)
  local proxy = {}
  proxy.write = function(_, ...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    write(table.concat(parts, "", 1, parts.n))
    return proxy
  end
  proxy.flush = function() return proxy end
  return setmetatable(proxy, { __index = function(_, k)
    local v = file[k]
    if type(v) ~= "function" then return v end
    return function(_, ...) return v(file, ...) end
  end })
end

--- Leaves: restores the terminal, stops the sandbox, exits with status.
---@param status integer
function Term:exit(status)
  if self.ed then pcall(self.ed.stop, self.ed) end
  self.prompting = false
  if self.sim then pcall(context.stop_sim, self.sim) end
  io.stdout:flush()
  os.exit(status or 0)
end

--- Shows the prompt and reads the next line.
---@return nil
function Term:prompt()
  self.prompting = true
  self.ed:start(self.session:pending() and ".. " or "> ", function(line) self:on_line(line) end)
end

--- Runs an accepted entry's task: the prompt goes while it runs (Ctrl-C
--- cancels it) and comes back when it ends.
---@param t table the entry's task
function Term:run_entry(t)
  self.prompting = false
  self.ed:stop()
  self.le.arm_interrupt(t.co)
  task.spawn(function()
    pcall(t.wait, t)
    self.le.arm_interrupt(nil)
    if self.session.entry == t then self.session.entry = nil end
    if self.cancelling == t then
      self.cancelling, self.session.interrupted = nil, false
    end
    self:prompt()
  end)
end

--- Runs a dot command in a task, then prompts again.
---@param line string
function Term:run_command(line)
  local t = task.spawn(function()
    help.command(self.session, line, { exit = function() self:exit(0) end, clear = function() self.session:reset() end })
  end)
  self.session.entry = t
  self:run_entry(t)
end

--- One line from the editor (nil: Ctrl-D).
---@param line string|nil
function Term:on_line(line)
  if line == nil then return self:exit(0) end
  self.armed_exit = false
  local session = self.session
  if not session:pending() and help.is_command(line) then
    self:remember(line)
    return self:run_command(line)
  end
  local r, src = session:submit(line)
  if r == "more" then return self.ed:set_prompt(".. ") end
  if r == "empty" then return end
  self:remember(src)
  self:run_entry(r)
end

--- Adds an accepted entry to the editor's history and (before it runs) to
--- the history file; a secret-bearing entry goes to neither (Up-arrow would
--- put the key back on the screen).
---@param src string
function Term:remember(src)
  if not require("resi.repl.history").allowed(src) then return end
  self.ed:history_add(src)
  if self.history then self.history:add(src) end
end

--- Ctrl-C (count: SIGINTs since the last call), as Node's REPL: cancels
--- the running entry; on a partial entry (text on the line, read from
--- libedit's buffer with ed:line(), or earlier lines of an unfinished
--- entry) clears it; on an empty line shows how to exit, and a second
--- Ctrl-C with nothing typed in between (ed:typed() == 0, so typing and
--- deleting asks once more, never exits unexpectedly) exits.
---@param count integer
function Term:on_interrupt(count)
  local session = self.session
  if session.entry then
    self.le.arm_interrupt(nil) -- the entry is waiting: cancel it, no hook needed
    self.cancelling = session.entry
    session.entry:cancel()
    return
  end
  if session.interrupted then -- this SIGINT already stopped a runaway entry
    session.interrupted = false
    return
  end
  local partial = session:pending() or (self.ed:line() or "") ~= ""
  local again = self.armed_exit and self.ed:typed() == 0
  if not partial and (again or (math.tointeger(count) or 1) > 1) then return self:exit(0) end
  session:clear_buffer()
  self.ed:clear_line()
  self.ed:set_prompt("> ")
  self.armed_exit = not partial
  if partial then return end
  self.ed:print("(To exit, press Ctrl+C again or Ctrl+D or type .exit)\n")
end

--- Signal handlers: SIGWINCH resizes, SIGTERM/SIGHUP leave cleanly.
---@return nil
function Term:signals()
  local uv = require "luv"
  local function on(name, fn)
    local h = uv.new_signal()
    h:start(name, fn)
    uv.unref(h)
  end
  on("sigwinch", function() self.ed:resize() end)
  on("sigterm", function() self:exit(143) end)
  on("sighup", function() self:exit(129) end)
end

--- Loads history into the editor and sets completion.
---@return nil
function Term:setup_editor()
  local ed = self.ed
  self.history = require("resi.repl.history").open()
  if self.history then ed:history_load(self.history:load()) end
  ed:set_completer(require("resi.repl.complete").completer(function() return self.session.env end))
  self.le.on_interrupt(function(...) self:on_interrupt(...) end)
end

-- The terminal REPL with libedit; false when resi.lineedit_core is missing.
local function run_terminal(session, sim)
  local ok, le = pcall(require, "resi.lineedit_core")
  if not ok then return false, le end
  local ed, err = le.open { fd_in = 0, fd_out = 1 }
  if not ed then return false, err end
  local term = setmetatable({ session = session, le = le, sim = sim, ed = ed }, Term)
  session.out = function(text) term:write(text) end
  session.err = function(text) term:write("\27[31m" .. text:gsub("\n$", "") .. "\27[0m\n") end
  term:route_output()
  term:setup_editor()
  term:signals()
  io.stdout:write(banner(sim))
  io.stdout:flush()
  term:prompt() -- nothing more is loaded: completion loads what it reads on first need
  return true
end

-- A terminal without line editing: plain prompts over the line reader.
local function run_plain_terminal(session, sim, why)
  io.stdout:write(banner(sim))
  io.stderr:write("resi repl: line editing is not available (", tostring(why):match("^[^\n]*"), "); plain input\n")
  local hist = require("resi.repl.history").open()
  M.feed(session, M.stdin_lines(), {
    prompt = function(p) io.stdout:write(p) io.stdout:flush() end,
    on_entry = function(src) if hist then hist:add(src) end end,
    exit = function() if sim then context.stop_sim(sim) end os.exit(0) end,
  })
  if sim then context.stop_sim(sim) end
  io.stdout:write("\n")
end

-- The subcommand: session, sandbox, FILE/CODE, then the prompt or stdin.
local function main(o)
  local interactive = require("resi.core").isatty(0)
  local session = repl.standard {
    out = function(s) io.stdout:write(s) io.stdout:flush() end,
    err = function(s) io.stderr:write(s) io.stderr:flush() end,
  }
  require("resi").args = o.args
  local sim
  if o.sim then
    local err
    sim, err = context.start_sim(session.env)
    if not sim then
      io.stderr:write("resi repl: cannot start the sandbox: ", tostring(err), "\n")
      return task.set_exit_status(1)
    end
    session.sim = sim
  end
  run_first(session, o)
  if interactive then
    local ok, why = run_terminal(session, sim)
    if ok then return end
    run_plain_terminal(session, sim, why)
    return
  end
  M.feed(session, M.stdin_lines(), { exit = function()
    if sim then context.stop_sim(sim) end
    os.exit(session.failures > 0 and 1 or 0)
  end })
  if sim then context.stop_sim(sim) end
  if session.failures > 0 then task.set_exit_status(1) end
end

-- Is a help flag among the options (before FILE: a script's own
-- arguments may be --help)?
local function wants_help(args)
  local i = 1
  while args[i] do
    local a = args[i]
    if a == "--help" or a == "-h" then return true end
    if a == "-e" or a == "--eval" then i = i + 1
    elseif a == "--" or a:sub(1, 1) ~= "-" then return false end
    i = i + 1
  end
  return false
end

-- The subcommand's entry: help, usage errors (exit status 2), then main.
--- Runs `resi repl` with the command line's arguments.
---@param ... string
return function(...)
  local args = { ... }
  if wants_help(args) then
    io.stdout:write(usage, "\n")
    return
  end
  local ok, o = pcall(M.parse, args)
  if not ok then
    if type(o) == "table" and o.usage then
      io.stderr:write("resi repl: ", o.usage, "\n(see resi repl --help)\n")
      return task.set_exit_status(2)
    end
    error(o, 0)
  end
  return main(o)
end
