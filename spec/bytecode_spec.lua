-- resi's own modules load from the bytecode `make` compiles (runtime/bytecode.c)
-- while their source is not newer, and read as source in tracebacks.
local core = require "resi.core"
local files = require "spec.support.files"
local proc = require "spec.support.proc"

-- Compiles the Lua text as chunk name "@" .. chunk into the file out.
local function compile(text, chunk, out)
  local f = assert(io.open(out, "wb"))
  f:write(string.dump(assert(load(text, "@" .. chunk))))
  f:close()
end

-- Sets path's modification time to `stamp` (touch -d).
local function touch(path, stamp)
  local r = proc.run { "touch", "-d", stamp, path }
  assert.equal(0, r.status, r.stderr)
end

describe("resi's bytecode", function()
  it("is what a fresh resi loads its modules from, named after their sources", function()
    local code = [[
      local _, where = require "resi.cron"
      local info = debug.getinfo(require("resi.cron").parse, "S")
      print(where, info.source, info.linedefined > 0)]]
    local r = proc.resi({ "-e", code }, { cwd = "/" })
    assert.equal(0, r.status, r.stderr)
    local where, source, lines = r.stdout:match("^(%S+)\t(%S+)\t(%S+)\n")
    assert.truthy(where and where:match("/luac/resi/cron%.luac$"), r.stdout)
    assert.truthy(source:match("^@/.+/lualib/resi/cron%.lua$"), source)
    assert.equal("true", lines)
    local lualib = source:match("^@(.+)/resi/cron%.lua$")
    assert.truthy(io.open(lualib .. "/resi/cron.lua"), "the chunk name is the source file")
  end)

  describe("searcher", function()
    local dir, lualib, luac, search
    before_each(function()
      dir = files.dir("resi-bytecode")
      lualib, luac = dir .. "/lualib", dir .. "/luac"
      for _, d in ipairs { lualib .. "/resi/pkg", luac .. "/resi/pkg" } do
        assert.equal(0, proc.run({ "mkdir", "-p", d }).status)
      end
      search = core.bytecode_searcher(lualib, luac)
    end)
    after_each(function() files.remove_dir(dir) end)

    -- Writes module file rel's source (returning "source") and, a second newer, its
    -- bytecode (returning "bytecode").
    local function module(rel)
      files.write(lualib, rel .. ".lua", 'return "source"')
      compile('return "bytecode"', lualib .. "/" .. rel .. ".lua", luac .. "/" .. rel .. ".luac")
      touch(lualib .. "/" .. rel .. ".lua", "2026-01-01 00:00:00")
      touch(luac .. "/" .. rel .. ".luac", "2026-01-01 00:00:01")
    end

    it("loads fresh bytecode, NAME.lua before NAME/init.lua", function()
      module("resi/zz")
      module("resi/pkg/init")
      local loader, where = search("resi.zz")
      assert.equal("bytecode", loader())
      assert.equal(luac .. "/resi/zz.luac", where)
      loader, where = search("resi.pkg")
      assert.equal("bytecode", loader())
      assert.equal(luac .. "/resi/pkg/init.luac", where)
      files.write(lualib, "resi/pkg.lua", "return 1") -- the source searcher would take this one
      touch(lualib .. "/resi/pkg.lua", "2026-01-01 00:00:00")
      assert.is_nil(search("resi.pkg"))
    end)

    it("leaves a module whose source is newer, missing or whose bytecode is bad to the source", function()
      module("resi/zz")
      touch(lualib .. "/resi/zz.lua", "2026-01-01 00:00:02")
      assert.is_nil(search("resi.zz"))
      module("resi/zz")
      assert.truthy(search("resi.zz"))
      os.remove(lualib .. "/resi/zz.lua")
      assert.is_nil(search("resi.zz"))
      module("resi/zz")
      local f = assert(io.open(luac .. "/resi/zz.luac", "wb"))
      f:write("\27Lua garbage") -- a truncated or foreign binary chunk
      f:close()
      touch(luac .. "/resi/zz.luac", "2026-01-01 00:00:01")
      assert.is_nil(search("resi.zz"))
      f = assert(io.open(luac .. "/resi/zz.luac", "wb"))
      f:write('return "text, not bytecode"')
      f:close()
      touch(luac .. "/resi/zz.luac", "2026-01-01 00:00:01")
      assert.is_nil(search("resi.zz"))
    end)

    it("takes only resi's own module names", function()
      module("resi/zz")
      files.write(lualib, "other.lua", "return 1")
      compile("return 2", lualib .. "/other.lua", luac .. "/other.luac")
      assert.is_nil(search("other"))
      assert.is_nil(search("resix.zz"))
      assert.is_nil(search("resi.zz/../zz"))
      assert.is_nil(search("resi." .. ("a"):rep(300)))
    end)
  end)
end)
