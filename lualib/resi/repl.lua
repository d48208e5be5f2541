--- resi.repl: a REPL session, with no terminal in it (resi.cli.repl drives
--- it from libedit or from piped input; specs drive it directly).
---
---   local session = require("resi.repl").new{ out = function(s) io.write(s) end }
---   local t = session:submit("1 + 1")   -- a task; prints "2" when it ends
---   session:submit("function f()")      -- "more": the entry goes on
---
--- Each entry runs in a new task (resi.spawn), so it can wait on HTTP,
--- sleeps and rate limits with no await keyword. An entry is compiled as
--- `return <entry>` first (as lua.c does) and its values printed in order,
--- masked (resi.repl.pretty); otherwise as statements. A chunk whose syntax
--- error is at <eof> is incomplete: the driver asks for more lines. `_` holds
--- the last value and `_err` the last error. Globals persist in the
--- session's environment table (whose __index ends at _G), and so do
--- top-level locals: `local x = 1` runs as `x = 1` there (said once).
local task = require "resi.task"
local pretty = require "resi.repl.pretty"
local secret = require "resi.secret"

local M = {}

--- The chunk name of entries (error messages read "stdin:1: ...").
M.CHUNKNAME = "=stdin"

-- ---- top-level locals --------------------------------------------------

-- Block openers and closers, for the nesting depth of a token.
local OPEN = { ["function"] = true, ["do"] = true, ["if"] = true, ["repeat"] = true }
local CLOSE = { ["end"] = true, ["until"] = true }

-- The end of a long bracket ([[...]], [==[...]==]) opening at i, or #src.
local function long_end(src, i)
  local eq = src:match("^%[(=*)%[", i)
  if not eq then return nil end
  local _, e = src:find("]" .. eq .. "]", i, true)
  return e or #src
end

-- The end of a quoted string opening at i (escapes skipped), or #src.
local function string_end(src, i)
  local q, j = src:sub(i, i), i + 1
  while j <= #src do
    local c = src:sub(j, j)
    if c == "\\" then j = j + 2
    elseif c == q or c == "\n" then return j
    else j = j + 1 end
  end
  return #src
end

