-- resi lsp-setup: writes a .luarc.json that points lua-language-server at
-- the resi addon (the checkout's build/luals here, PREFIX/share/resi/luals
-- once installed), merging into an existing file and refusing a malformed one.
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local json = require "resi.json"
local uv = require "luv"

-- The repository root (where the checkout's addon is built).
local function repo_root()
  local init = assert(package.searchpath("resi", package.path))
  return (assert(init:match("^(.*)/lualib/resi/init%.lua$"), init))
end

-- The contents of a file, or nil.
local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

describe("resi lsp-setup", function()
  local dir, library
  before_each(function()
    dir = files.dir("resi-lsp")
    library = uv.fs_realpath(repo_root()) .. "/build/luals/library"
  end)
  after_each(function() files.remove_dir(dir) end)

  it("writes .luarc.json in the working directory, the same twice in a row", function()
    local first = proc.resi({ "lsp-setup" }, { cwd = dir })
    assert.equal(0, first.status, first.stderr)
    assert.equal(("wrote ./.luarc.json (workspace.library: %s)\n"):format(library), first.stdout)
    local text = slurp(dir .. "/.luarc.json")
    local cfg = json.decode(text)
    assert.same({ library }, cfg["workspace.library"])
    assert.equal("Lua 5.4", cfg["runtime.version"])
    assert.same({ "resi" }, cfg["diagnostics.globals"])
    assert.same({ ["await-in-sync"] = "Any", ["not-yieldable"] = "Any" }, cfg["diagnostics.neededFileStatus"])
    assert.is_true(cfg["hint.await"])
    assert.truthy(uv.fs_stat(library .. "/resi/init.lua"), "the addon it names exists")
    local second = proc.resi({ "lsp-setup", dir }, { cwd = "/" })
    assert.equal(0, second.status, second.stderr)
    assert.equal(text, slurp(dir .. "/.luarc.json"))
  end)

  it("merges into an existing .luarc.json, keeping its keys and libraries", function()
    files.write(dir, ".luarc.json", json.encode {
      workspace = { library = { "/opt/other/library" }, checkThirdParty = false },
      ["diagnostics.globals"] = { "vim" },
      ["runtime.version"] = "LuaJIT",
      custom = { a = 1 },
    })
    local r = proc.resi({ "lsp-setup", dir })
    assert.equal(0, r.status, r.stderr)
    local cfg = json.decode(slurp(dir .. "/.luarc.json"))
    assert.same({ "/opt/other/library", library }, cfg.workspace.library)
    assert.is_false(cfg.workspace.checkThirdParty)
    assert.is_nil(cfg["workspace.library"])
    assert.same({ "vim", "resi" }, cfg["diagnostics.globals"])
    assert.equal("Lua 5.4", cfg["runtime.version"])
    assert.same({ a = 1 }, cfg.custom)
  end)

  it("refuses a malformed .luarc.json naming the file, line and column, and leaves it as it was", function()
    local secret = "rf_live_k3y5ecretValue9x7kQ"
    local bad = '{\n  "token": "' .. secret .. '",\n  "workspace.library": [1,,2]\n}\n'
    local path = files.write(dir, ".luarc.json", bad)
    local r = proc.resi({ "lsp-setup", dir })
    assert.equal(1, r.status)
    assert.matches(path .. ": line 3, column 27: not valid JSON", r.stderr, 1, true)
    assert.falsy(r.stderr:find(secret, 1, true), "the file's contents are not echoed")
    assert.equal(bad, slurp(path))
    files.write(dir, ".luarc.json", "[1, 2]")
    r = proc.resi({ "lsp-setup", dir })
    assert.equal(1, r.status)
    assert.matches("line 1, column 1: expected a JSON object, found an array", r.stderr, 1, true)
  end)

  it("gives the usage and clear errors for a missing directory or extra arguments", function()
    local r = proc.resi({ "lsp-setup", "--help" })
    assert.equal(0, r.status)
    assert.matches("^usage: resi lsp%-setup %[DIR%]", r.stdout)
    r = proc.resi({ "lsp-setup", dir .. "/nope" })
    assert.equal(1, r.status)
    assert.equal(("resi lsp-setup: %s/nope is not a directory\n"):format(dir), r.stderr)
    r = proc.resi({ "lsp-setup", dir, dir })
    assert.equal(2, r.status)
    assert.matches("takes one DIR, got 2 arguments", r.stderr, 1, true)
  end)

  it("leaves a whole file when two run at once", function()
    local a, b = require("resi").all {
      function() return proc.resi({ "lsp-setup", dir }) end,
      function() return proc.resi({ "lsp-setup", dir }) end,
    }
    assert.equal(0, a.status, a.stderr)
    assert.equal(0, b.status, b.stderr)
    local cfg = json.decode(slurp(dir .. "/.luarc.json"))
    assert.same({ library }, cfg["workspace.library"])
  end)

  it("points an installed resi at PREFIX/share/resi/luals/library (make install install-luals)", function()
    local prefix = files.dir("resi-lsp-install")
    local r = proc.run { "make", "--no-print-directory", "-C", repo_root(), "install", "install-luals",
      "PREFIX=" .. prefix }
    assert.equal(0, r.status, r.stderr)
    local lib = uv.fs_realpath(prefix) .. "/share/resi/luals/library"
    assert.truthy(uv.fs_stat(lib .. "/resi/providers/resifactory.lua"))
    assert.equal("Lua 5.4", json.decode(slurp(prefix .. "/share/resi/luals/config.json")).settings["Lua.runtime.version"])
    local out = proc.run({ "env", "-i", "PATH=/usr/bin:/bin", prefix .. "/bin/resi", "lsp-setup", dir }, { cwd = "/" })
    files.remove_dir(prefix)
    assert.equal(0, out.status, out.stderr)
    assert.same({ lib }, json.decode(slurp(dir .. "/.luarc.json"))["workspace.library"])
  end)
end)
