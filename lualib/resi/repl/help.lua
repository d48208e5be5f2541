--- resi.repl.help: help() at the prompt and the dot commands. The text of
--- help(fn) is the LuaLS annotation block above the function in lualib/
--- (one source of truth): the function's file and line come from
--- debug.getinfo(fn, "S"), and the `---` lines right above that line are
--- its documentation. No function is called to find it.
local secret = require "resi.secret"

local M = {}

-- Source files read so far: path -> array of lines.
local files = {}

-- The lines of a source file (cached), or nil.
local function file_lines(path)
  if files[path] == nil then
    local f = io.open(path, "rb")
    local lines = false
    if f then
      lines = {}
      for l in f:lines() do lines[#lines + 1] = l end
      f:close()
    end
    files[path] = lines
  end
  return files[path] or nil
end

-- The `---` block that ends right above line n: its lines, stripped.
local function comment_above(lines, n)
  local block = {}
  local i = n - 1
  while i >= 1 and lines[i]:match("^%s*%-%-%-") do
    table.insert(block, 1, (lines[i]:gsub("^%s*%-%-%-%s?", "")))
    i = i - 1
  end
  return block
end

-- The directory of resi's own modules (lualib/resi/), where every public
-- function carries a `---` annotation block (DESIGN §11).
local LIB = require("resi.libdir").lualib() .. "/resi/"

-- The name a definition line gives its function: `function A.b:name(`,
-- `local function name(`, `name = function(`; nil for other lines.
local function defined_name(line)
  return line:match("function%s+[%w_.:]-([%a_][%w_]*)%s*%(") or line:match("([%a_][%w_]*)%s*=%s*function%s*%(")
end

-- Verdicts of is_public so far: function -> {name -> boolean} (weak keys).
local verdicts = setmetatable({}, { __mode = "k" })

-- The verdict of is_public, worked out from the function's source.
local function judge(name, f)
  local info = debug.getinfo(f, "S")
  local path = info.source:match("^@(.*)$")
  if info.what == "C" or not path or not LIB or path:sub(1, #LIB) ~= LIB then return true end
  if name:sub(1, 1) == "_" then return false end
  local lines = file_lines(path)
  local line = lines and lines[info.linedefined]
  if not line then return true end
  return defined_name(line) == name and #comment_above(lines, info.linedefined) > 0
end

--- Is f, found under `name` on an object or module, part of its public
--- interface (offered by completion after `:` and listed by help(obj))?
--- The rule: a function defined in resi's own library (lualib/resi/) is
--- public when it is defined under that name (not `_`-prefixed) and a
--- `---` (LuaLS annotation) block stands right above its definition, the
--- house style for every public function; one with only `--` comments
--- (common's attempt, response_error, limiter_for; describe, auth_headers)
--- or found under another name than its own (an alias such as
--- `Client.call_raw = common.Client.call`) is internal. Functions defined
--- anywhere else (at the prompt, in the user's files) and C functions are
--- all public: there is no convention to read them by.
--- Source files are read once; verdicts are cached.
---@param name string
---@param f function
---@return boolean
function M.is_public(name, f)
  local by_name = verdicts[f]
  if by_name == nil then
    by_name = {}
    verdicts[f] = by_name
  end
  local v = by_name[name]
  if v == nil then
    v = judge(name, f)
    by_name[name] = v
  end
  return v
end

--- The documentation of a Lua function from its annotations: {signature,
--- lines (the comment, @ tags included), file, line}, or nil and why.
---@param f function
---@return table|nil doc
---@return string|nil why
function M.doc(f)
  local info = debug.getinfo(f, "S")
  if info.what == "C" then return nil, "a builtin (C) function: no Lua source to read" end
  local path = info.source:match("^@(.*)$")
  local lines = path and file_lines(path)
  if not lines or not lines[info.linedefined] then
    return nil, ("defined in %s, whose source cannot be read"):format(info.short_src)
  end
  local sig = lines[info.linedefined]:gsub("^%s+", ""):gsub("%s*%-%-.*$", "")
  sig = sig:match("^(.-%b())") or sig
  return { signature = sig, lines = comment_above(lines, info.linedefined), file = info.short_src,
    line = info.linedefined }
end

-- The first sentence of a doc's description (before any @ tag).
local function summary(doc)
  local text = {}
  for _, l in ipairs(doc.lines) do
    if l:match("^@") then break end
    text[#text + 1] = l
  end
  local s = table.concat(text, " ")
  s = s:match("^(.-%.)%s") or s:match("^(.-%.)$") or s
  if #s > 100 then s = s:sub(1, 97) .. "..." end
  return s
end

-- One @param / @return line, readable.
local function tag_line(l)
  local name, rest = l:match("^@param%s+(%S+)%s+(.*)$")
  if name then return ("  %s: %s"):format(name, rest) end
  local ret = l:match("^@return%s+(.*)$")
  if ret then return "  returns " .. ret end
  return "  " .. l
end

--- The text help(fn) prints: signature, description and parameters.
---@param f function
---@return string
function M.function_help(f)
  local doc, why = M.doc(f)
  if not doc then return "no documentation: " .. why end
  local out = { doc.signature .. "    (" .. doc.file .. ":" .. doc.line .. ")" }
  if #doc.lines == 0 then
    out[#out + 1] = "  (no --- annotation above it: a documentation defect to fix)"
  end
  for _, l in ipairs(doc.lines) do
    if l:match("^@") then
      if l:match("^@param") or l:match("^@return") then out[#out + 1] = tag_line(l) end
    else
      out[#out + 1] = "  " .. l
    end
  end
  return table.concat(out, "\n")
end

-- The functions reachable as fields of v (raw reads through __index
-- tables), as name -> function, and their names sorted.
local function functions_of(v)
  local found, order, seen = {}, {}, {}
  local cur = v
  for _ = 1, 16 do
    if cur == nil or seen[cur] then break end
    seen[cur] = true
    if type(cur) == "table" then
      for k, x in next, cur do
        if type(k) == "string" and type(x) == "function" and not found[k] and k:sub(1, 2) ~= "__" then
          found[k] = x
          order[#order + 1] = k
        end
      end
    end
    local mt = getmetatable(cur)
    cur = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(cur) ~= "table" then break end
  end
  table.sort(order)
  return found, order
end

--- The text help(obj) prints for a table or object: what it is, then its
--- public functions (M.is_public), one line each (`name:method(args)
--- summary`; the summary is the first sentence of the annotation).
---@param v table|userdata
---@param name? string how the prompt calls it (rf, proxylist)
---@return string
function M.object_help(v, name)
  local found, order = functions_of(v)
  local mt = getmetatable(v)
  local is_object = type(mt) == "table" and type(rawget(mt, "__index")) == "table" and rawget(mt, "__index") ~= v
  local sep = is_object and ":" or "."
  local label = secret.scrub(tostring(v))
  local out = { label }
  for _, k in ipairs(order) do
    if M.is_public(k, found[k]) then
      local doc = M.doc(found[k])
      local prefix = (name and (name .. sep) or "") .. k
      if doc and #doc.lines > 0 then
        out[#out + 1] = ("  %s%s  %s"):format(prefix, doc.signature:match("(%b())$") or "()", summary(doc))
      else
        out[#out + 1] = "  " .. prefix .. "()"
      end
    end
  end
  out[#out + 1] = ("help(%s%sNAME) shows one in full"):format(name or "x", sep == ":" and "." or ".")
  return table.concat(out, "\n")
end

--- What help() lists: the names the REPL has ready.
M.PRELOADED = {
  { "resi", "the runtime: resi.spawn, resi.sleep, resi.all, resi.timeout, resi.log, resi.uv" },
  { "http", "resi.http: http.get(url), http.request{...} -> res (res.status, res.body, res:json())" },
  { "json", "resi.json: json.encode, json.decode, json.null, json.array" },
  { "providers", "resi.providers: the common account model, providers.open(name, opts)" },
  { "proxylist", "resi.proxylist: proxylist.parse(text), proxylist.load(path), proxylist.sticky{...}" },
  { "ratelimit", "resi.ratelimit: ratelimit.new{limit=, window=}" },
  { "up", "UnknownProxies client (UNKNOWNPROXIES_USERNAME / _PASSWORD), built on first use" },
  { "oxy", "Oxylabs client (OXYLABS_USERNAME / _PASSWORD), built on first use" },
  { "rf", "ResiFactory client (RF_API_KEY), built on first use" },
  { "_, _err", "the last value shown and the last error" },
  { "help(x)", "help on a client, a module or a function: help(rf), help(rf.generate)" },
}

--- The dot commands: name, argument, what it does.
M.COMMANDS = {
  { ".help", "", "this list" },
  { ".exit", "", "leave the REPL (also Ctrl-D, or Ctrl-C twice on an empty line)" },
  { ".clear", "", "forget the session's variables (a fresh environment)" },
  { ".load", "FILE", "run a Lua file in the session (its globals and top-level locals stay)" },
  { ".tasks", "", "the tasks started at the prompt that are still running" },
  { ".cancel", "N", "cancel task N (from .tasks)" },
}

--- The text help() prints.
---@return string
function M.overview()
  local out = { "Ready at the prompt:" }
  for _, p in ipairs(M.PRELOADED) do out[#out + 1] = ("  %-10s %s"):format(p[1], p[2]) end
  out[#out + 1] = "Commands:"
  for _, c in ipairs(M.COMMANDS) do out[#out + 1] = ("  %-12s %s"):format(c[1] .. (c[2] ~= "" and (" " .. c[2]) or ""), c[3]) end
  out[#out + 1] = "Every entry runs in its own task: calls that wait (HTTP, sleeps) just work; Ctrl-C cancels one."
  return table.concat(out, "\n")
end

-- The name env gives v (a raw scan of its own fields), or nil.
local function name_in(env, v)
  for k, x in next, env do
    if rawequal(x, v) and type(k) == "string" then return k end
  end
  return nil
end

--- The help() function of a session: help() -> overview, help(fn) -> its
--- documentation, help(obj) -> its methods.
---@param env table the session environment (to name objects)
---@param say fun(text: string)
---@return fun(x?: any)
function M.help_function(env, say)
  return function(...)
    if select("#", ...) == 0 then return say(M.overview()) end
    local x = ...
    if type(x) == "function" then return say(M.function_help(x)) end
    if type(x) == "table" or type(x) == "userdata" then return say(M.object_help(x, name_in(env, x))) end
    say(("help: %s is a %s; try help() or help(rf)"):format(tostring(x), type(x)))
  end
end

-- .tasks: one line per running task.
local function list_tasks(session)
  local live = session:running()
  if #live == 0 then return "no tasks running" end
  local out = {}
  for _, t in ipairs(live) do out[#out + 1] = ("  %d  %-8s %s"):format(t.id, t:status(), tostring(t)) end
  return table.concat(out, "\n")
end

-- .cancel N: cancels a task started at the prompt.
local function cancel_task(session, arg)
  local id = math.tointeger(tonumber(arg or ""))
  if not id then return "usage: .cancel N (a task number from .tasks)" end
  for _, t in ipairs(session:running()) do
    if t.id == id then
      t:cancel()
      return ("cancelled task %d"):format(id)
    end
  end
  return ("no running task %d (see .tasks)"):format(id)
end

-- .load FILE: runs the file as one entry.
local function load_file(session, arg)
  if not arg or arg == "" then return session:say_error("usage: .load FILE") end
  local f, err = io.open(arg, "rb")
  if not f then return session:say_error(".load: " .. tostring(err)) end
  local src = f:read("a"):gsub("^#![^\n]*", "")
  f:close()
  return session:eval(src)
end

--- Runs a dot command line (".tasks", ".cancel 3") in the current task.
--- hooks: exit() and clear() from the driver. Returns false when the line
--- is not a known command (and says so).
---@param session table
---@param line string
---@param hooks {exit: fun(), clear?: fun()}
---@return boolean
function M.command(session, line, hooks)
  local cmd, arg = line:match("^%s*(%.%a+)%s*(.-)%s*$")
  if cmd == ".help" then session:say(M.overview())
  elseif cmd == ".exit" then hooks.exit()
  elseif cmd == ".clear" then
    if hooks.clear then hooks.clear() end
    session:say("session cleared")
  elseif cmd == ".load" then return load_file(session, arg) ~= false
  elseif cmd == ".tasks" then session:say(list_tasks(session))
  elseif cmd == ".cancel" then session:say(cancel_task(session, arg))
  else
    session:say_error(("unknown command %s (try .help)"):format(tostring(cmd or line)))
    return false
  end
  return true
end

--- Is this line a dot command (and not Lua, such as `.5 + 1`)?
---@param line string
---@return boolean
function M.is_command(line)
  return line:match("^%s*%.%a+") ~= nil
end

return M