--- The words of a chunk (names and keywords, symbols; strings, comments and
--- numbers skipped) with their positions: {text, start, stop} each.
---@param src string
---@return table[]
function M.tokens(src)
  local out, i = {}, 1
  while i <= #src do
    local c = src:sub(i, i)
    if c:match("%s") then i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local e = long_end(src, i + 2)
      i = (e or src:find("\n", i, true) or #src) + 1
    elseif c == '"' or c == "'" then i = string_end(src, i) + 1
    elseif c == "[" and long_end(src, i) then i = long_end(src, i) + 1
    elseif c:match("[%a_]") then
      local s, e = src:find("^[%w_]+", i)
      out[#out + 1] = { src:sub(s, e), s, e }
      i = e + 1
    elseif c:match("%d") then i = (select(2, src:find("^[%w_.]+", i)) or i) + 1
    else
      out[#out + 1] = { c, i, i }
      i = i + 1
    end
  end
  return out
end

-- Reads `local NAMES [attribs]` from token k; the names, whether an `=`
-- follows, the index after them, and the attribute spans; nil for `<close>`.
local function local_names(toks, k)
  local names, spans, j = {}, {}, k + 1
  while toks[j] and toks[j][1]:match("^[%a_]") do
    names[#names + 1] = toks[j][1]
    j = j + 1
    if toks[j] and toks[j][1] == "<" and toks[j + 2] and toks[j + 2][1] == ">" then
      if toks[j + 1][1] == "close" then return nil end
      spans[#spans + 1] = { toks[j][2], toks[j + 2][3] }
      j = j + 3
    end
    if not (toks[j] and toks[j][1] == ",") then break end
    j = j + 1
  end
  return names, toks[j] and toks[j][1] == "=", spans, toks[j]
end

-- The edits that turn one top-level `local` at token k into an
-- assignment: {start, stop, replacement} spans, and the names kept.
local function local_edits(src, toks, k)
  local tok = toks[k]
  if toks[k + 1] and toks[k + 1][1] == "function" then
    return { { tok[2], tok[3], "" } }, { toks[k + 2] and toks[k + 2][1] }
  end
  local names, has_value, spans, after = local_names(toks, k)
  if not names or #names == 0 then return nil end
  local edits = { { tok[2], tok[3], "" } }
  for _, s in ipairs(spans) do edits[#edits + 1] = { s[1], s[2], "" } end
  if not has_value then
    local at = after and (after[2] - 1) or #src
    edits[#edits + 1] = { at + 1, at, " = nil " }
  end
  return edits, names
end

--- Rewrites the chunk's top-level `local` statements (not inside a
--- function or block) into assignments to globals, so they persist in the
--- session. Returns the new source and the names kept (empty when none).
--- `local x <close>` is left alone (its closing is the point).
---@param src string
---@return string src
---@return string[] names
function M.rewrite_locals(src)
  local toks, depth, edits, kept = M.tokens(src), 0, {}, {}
  for k, tok in ipairs(toks) do
    local w = tok[1]
    if OPEN[w] then depth = depth + 1
    elseif CLOSE[w] then depth = depth - 1
    elseif w == "local" and depth == 0 and not (toks[k - 1] and toks[k - 1][1] == ".") then
      local e, names = local_edits(src, toks, k)
      for _, x in ipairs(e or {}) do edits[#edits + 1] = x end
      for _, n in ipairs(names or {}) do kept[#kept + 1] = n end
    end
  end
  table.sort(edits, function(a, b) return a[1] > b[1] end)
  for _, e in ipairs(edits) do src = src:sub(1, e[1] - 1) .. e[3] .. src:sub(e[2] + 1) end
  return src, kept
end

-- ---- compiling ----------------------------------------------------------

-- Is a syntax error the end of input (more lines could complete it)?
local function at_eof(msg)
  return type(msg) == "string" and msg:sub(-5) == "<eof>"
end

--- Compiles an entry in env: the function and whether it is an expression
--- (its values are shown), or nil, "incomplete", or nil, the syntax error.
--- Top-level locals are rewritten (see rewrite_locals); kept names are the
--- fourth result.
---@param src string
---@param env table
---@param chunkname? string the name in messages (default "stdin")
---@return function|nil fn
---@return boolean|string expr_or_err
---@return nil
---@return string[]|nil kept
function M.compile(src, env, chunkname)
  local name = chunkname and ("=" .. chunkname) or M.CHUNKNAME
  local fn, rerr = load("return " .. src .. "\n", name, "t", env)
  if fn then return fn, true end
  local body, kept = M.rewrite_locals(src)
  local sfn, serr = load(body, name, "t", env)
  if sfn then return sfn, false, nil, kept end
  if at_eof(serr) or (at_eof(rerr) and not src:find("^%s*local[%s(]")) then return nil, "incomplete" end
  return nil, serr
end

-- ---- the session --------------------------------------------------------

local Session = {}
Session.__index = Session

--- Writes text (with a newline) through the session's output.
---@param text string
function Session:say(text) self.out(text .. "\n") end

--- Writes error text (with a newline) through the session's error output.
---@param text string
function Session:say_error(text) self.err(text .. "\n") end

--- The text an error shows: messages scrubbed, error objects with fields.
---@param e any
---@return string
function M.error_text(e)
  if task.is_cancelled(e) then return "cancelled" end
  if type(e) == "string" then return secret.scrub(e) end
  if type(e) == "table" and pretty.is_error(e) then return pretty.render(e) end
  return "error: " .. pretty.render(e)
end

-- Carries an error and its traceback out of xpcall.
local Failure = {}

-- The message handler: a string error gets the entry's traceback, cut
-- where the REPL's own frames start, without the REPL's frames.
local function handler(e)
  if type(e) ~= "string" or e:find("interrupted$") then return setmetatable({ e = e }, Failure) end
  local tb = debug.traceback(e, 2)
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  tb = cut and tb:sub(1, cut - 1) or tb
  tb = tb:gsub("\n[^\n]*/resi/repl/[%w_]+%.lua:[^\n]*", ""):gsub("\n[^\n]*/resi/task%.lua:[^\n]*", "")
  tb = tb:gsub("\nstack traceback:$", "")
  return setmetatable({ e = e, trace = tb }, Failure)
end

-- Shows an entry's results and sets `_`.
function Session:show(r)
  if r.n == 0 then return end
  if rawget(self.env, "_") == self.last then rawset(self.env, "_", r[1]) end
  self.last = r[1]
  self:say(pretty.render_results(r.n, r, self.pretty))
end

-- Runs a compiled entry in the current task; prints its values (when
-- echo: what it returned, as lua.c does) or its error; true when it did
-- not fail.
function Session:run_compiled(fn, echo)
  local r = table.pack(xpcall(fn, handler))
  if r[1] then
    if echo then self:show(table.move(r, 2, r.n, 1, { n = r.n - 1 })) end
    return true
  end
  local f = r[2]
  local e = getmetatable(f) == Failure and f.e or f
  self.interrupted = type(e) == "string" and e:find("interrupted$") ~= nil
  rawset(self.env, "_err", task.is_cancelled(e) and rawget(self.env, "_err") or e)
  self.failures = self.failures + 1
  self:say_error(type(f) == "table" and f.trace and secret.scrub(f.trace) or M.error_text(e))
  return false
end

-- Says, the first time only, that top-level locals were kept.
function Session:note_kept(kept)
  if #kept == 0 or self.told_locals then return end
  self.told_locals = true
  self:say(("(kept local %s as %s: top-level locals persist here)")
    :format(table.concat(kept, ", "), #kept > 1 and "session variables" or "a session variable"))
end

--- Runs a whole entry in the current task (compile, run, print). Returns
--- true when it ran without error.
--- opts.chunkname names the source in messages (default "stdin");
--- opts.echo = false shows no values (a file or -e CODE run first).
---@param src string
---@param opts? {chunkname?: string, echo?: boolean}
---@return boolean
function Session:eval(src, opts)
  opts = opts or {}
  local fn, expr, _, kept = M.compile(src, self.env, opts.chunkname)
  if not fn then
    self.failures = self.failures + 1
    self:say_error(expr == "incomplete" and ((opts.chunkname or "stdin") .. ": unfinished entry (syntax error at <eof>)")
      or expr)
    return false
  end
  self:note_kept(kept or {})
  return self:run_compiled(fn, opts.echo ~= false)
end

-- Starts an entry's task and keeps it as the running entry.
function Session:start(src)
  local t
  t = task.spawn(function()
    local ok = self:eval(src)
    if self.entry == t then self.entry = nil end
    return ok
  end)
  t.name = "repl entry"
  self.entry = t
  self:track(t)
  return t
end

--- Adds a line to the entry being typed. Returns "more" when the entry is
--- incomplete (the driver shows the continuation prompt), "empty" for a
--- blank line, else the entry's task (started; it prints its own output)
--- and the entry's source.
---@param line string
---@return "more"|"empty"|table
---@return string|nil
function Session:submit(line)
  local src = self.buffer and (self.buffer .. "\n" .. line) or line
  if not self.buffer and src:match("^%s*$") then return "empty" end
  if src:sub(1, 1) == "=" and not self.buffer then src = src:sub(2) end -- lua.c's "=expr" (5.2 form)
  local fn, why = M.compile(src, self.env)
  if not fn and why == "incomplete" then
    self.buffer = src
    return "more"
  end
  self.buffer = nil
  return self:start(src), src
end

--- Is an entry being typed (lines given, more expected)?
---@return boolean
function Session:pending() return self.buffer ~= nil end

--- Drops the lines of an unfinished entry (Ctrl-C on a partial entry).
function Session:clear_buffer() self.buffer = nil end

--- Remembers a task started at the prompt, for .tasks and .cancel.
---@param t table
function Session:track(t)
  self.tasks[#self.tasks + 1] = t
end

--- The tasks started at the prompt that have not ended, oldest first.
---@return table[]
function Session:running()
  local live = {}
  for _, t in ipairs(self.tasks) do
    local s = t:status()
    if s ~= "done" and s ~= "failed" and s ~= "cancelled" then live[#live + 1] = t end
  end
  self.tasks = live
  return live
end

-- The `print` entries see: tab-separated tostring()s, through the
-- session's output, unmasked (what was asked for is printed).
local function session_print(self)
  return function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    self.out(table.concat(parts, "\t", 1, parts.n) .. "\n")
  end
end

-- Where a function was defined, "stdin:3", for task names.
local function origin(fn)
  local info = debug.getinfo(fn, "S")
  return info and ("%s:%d"):format(info.short_src, info.linedefined) or nil
end

-- fn wrapped so that its failure is shown at once (a background task's
-- error would otherwise wait for exit); the error is raised on, for wait().
local function reporting(self, fn, get_task)
  return function(...)
    local r = table.pack(xpcall(fn, handler, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local f = r[2]
    local e = getmetatable(f) == Failure and f.e or f
    local t = get_task()
    if not task.is_cancelled(e) then
      t.observed = true -- shown here: not again at exit
      self.failures = self.failures + 1
      self:say_error(("error in %s: %s"):format(tostring(t), f.trace and secret.scrub(f.trace) or M.error_text(e)))
    end
    error(e, 0)
  end
end

-- A view of the resi module whose spawn remembers the tasks it starts
-- and shows their errors when they happen.
local function session_resi(self)
  local resi = require "resi"
  local function spawn(fn, ...)
    if type(fn) ~= "function" then return resi.spawn(fn, ...) end
    local t
    t = resi.spawn(reporting(self, fn, function() return t end), ...)
    t.name = origin(fn)
    self:track(t)
    return t
  end
  return setmetatable({ spawn = spawn }, { __index = resi })
end

--- A fresh environment table (globals of the session); `base` is where
--- names not set at the prompt come from (default _G).
---@param base? table
---@return table env
function Session:new_env(base)
  local env = setmetatable({}, { __index = base or _G })
  env.print = session_print(self)
  env.resi = session_resi(self)
  self.env, self.last = env, nil
  if self.setup then self.setup(env, self) end
  return env
end

--- Forgets the session's variables (.clear): a fresh environment, set up
--- as the first one was.
function Session:reset()
  self.buffer = nil
  self:new_env()
end

--- A session. opts: out (writes output text, default io.stdout), err
--- (writes error text, default out), env (an environment table to use),
--- pretty (resi.repl.pretty options for echoed values).
--- setup(env, session), when given, runs on every new environment.
---@param opts? {out?: fun(text: string), err?: fun(text: string), env?: table, pretty?: table, setup?: fun(env: table, session: table)}
---@return table session
function M.new(opts)
  opts = opts or {}
  local out = opts.out or function(s) io.stdout:write(s) io.stdout:flush() end
  local self = setmetatable({ out = out, err = opts.err or out, tasks = {}, failures = 0,
    pretty = opts.pretty, setup = opts.setup }, Session)
  if opts.env then self.env = opts.env else self:new_env() end
  return self
end

--- A session with the REPL's context (resi.repl.context: up, oxy, rf,
--- the preloaded modules) and help(). Options as new().
---@param opts? table
---@return table session
function M.standard(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.setup = function(env, session)
    require("resi.repl.context").install(env)
    env.help = require("resi.repl.help").help_function(env, function(text) session:say(text) end)
    if opts and opts.setup then opts.setup(env, session) end
  end
  return M.new(o)
end

M.Session = Session
return M
