--- resi.repl.complete: Tab completion for the REPL, with no side effects.
--- It completes globals, fields after `.`, methods after `:` (through
--- metatables whose __index is a table), module names inside
--- `require "resi.`, and provider client methods (`rf:ba` -> `rf:balance(`).
---
--- Completion never calls a function: tables are read with rawget and next,
--- metatables with getmetatable and rawget, and an __index that is a
--- function is never run (luvit #808: completion that evaluated the typed
--- code crashed the REPL). Where a metatable's __index is a function, its
--- rawget(mt, "__complete") table, when present, stands in for it: the
--- session environment lists its lazily bound names there (up, oxy, rf).
--- Proxy lists complete from their methods table. Nothing typed is
--- evaluated; `f().x` completes nothing.
---
--- The one thing completion may run is a loader the REPL registered with
--- M.lazy() (resi.repl.context: `require` of a resi module, never user code,
--- never a request), the first time a completion looks inside its stand-in
--- (`rf:`, `http.`), so nothing heavy is loaded just to be at the prompt.
---
--- After `:`, only public methods are offered (resi.repl.help.is_public: in
--- resi's own lualib/, a method defined under its name with a `---`
--- annotation above it; everything defined elsewhere is offered).
local M = {}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- How many __index tables are followed (a loop of metatables ends here).
local MAX_CHAIN = 16

-- Stand-ins made by M.lazy: stand-in -> loader, then -> {value} once loaded.
local lazies = setmetatable({}, { __mode = "k" })

--- A stand-in for a value that completion loads on first need: the first
--- time a completion looks inside it (`rf:`, `http.`), loader() runs once
--- and what it returns is read instead. Listing names (`r<Tab>`) never
--- runs it. Only the REPL's own loaders are registered here.
---@param loader fun(): any
---@return table standin
function M.lazy(loader)
  local standin = {}
  lazies[standin] = loader
  return standin
end

-- What v stands for: v itself, or a lazy stand-in's value (loaded now if
-- it was not; a loader that fails stands for nothing).
local function real(v)
  local entry = lazies[v]
  if entry == nil then return v end
  if type(entry) == "function" then
    local ok, value = pcall(entry)
    entry = { ok and value or nil }
    lazies[v] = entry
  end
  return entry[1]
end

-- The metatable of v when it is a table (a __metatable string is not one).
local function meta(v)
  local mt = getmetatable(v)
  if type(mt) == "table" then return mt end
  return nil
end

-- The methods table of proxy lists, when resi.proxylist is loaded.
local function list_methods()
  local core = package.loaded["resi.proxylist_core"]
  if type(core) == "table" and type(rawget(core, "methods")) == "table" then return rawget(core, "methods") end
  return nil
end

