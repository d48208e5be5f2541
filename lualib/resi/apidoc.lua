--- resi.apidoc: the one generator of resi's API outputs. It reads the
--- `---` annotations of lualib/resi/**/*.lua (resi.apidoc.read) and writes
--- the LuaLS addon (OUT/library/resi/**.lua definition files and
--- OUT/config.json) and the reference page (docs/API.md). `make luals` runs
--- it: `resi -e 'require("resi.apidoc").main(arg)' OUT DOC`.
local uv = require "luv"
local fs = require "resi.fs"
local json = require "resi.json"
local read = require "resi.apidoc.read"
local meta = require "resi.apidoc.meta"
local markdown = require "resi.apidoc.markdown"

local M = {}

--- The directory that holds resi/ (this checkout's or install's lualib).
M.LIB = require("resi.libdir").lualib()

-- The .lua files under dir, sorted, as paths.
local function lua_files(dir, out)
  out = out or {}
  local handle = uv.fs_scandir(dir)
  while handle do
    local name, kind = uv.fs_scandir_next(handle)
    if not name then break end
    local path = dir .. "/" .. name
    if kind == "directory" then lua_files(path, out)
    elseif name:match("%.lua$") then out[#out + 1] = path end
  end
  table.sort(out)
  return out
end

--- Reads every module of the library into models, sorted by name.
---@param lib? string the directory that holds resi/ (default M.LIB)
---@return resi.apidoc.Module[]
function M.modules(lib)
  lib = lib or M.LIB
  local mods = {}
  for _, path in ipairs(lua_files(lib .. "/resi")) do
    local mod = read.read_file(lib, path)
    mod.file = path:sub(#lib + 2):gsub("^", "lualib/")
    mod.path = path:sub(#lib + 2)
    mods[#mods + 1] = mod
  end
  table.sort(mods, function(a, b) return a.name < b.name end)
  return mods
end

--- A resolver of alias targets ({module=, owner=, name=}) over mods: the
--- item it names, or nil. owner "return" is the module's own table.
---@param mods resi.apidoc.Module[]
---@return fun(target: table): resi.apidoc.Item|nil
function M.finder(mods)
  local by_name = {}
  for _, mod in ipairs(mods) do by_name[mod.name] = mod end
  return function(target)
    local mod = by_name[target.module]
    if not mod then return nil end
    local owner = target.owner == "return" and mod.returns or target.owner
    for _, it in ipairs(mod.items) do
      if it.owner == owner and it.name == target.name and it.comment == "doc" then return it end
    end
    return nil
  end
end

--- The addon's config.json (LuaLS addons.mdx): the words that enable it
--- (a `require "resi...` in a workspace file) and the settings it applies.
---@return string
function M.config_json()
  return json.encode({
    name = "resi",
    words = { "require[%s%(]*[\"']resi[%.\"']" },
    settings = {
      ["Lua.runtime.version"] = "Lua 5.4",
      ["Lua.diagnostics.globals"] = json.array{ "resi" },
      ["Lua.diagnostics.neededFileStatus"] = { ["await-in-sync"] = "Any", ["not-yieldable"] = "Any" },
      ["Lua.hint.await"] = true,
    },
  }, { sort_keys = true, indent = true }) .. "\n"
end

-- Writes text to path atomically unless it already holds exactly that
-- (so a `make` that changes nothing touches no file).
local function write_if_changed(path, text)
  if fs.read(path) ~= text then fs.write_atomic(path, text) end
end

-- Makes dir and its parents.
local function mkdir_p(dir)
  local sofar = dir:sub(1, 1) == "/" and "" or "."
  for part in dir:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    if not uv.fs_stat(sofar) then assert(uv.fs_mkdir(sofar, 493)) end -- 0755
  end
end

--- Writes the outputs: out/library/resi/**.lua, out/config.json and, when
--- doc is given, the reference page. Definition files of modules that no
--- longer exist are removed. Returns the paths written.
---@param out string the addon directory (build/luals)
---@param doc? string the reference page's path (docs/API.md)
---@param lib? string the directory that holds resi/ (default M.LIB)
---@return string[]
function M.generate(out, doc, lib)
  local mods = M.modules(lib)
  local find = M.finder(mods)
  local written, keep = {}, {}
  for _, mod in ipairs(mods) do
    local path = out .. "/library/" .. mod.path
    mkdir_p(path:match("^(.*)/"))
    write_if_changed(path, meta.render(mod, find))
    written[#written + 1], keep[path] = path, true
  end
  if uv.fs_stat(out .. "/library") then
    for _, path in ipairs(lua_files(out .. "/library")) do
      if not keep[path] then os.remove(path) end
    end
  end
  write_if_changed(out .. "/config.json", M.config_json())
  written[#written + 1] = out .. "/config.json"
  if doc then
    write_if_changed(doc, markdown.render(mods, find))
    written[#written + 1] = doc
  end
  return written
end

--- The command line `make luals` runs: args[1] the addon directory,
--- args[2] (optional) the reference page.
---@param args string[]
function M.main(args)
  if not args[1] then
    io.stderr:write("usage: resi -e 'require(\"resi.apidoc\").main(arg)' OUTDIR [DOC]\n")
    os.exit(2)
  end
  local written = M.generate(args[1], args[2])
  io.write(("apidoc: wrote %d files to %s%s\n"):format(#written, args[1], args[2] and (" and " .. args[2]) or ""))
end

return M
