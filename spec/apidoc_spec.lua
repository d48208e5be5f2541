-- The drift test of resi's API documentation (LuaLS itself cannot run
-- here): the generator (resi.apidoc) writes the addon into a scratch
-- directory; every definition file must compile, and the annotations it is
-- made from must match the live resi.* modules: every public function
-- documented, nothing documented that does not exist, each function's
-- @param count equal to its arity, and docs/API.md up to date.
local apidoc = require "resi.apidoc"
local read = require "resi.apidoc.read"
local meta = require "resi.apidoc.meta"
local markdown = require "resi.apidoc.markdown"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local getinfo, getupvalue = debug.getinfo, debug.getupvalue

-- The repository root (the library under test is its lualib/).
local function repo_root()
  local init = assert(package.searchpath("resi", package.path))
  return (assert(init:match("^(.*)/lualib/resi/init%.lua$"), init))
end

-- The arity the annotations give a function: parameters (self included
-- for a method) and whether it takes `...`.
local function documented_arity(doc, sep)
  local n, vararg = sep == ":" and 1 or 0, false
  for _, p in ipairs(read.params_of(doc)) do
    if p.name == "..." then vararg = true elseif p.name ~= "self" or sep ~= ":" then n = n + 1 end
  end
  return n, vararg
end

-- "2" or "2+..." (a method's self not counted: what its @param lines hold).
local function arity_text(n, vararg, sep)
  return ("%d%s"):format(sep == ":" and n - 1 or n, vararg and "+..." or "")
end

-- Finds the live table of a module's local lname: the table (reached from
-- the module through upvalues, fields and metatables) that holds one of
-- lname's functions, known by file and line; or the upvalue named lname.
local function find_local_table(root, mod, lname)
  local lines = {}
  for _, it in ipairs(mod.items) do
    if it.owner == lname and it.kind == "function" then lines[it.line] = true end
  end
  local function holds(t)
    for _, x in next, t do
      if type(x) == "function" then
        local info = getinfo(x, "S")
        if lines[info.linedefined] and info.source:sub(-#mod.path) == mod.path then return true end
      end
    end
    return false
  end
  local seen, queue, by_name = {}, { root }, nil
  local i = 1
  while queue[i] and i < 20000 do
    local v = queue[i]
    i = i + 1
    if not seen[v] then
      seen[v] = true
      if type(v) == "function" then
        for u = 1, 255 do
          local name, x = getupvalue(v, u)
          if not name then break end
          if name == lname and type(x) == "table" then by_name = by_name or x end
          if type(x) == "function" or type(x) == "table" then queue[#queue + 1] = x end
        end
      elseif type(v) == "table" and v ~= _G and v ~= package.loaded then
        if holds(v) then return v end
        for _, x in next, v do
          if type(x) == "function" or type(x) == "table" then queue[#queue + 1] = x end
        end
        local mt = getmetatable(v)
        if type(mt) == "table" then queue[#queue + 1] = mt end
      end
    end
  end
  return by_name
end

-- The kind of comment right above line n of a file: "doc", "internal" or "none".
local function comment_above(path, n)
  local f = io.open(path, "rb")
  if not f then return "none" end
  local prev
  local i = 0
  for l in f:lines() do
    i = i + 1
    if i == n then break end
    prev = l
  end
  f:close()
  if prev and prev:match("^%s*%-%-%-") then return "doc" end
  if prev and prev:match("^%s*%-%-") then return "internal" end
  return "none"
end

-- Where a Lua function is defined: "resi/x.lua:LINE" (its path under lualib/).
local function location(f)
  local info = getinfo(f, "S")
  return ("%s:%d"):format(info.source:match("lualib/(resi/.+)$") or info.source, info.linedefined)
end

-- The locations of every public function documented in mods, for methods
-- that one file defines and another installs (store/runs.lua on DB).
local function documented_locations(mods, find)
  local set = {}
  for _, mod in ipairs(mods) do
    for _, p in ipairs(meta.public_items(mod, find)) do
      if p.item.kind == "function" then set[mod.path .. ":" .. p.item.line] = true end
    end
  end
  return set
end

--- Compares one module's model with its live value; returns the problems
--- found (strings naming module, function and what is wrong).
---@param mod resi.apidoc.Module
---@param live any what require returns
---@param find fun(target: table): resi.apidoc.Item|nil
---@return string[]
local function drift(mod, live, find, elsewhere)
  local problems = {}
  local function say(fmt, ...) problems[#problems + 1] = mod.name .. ": " .. fmt:format(...) end
  local tables = { }
  if mod.returns == "function" then
    if type(live) ~= "function" then say("the file returns a function, require gives a %s", type(live)) end
    local doc = mod.returns_item.doc
    if not doc then say("the function it returns has no --- annotations") end
    if doc and type(live) == "function" then
      local n, va = documented_arity(doc, ".")
      local u = getinfo(live, "u")
      if u.nparams ~= n or u.isvararg ~= va then
        say("the returned function takes %d%s parameters, its @param lines say %d%s", u.nparams,
          u.isvararg and "+..." or "", n, va and "+..." or "")
      end
    end
    return problems
  end
  local api = read.api_tables(mod)
  for lname in pairs(api) do
    -- (a class C registers, such as http's Response, is reached from the registry)
    local t = lname == mod.returns and live or find_local_table(live, mod, lname)
      or find_local_table(debug.getregistry(), mod, lname)
    if type(t) ~= "table" then say("cannot find the live table of %s (local %s)", meta.class_name(mod, lname), lname)
    else tables[lname] = t end
  end
  -- a class (a method table with __index: its objects reach users) whose
  -- methods have no annotations at all is checked too
  for _, it in ipairs(mod.items) do
    if not api[it.owner] and not tables[it.owner] and it.kind == "function" and mod.tables[it.owner] then
      local t = find_local_table(live, mod, it.owner)
      if t and rawget(t, "__index") ~= nil then tables[it.owner] = t end
    end
  end
  local documented = {}
  -- functions a class block declares as `---@field name fun(...)` (C
  -- methods, functions made in a loop); a Lua one's arity is checked
  for lname, t in pairs(tables) do
    for _, l in ipairs(mod.tables[lname] and mod.tables[lname].block or {}) do
      local name, params = l:match("^@field%s+([%w_]+)%s+a?s?y?n?c?%s*fun(%b())")
      if name then
        documented[t] = documented[t] or {}
        documented[t][name] = true
        local v = rawget(t, name)
        local inner = params:sub(2, -2):gsub("%b{}", ""):gsub("%b()", ""):gsub("%b<>", "")
        local n = select(2, inner:gsub(",", "")) + 1
        if params:match("^%(%s*%)$") then n = 0 end
        if v == nil then say("%s.%s is declared (@field) but does not exist", lname, name)
        elseif type(v) == "function" and getinfo(v, "S").what == "Lua" and getinfo(v, "u").nparams ~= n then
          say("%s.%s takes %d parameters, its @field fun() says %d", lname, name, getinfo(v, "u").nparams, n)
        end
      end
    end
  end
  for _, p in ipairs(meta.public_items(mod, find)) do
    local it, t = p.item, tables[p.item.owner]
    if t then
      local label = it.owner .. it.sep .. it.name
      documented[t] = documented[t] or {}
      documented[t][it.name] = true
      local v = rawget(t, it.name)
      if v == nil then say("%s is documented (line %d) but does not exist", label, it.line)
      elseif p.is_function then
        if type(v) ~= "function" then say("%s is documented as a function but is a %s", label, type(v))
        elseif getinfo(v, "S").what ~= "C" then
          local n, va = documented_arity(p.doc, it.sep)
          local u = getinfo(v, "u")
          if u.nparams ~= n or u.isvararg ~= va then
            say("%s takes %s parameters, its @param lines say %s (line %d)", label,
              arity_text(u.nparams, u.isvararg, it.sep), arity_text(n, va, it.sep), it.line)
          end
        end
      end
    end
  end
  local internal = {}
  for _, it in ipairs(mod.items) do
    if it.comment == "internal" then internal[it.name] = true end
  end
  -- documented names per parent class (rawget(mt, "__index")), for the
  -- siblings' stubs of one interface (an unsupported account operation)
  local by_parent = {}
  for t, names in pairs(documented) do
    local mt = getmetatable(t)
    local parent = type(mt) == "table" and rawget(mt, "__index")
    if type(parent) == "table" then
      by_parent[parent] = by_parent[parent] or {}
      for k in pairs(names) do by_parent[parent][k] = true end
    end
  end
  -- documented on t, on a class t inherits from, or on a sibling class
  local function inherited(t, k)
    local mt = getmetatable(t)
    local parent = type(mt) == "table" and rawget(mt, "__index")
    if type(parent) == "table" and by_parent[parent] and by_parent[parent][k] then return true end
    for _ = 1, 8 do
      if documented[t] and documented[t][k] then return true end
      local mt = getmetatable(t)
      t = type(mt) == "table" and rawget(mt, "__index")
      if type(t) ~= "table" then return false end
    end
    return false
  end
  for lname, t in pairs(tables) do
    for k, v in next, t do
      if type(k) == "string" and type(v) == "function" and k:sub(1, 1) ~= "_"
        and not inherited(t, k) and not internal[k]
        and not (elsewhere and elsewhere[location(v)]) then
        local info = getinfo(v, "S")
        local path = info.source:match("^@(.*)$")
        local kind = (info.what == "Lua" and path) and comment_above(path, info.linedefined) or "none"
        if kind ~= "internal" then
          say("%s%s%s is public but not documented (%s:%d has %s)", lname, lname == mod.returns and "." or ":", k,
            info.short_src, info.linedefined, kind == "doc" and "a --- block the reader missed" or "no comment above it")
        end
      end
    end
  end
  table.sort(problems)
  return problems
end

describe("resi.apidoc (the API documentation and its drift test)", function()
  local root = repo_root()
  local mods = apidoc.modules(root .. "/lualib")
  local find = apidoc.finder(mods)
  local out

  setup(function()
    out = files.dir("resi-apidoc")
    apidoc.generate(out, out .. "/API.md", root .. "/lualib")
  end)

  teardown(function()
    if out then files.remove_dir(out) end
  end)

  it("writes one definition file per module, each starting ---@meta NAME and compiling", function()
    local paths = {}
    for _, mod in ipairs(mods) do
      local path = out .. "/library/" .. mod.path
      local f = assert(io.open(path, "rb"), path)
      local text = f:read("a")
      f:close()
      assert.equal("---@meta " .. mod.name, text:match("^[^\n]*"))
      assert(load(text, "@" .. path), path)
      paths[#paths + 1] = path
    end
    assert.is_true(#paths > 50, "only " .. #paths .. " modules")
    for _, path in ipairs(paths) do -- one at a time: luac 5.4.4 double-frees with several files
      local r = proc.run({ "luac5.4", "-p", path })
      assert.equal("", r.stderr)
      assert.equal(0, r.status)
    end
  end)

  it("writes config.json with the require words and Lua 5.4", function()
    local f = assert(io.open(out .. "/config.json", "rb"))
    local cfg = require("resi.json").decode(f:read("a"))
    f:close()
    assert.equal("resi", cfg.name)
    assert.equal("Lua 5.4", cfg.settings["Lua.runtime.version"])
    assert.equal("Any", cfg.settings["Lua.diagnostics.neededFileStatus"]["await-in-sync"])
    local word = cfg.words[1]
    assert.truthy(('local http = require "resi.http"'):find(word))
    assert.truthy(("local resi = require('resi')"):find(word))
    assert.falsy(('local x = require "resist"'):find(word))
  end)

  it("documents every public function of every live module, with @param counts equal to the arities", function()
    local problems = {}
    local elsewhere = documented_locations(mods, find)
    for _, mod in ipairs(mods) do
      local ok, live = pcall(require, mod.name)
      if not ok then
        problems[#problems + 1] = mod.name .. ": require failed: " .. tostring(live)
      else
        for _, p in ipairs(drift(mod, live, find, elsewhere)) do problems[#problems + 1] = p end
      end
    end
    assert.equal("", table.concat(problems, "\n"))
  end)

  it("gives each definition-file stub the arity its annotations say (the module tables, loaded)", function()
    for _, mod in ipairs(mods) do
      if mod.returns ~= "function" then
        local path = out .. "/library/" .. mod.path
        local stubs = assert(loadfile(path, "t", setmetatable({}, { __index = _G })))()
        for _, p in ipairs(meta.public_items(mod, find)) do
          if p.is_function and p.item.owner == mod.returns then
            local n, va = documented_arity(p.doc, p.item.sep)
            local u = getinfo(stubs[p.item.name], "u")
            assert.same({ n, va }, { u.nparams, u.isvararg }, mod.name .. "." .. p.item.name)
          end
        end
      end
    end
  end)

  it("keeps docs/API.md equal to what make luals writes", function()
    local f = assert(io.open(root .. "/docs/API.md", "rb"), "docs/API.md is missing: run make luals")
    local committed = f:read("a")
    f:close()
    assert.is_true(committed == markdown.render(mods, find), "docs/API.md is out of date: run make luals")
  end)

  describe("the annotation reader", function()
    it("reads definitions, constructor entries, aliases and classes, and skips long strings", function()
      local mod = read.read(table.concat({
        "--- resi.x: a module.",
        "---@class resi.x.point",
        "---@field x number",
        "local task = require \"resi.task\"",
        "local help = [[",
        "function M.fake(a)",
        "return Fake",
        "]]",
        "---@class resi.x.Thing",
        "local Thing = {}",
        "local M = {",
        "  --- Sleeps.",
        "  sleep = task.sleep,",
        "  -- internal",
        "  helper = function(a, b) return a, b end,",
        "}",
        "--- Waits.",
        "---@param s number",
        "function Thing:wait(s) end",
        "return M",
      }, "\n"), "resi.x", "lualib/resi/x.lua")
      assert.same({ "resi.x: a module." }, mod.doc)
      assert.same({ { "@class resi.x.point", "@field x number" } }, mod.blocks)
      assert.equal("M", mod.returns)
      assert.equal("resi.x.Thing", mod.tables.Thing.class)
      local got = {}
      for _, it in ipairs(mod.items) do
        got[#got + 1] = ("%s%s%s %s %s"):format(it.owner, it.sep, it.name, it.kind, it.comment)
      end
      assert.same({ "M.sleep alias doc", "M.helper function internal", "Thing:wait function doc" }, got)
      assert.same({ module = "resi.task", owner = "return", name = "sleep" }, mod.items[1].target)
    end)
  end)

  describe("the drift check itself", function()
    -- A module read from text and loaded from the same text.
    local function check(text)
      local mod = read.read(text, "resi.example", "lualib/resi/example.lua")
      mod.path = "resi/example.lua"
      local live = assert(load(text, "@lualib/resi/example.lua"))()
      return drift(mod, live, apidoc.finder({ mod }))
    end

    it("passes a module whose public functions are annotated", function()
      assert.same({}, check("local M = {}\n--- Adds.\n---@param a number\n---@param b number\n---@return number\n"
        .. "function M.add(a, b) return a + b end\n-- internal\nfunction M.helper(x) return x end\nreturn M\n"))
    end)

    it("fails a public function added without annotations, or with too few @param lines", function()
      local problems = check("local M = {}\nfunction M.add(a, b) return a + b end\n"
        .. "--- Subtracts.\n---@param a number\nfunction M.sub(a, b) return a - b end\nreturn M\n")
      assert.equal(2, #problems)
      assert.matches("M.add is public but not documented", problems[1], 1, true)
      assert.matches("M.sub takes 2 parameters, its @param lines say 1", problems[2], 1, true)
    end)

    it("fails a new class whose methods have no annotations", function()
      local problems = check("local M = {}\nlocal Thing = {}\nThing.__index = Thing\n"
        .. "--- Makes one.\n---@return table\nfunction M.new() return setmetatable({}, Thing) end\n"
        .. "function Thing:wait(seconds) return seconds end\nreturn M\n")
      assert.equal(1, #problems)
      assert.matches("Thing:wait is public but not documented", problems[1], 1, true)
    end)

    it("fails a documented function that does not exist, and a method of a class", function()
      local problems = check("local M = {}\n---@class resi.example.Thing\nlocal Thing = {}\nThing.__index = Thing\n"
        .. "--- Makes one.\n---@return resi.example.Thing\nfunction M.new() return setmetatable({}, Thing) end\n"
        .. "--- Waits.\n---@async\nfunction Thing:wait(seconds) end\n"
        .. "--- Gone.\nM.gone = nil\nreturn M\n")
      assert.equal(2, #problems)
      assert.matches("M.gone is documented (line 12) but does not exist", problems[1], 1, true)
      assert.matches("Thing:wait takes 1 parameters, its @param lines say 0", problems[2], 1, true)
    end)
  end)
end)
