--- resi.apidoc.read: reads one annotated Lua source file of resi's library
--- (or a meta file written from one) into a model of its public API.
---
--- The conventions it reads (DESIGN §11, and what resi.repl.help reads at
--- run time): a `---` block right above a top-level definition documents
--- it, and such a definition is public; a definition with a `--` comment is
--- internal. Definitions read: `function T.name(...)`, `function T:name(...)`,
--- `T.name = function(...)`, `T.name = expr` (a field, or an alias of another
--- module's function: `M.spawn = task.spawn`), and `key = expr` entries of a
--- top-level `local T = {` constructor. A `---@class` block right above
--- `local T = ...` names T's class; a `---@class` or `---@alias` block that
--- stands alone (a blank line after it) is copied as it is. The module's
--- own table is what the file returns (`return M`, `return setmetatable(M,`),
--- or a function (`return function(...)`, the cli/ commands).
local M = {}

---@class resi.apidoc.Item
---@field owner string the local table it is defined on (M, Client), or "return" for a returned function
---@field name string
---@field sep "."|":" how it is called
---@field kind "function"|"field"|"alias"
---@field doc string[]|nil the `---` lines above it, `---` stripped; nil when it has none
---@field comment "doc"|"internal"|"none" what stands above it: `---`, `--`, nothing
---@field params string[] the parameter names of its definition (self not included)
---@field vararg boolean
---@field line integer
---@field target? {module: string, owner: string, name: string} what an alias names

---@class resi.apidoc.Module
---@field name string the require name (resi.ratelimit)
---@field file string
---@field doc string[] the file's leading `---` block
---@field returns string|nil the local name of the module table, "function" for a returned function
---@field returns_item? resi.apidoc.Item the returned function
---@field tables table<string, {class?: string, block?: string[], line: integer}> local tables
---@field requires table<string, string> local name -> required module
---@field blocks string[][] standalone @class / @alias blocks
---@field items resi.apidoc.Item[] in source order

-- The parameter list "(a, b, ...)" as names and a vararg flag.
local function split_params(list)
  local names, vararg = {}, false
  for p in list:gmatch("[^,%s]+") do
    if p == "..." then vararg = true else names[#names + 1] = p end
  end
  return names, vararg
end

-- A `---` line without its dashes (and one space).
local function strip(line)
  return (line:gsub("^%s*%-%-%-%s?", ""))
end

-- What kind of comment line this is: "doc" (`---`), "internal" (`--`), or nil.
local function comment_kind(line)
  if line:match("^%s*%-%-%-") then return "doc" end
  if line:match("^%s*%-%-") then return "internal" end
  return nil
end

-- Splits a file's leading block into its prose (up to the first @class or
-- @alias) and one block per @class / @alias after it.
local function split_header(block)
  local prose, types = {}, {}
  for _, l in ipairs(block) do
    if l:match("^@class%s") or l:match("^@alias%s") then types[#types + 1] = {} end
    if #types == 0 then prose[#prose + 1] = l
    elseif l ~= "" then table.insert(types[#types], l) end
  end
  while prose[#prose] == "" do prose[#prose] = nil end
  return prose, types
end

-- Does a block contain one of the standalone tags (@class, @alias)?
local function is_type_block(block)
  for _, l in ipairs(block) do
    if l:match("^@class%s") or l:match("^@alias%s") then return true end
  end
  return false
end

-- The module name a file under lib has: lib/resi/x/init.lua -> resi.x.
---@param lib string the directory that holds resi/ (lualib)
---@param path string
---@return string
function M.module_name(lib, path)
  local rel = path:sub(#lib + 2):gsub("%.lua$", ""):gsub("/init$", "")
  return (rel:gsub("/", "."))
end

-- A new item of the model, from a definition line.
local function item(owner, name, sep, kind, line_no, params, vararg)
  return { owner = owner, name = name, sep = sep, kind = kind, line = line_no, params = params or {},
    vararg = vararg or false }
end

-- Parses a definition line at the top level (or a constructor entry of
-- owner); returns an item or nil.
local function definition(line, n, ctor_owner)
  local owner, sep, name, params = line:match("^function%s+([%a_][%w_]*)([.:])([%a_][%w_]*)%s*(%b())")
  if owner then
    local names, vararg = split_params(params:sub(2, -2))
    return item(owner, name, sep, "function", n, names, vararg)
  end
  owner, name, params = line:match("^([%a_][%w_]*)%.([%a_][%w_]*)%s*=%s*function%s*(%b())")
  if owner then
    local names, vararg = split_params(params:sub(2, -2))
    return item(owner, name, ".", "function", n, names, vararg)
  end
  local expr
  owner, name, expr = line:match("^([%a_][%w_]*)%.([%a_][%w_]*)%s*=%s*(.-)%s*$")
  if owner and not name:match("^__") then
    local it = item(owner, name, ".", "field", n)
    it.expr = expr
    return it
  end
  if ctor_owner then
    name, params = line:match("^%s%s([%a_][%w_]*)%s*=%s*function%s*(%b())")
    if name then
      local names, vararg = split_params(params:sub(2, -2))
      return item(ctor_owner, name, ".", "function", n, names, vararg)
    end
    name, expr = line:match("^%s%s([%a_][%w_]*)%s*=%s*(.-),?%s*$")
    if name then
      local it = item(ctor_owner, name, ".", "field", n)
      it.expr = expr
      return it
    end
  end
  return nil
end

-- The net count of { minus } on a line, strings and comments skipped
-- roughly (enough for resi's own constructors).
local function brace_balance(line)
  local code = line:gsub('"[^"]*"', ""):gsub("'[^']*'", ""):gsub("%-%-.*$", "")
  local _, open = code:gsub("{", "")
  local _, close = code:gsub("}", "")
  return open - close
end

-- Turns a field whose value names another function into an alias item:
-- `task.spawn` (a required module's field) or `Other.name` (this file's).
local function resolve_alias(mod, it)
  local base, name = (it.expr or ""):match("^([%a_][%w_]*)%.([%a_][%w_]*)$")
  if not base then return end
  if mod.requires[base] then
    it.kind, it.target = "alias", { module = mod.requires[base], owner = "return", name = name }
  elseif mod.tables[base] then
    it.kind, it.target = "alias", { module = mod.name, owner = base, name = name }
  end
end

--- Reads source text into a module model.
---@param text string
---@param name string the module's require name
---@param file string the path it came from (for messages and banners)
---@return resi.apidoc.Module
function M.read(text, name, file)
  local mod = { name = name, file = file, doc = {}, tables = {}, requires = {}, blocks = {}, items = {} }
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  local block, block_start, ctor, depth = nil, nil, nil, 0
  local long -- the closing bracket of a long string or comment being skipped ("]]", "]=]")
  for n, line in ipairs(lines) do
    local kind = comment_kind(line)
    if long then
      if line:find(long, 1, true) then long = nil end
      kind = "skip"
    else
      local eq = line:match("%[(=*)%[")
      if eq and not line:find("]" .. eq .. "]", 1, true) then long = "]" .. eq .. "]" end
    end
    if kind == "skip" then
      block = nil
    elseif kind == "doc" and (not ctor or line:match("^%s%s%-%-%-")) and (ctor or not line:match("^%s")) then
      if not block then block, block_start = {}, n end
      block[#block + 1] = strip(line)
    else
      local above = kind == nil and n > 1 and comment_kind(lines[n - 1])
      if block and block_start == 1 and #mod.doc == 0 then
        local prose, types = split_header(block)
        mod.doc = prose
        for _, b in ipairs(types) do mod.blocks[#mod.blocks + 1] = b end
        block = nil
      end
      local it = (kind == nil) and definition(line, n, ctor) or nil
      if ctor then
        depth = depth + brace_balance(line)
        if depth <= 0 then ctor = nil end
      end
      if it then
        it.doc = block
        it.comment = block and "doc" or (above or "none")
        if it.kind == "field" then resolve_alias(mod, it) end
        mod.items[#mod.items + 1] = it
      elseif kind == nil and not ctor then
        local lname, rhs = line:match("^local%s+([%a_][%w_]*)%s*=%s*(.*)$")
        if lname then
          local req = rhs:match("^require%s*%(?%s*[\"']([^\"']+)[\"']")
          if req then mod.requires[lname] = req end
          local t = { line = n }
          if block and is_type_block(block) and req then
            mod.blocks[#mod.blocks + 1] = block
          elseif block and is_type_block(block) then
            t.block = block
          end
          for _, l in ipairs(t.block or {}) do -- the last @class is the local's (LuaLS's rule)
            t.class = l:match("^@class%s+([%w_.]+)") or t.class
          end
          mod.tables[lname] = t
          depth = brace_balance(rhs)
          if rhs:match("^{") and depth > 0 then ctor = lname end
        elseif block and is_type_block(block) then
          mod.blocks[#mod.blocks + 1] = block
        end
        local ret = line:match("^return%s+setmetatable%(%s*([%a_][%w_]*)") or line:match("^return%s+([%a_][%w_]*)%s*$")
        if ret then mod.returns = ret end
        local params = line:match("^return%s+function%s*(%b())")
        if params then
          local names, vararg = split_params(params:sub(2, -2))
          mod.returns = "function"
          mod.returns_item = item("return", "main", ".", "function", n, names, vararg)
          mod.returns_item.doc = block
          mod.returns_item.comment = block and "doc" or (above or "none")
        end
      end
      if kind == nil then block = nil end
    end
  end
  return mod
end

--- Reads a file into a module model.
---@param lib string the directory that holds resi/ (lualib)
---@param path string
---@return resi.apidoc.Module
function M.read_file(lib, path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return M.read(text, M.module_name(lib, path), path)
end

--- The tables of a module whose items are part of its API: the module
--- table and every local table with a public method or a @class.
---@param mod resi.apidoc.Module
---@return table<string, boolean>
function M.api_tables(mod)
  local set = {}
  if mod.returns and mod.returns ~= "function" then set[mod.returns] = true end
  for lname, t in pairs(mod.tables) do
    if t.class then set[lname] = true end
  end
  for _, it in ipairs(mod.items) do
    if it.kind == "function" and it.comment == "doc" and mod.tables[it.owner] then set[it.owner] = true end
  end
  return set
end

--- Is an item public (documented with `---`, not `_`-named, on an API table)?
---@param mod resi.apidoc.Module
---@param it resi.apidoc.Item
---@param tables table<string, boolean> from api_tables
---@return boolean
function M.is_public(mod, it, tables)
  return it.comment == "doc" and tables[it.owner] == true and it.name:sub(1, 1) ~= "_"
end

--- Splits "TYPE text" where TYPE may hold spaces inside brackets
--- ({a: b}, fun(x: string): boolean, table<K, V>); returns both.
---@param s string
---@return string type
---@return string text
function M.split_type(s)
  local depth, i = 0, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == "{" or c == "(" or c == "<" then depth = depth + 1
    elseif c == "}" or c == ")" or c == ">" then depth = depth - 1
    elseif c:match("%s") and depth == 0 then
      local rest = s:sub(i):match("^%s*(.*)$")
      if not rest:match("^[:|]") and not s:sub(1, i - 1):match("[:|,]$") then break end
    end
    i = i + 1
  end
  local ty = s:sub(1, i - 1)
  return ty ~= "" and ty or "any", (s:sub(i):match("^%s*(.-)%s*$"))
end

--- The @param lines of a doc block: {name=, type=, optional=, text=} each.
---@param doc string[]|nil
---@return {name: string, type: string, optional: boolean, text: string}[]
function M.params_of(doc)
  local out = {}
  for _, l in ipairs(doc or {}) do
    local name, rest = l:match("^@param%s+(%S+)%s*(.*)$")
    if name then
      local optional = name:sub(-1) == "?"
      if optional then name = name:sub(1, -2) end
      local ty, text = M.split_type(rest)
      out[#out + 1] = { name = name, type = ty, optional = optional, text = text }
    end
  end
  return out
end

return M