-- The tables that stand for v's fields: v itself (when a table), then each
-- __index table up the chain, and __complete tables. No call is made.
local function sources(v)
  local out, seen = {}, {}
  local cur = v
  for _ = 1, MAX_CHAIN do
    if cur == nil or seen[cur] then break end
    seen[cur] = true
    if type(cur) == "table" then out[#out + 1] = cur end
    local mt = meta(cur)
    if not mt then break end
    if rawget(mt, "__name") == "resi.proxylist.list" then out[#out + 1] = list_methods() end
    local idx, extra = rawget(mt, "__index"), rawget(mt, "__complete")
    if type(idx) == "table" then
      if type(extra) == "table" then out[#out + 1] = extra end
      cur = idx
    elseif type(extra) == "table" then
      cur = extra -- stands in for an __index function; its own __index table is walked on
    else
      break
    end
  end
  return out
end

-- v's field `name` found the way sources() walks (raw reads only).
local function field(v, name)
  for _, t in ipairs(sources(v)) do
    local x = rawget(t, name)
    if x ~= nil then return x end
  end
  return nil
end

-- Is x, found under k, a method completion offers after `:` (a public
-- function: resi.repl.help.is_public)?
local function is_method(k, x)
  return type(x) == "function" and require("resi.repl.help").is_public(k, x)
end

-- Names (identifier strings) in v's sources that start with prefix, with
-- "(" after functions; methods_only keeps public methods. Sorted, unique;
-- the first source holding a name decides (as a lookup would).
local function names(v, prefix, methods_only)
  local out, seen = {}, {}
  local hide_private = prefix:sub(1, 2) ~= "__"
  for _, t in ipairs(sources(v)) do
    for k, x in next, t do
      if type(k) == "string" and not seen[k] and k:sub(1, #prefix) == prefix and k:match("^[%a_][%w_]*$")
        and not (hide_private and k:sub(1, 2) == "__") then
        seen[k] = true
        if not methods_only or is_method(k, x) then out[#out + 1] = k .. (type(x) == "function" and "(" or "") end
      end
    end
  end
  table.sort(out)
  return out
end

-- Global names and keywords starting with prefix.
local function globals(env, prefix)
  local out = names(env, prefix, false)
  local seen = {}
  for _, n in ipairs(out) do seen[(n:gsub("%($", ""))] = true end
  for _, kw in ipairs(KEYWORDS) do
    if #prefix > 0 and kw:sub(1, #prefix) == prefix and not seen[kw] then out[#out + 1] = kw end
  end
  table.sort(out)
  return out
end

-- The directories package.path searches, each once.
local function path_dirs()
  local dirs, seen = {}, {}
  for template in package.path:gmatch("[^;]+") do
    local dir = template:match("^(.-)/%?%.lua$") or template:match("^(.-)/%?/init%.lua$")
    if dir and not seen[dir] then
      seen[dir] = true
      dirs[#dirs + 1] = dir
    end
  end
  return dirs
end

-- Adds the module names under one directory for a dotted prefix ("resi.pro").
local function modules_in(dir, prefix, out, seen)
  local parent = prefix:match("^(.*)%.") or ""
  local path = dir .. (parent ~= "" and ("/" .. parent:gsub("%.", "/")) or "")
  local uv = require "luv"
  local h = uv.fs_scandir(path)
  while h do
    local name, kind = uv.fs_scandir_next(h)
    if not name then break end
    local mod = (kind == "directory" and name) or name:match("^(.+)%.lua$")
    local full = mod and ((parent ~= "" and (parent .. ".") or "") .. mod .. (kind == "directory" and "." or ""))
    if full and full:sub(1, #prefix) == prefix and not seen[full] and mod:match("^[%w_]+$") then
      seen[full] = true
      out[#out + 1] = full
    end
  end
end

--- Module names that start with prefix (a directory gives "name."),
--- found by listing package.path's directories; nothing is loaded.
---@param prefix string
---@return string[]
function M.modules(prefix)
  local out, seen = {}, {}
  for _, dir in ipairs(path_dirs()) do modules_in(dir, prefix, out, seen) end
  table.sort(out)
  return out
end

-- Resolves a dotted chain of names ("a.b.c") from env with raw reads;
-- nil when a link is missing.
local function resolve(env, chain)
  local v = env
  for part in chain:gmatch("[^.:]+") do
    v = real(field(v, part))
    if v == nil then return nil end
  end
  return v
end

--- Completions for the text before the cursor: the candidates (each the
--- full replacement of the text from `from`, 1-based) and `from`.
--- Candidates are sorted; none is found by calling anything.
---@param env table the session environment
---@param before string the line up to the cursor
---@return string[] candidates
---@return integer from
function M.candidates(env, before)
  local q, partial = before:match("require%s*%(?%s*([\"'])([%w_.]*)$")
  if q then return M.modules(partial), #before - #partial + 1 end
  local chain = before:match("[%a_][%w_]*[%w_.:]*$") or ""
  local start = #before - #chain + 1
  local prev = before:sub(1, start - 1):match("(%S)%s*$")
  if prev == "." or prev == ":" or before:sub(start - 1, start - 1):match("[%w_%)%]\"']") then return {}, start end
  local head, sep, last = chain:match("^(.-)([.:])([%a_]?[%w_]*)$")
  if not head then return globals(env, chain), start end
  if head:find(":", 1, true) or head == "" then return {}, start end
  local v = resolve(env, head)
  if v == nil then return {}, start end
  local out = names(v, last, sep == ":")
  for i, n in ipairs(out) do out[i] = head .. sep .. n end
  return out, start
end

--- The completer for resi.lineedit_core: fn(text, line, start, stop),
--- line:sub(start, stop) == text (1-based; libedit breaks words at spaces
--- and operators, not at "." or ":"), returning full replacements of text.
---@param env table|fun(): table the session environment (or a function giving it)
---@return fun(text: string, line: string, start: integer, stop: integer): string[]
function M.completer(env)
  return function(text, line, start, stop)
    local e = type(env) == "function" and env() or env
    local before = line:sub(1, stop)
    local list, from = M.candidates(e, before)
    for i, c in ipairs(list) do
      if start >= from then list[i] = c:sub(start - from + 1)
      else list[i] = before:sub(start, from - 1) .. c end
    end
    return list
  end
end

return M
