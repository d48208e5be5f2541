-- resi.fs: atomic writes and the advisory lock that keeps two runs of a
-- script off the same state file (checked across real processes).
local fs = require "resi.fs"
local resi = require "resi"
local proc = require "spec.support.proc"

describe("resi.fs", function()
  local dir

  before_each(function() dir = proc.run({ "mktemp", "-d", "/tmp/resi-fs.XXXXXX" }).stdout:gsub("%s+$", "") end)
  after_each(function() proc.run { "rm", "-rf", dir } end)

  it("writes atomically with the mode asked for", function()
    fs.write_atomic(dir .. "/a", "one", 384)
    fs.write_atomic(dir .. "/a", "two", 384)
    assert.equal("two", fs.read(dir .. "/a"))
    assert.equal("600", proc.run({ "stat", "-c", "%a", dir .. "/a" }).stdout:gsub("%s+$", ""))
    assert.has_error(function() fs.write_atomic(dir .. "/missing/a", "x") end)
    assert.equal("two", fs.read(dir .. "/a"))
  end)

  it("streams through an atomic writer: nothing shows until commit, abort leaves the old file", function()
    local path = dir .. "/out.txt"
    fs.write_atomic(path, "old\n")
    local w = fs.atomic_writer(path, { mode = 384, sync = false })
    w:write("new ")
    w.file:write("line\n") -- code that writes to a Lua file (a converter's pump) uses w.file
    assert.equal("old\n", fs.read(path))
    w:commit()
    assert.equal("new line\n", fs.read(path))
    assert.equal("600", proc.run({ "stat", "-c", "%a", path }).stdout:gsub("%s+$", ""))
    assert.has_error(function() w:commit() end, "resi.fs: this writer is already committed or aborted")
    w = fs.atomic_writer(path)
    w:write("half")
    w:abort()
    w:abort()
    assert.equal("new line\n", fs.read(path))
    assert.equal("out.txt\n", proc.run({ "ls", dir }).stdout) -- no temp file left
    local ok, err = pcall(fs.atomic_writer, dir .. "/missing/x")
    assert.is_false(ok)
    assert.truthy(err:find("cannot create " .. dir .. "/missing/x.tmp-", 1, true), err)
  end)

  describe("lock", function()
    it("is exclusive, released by unlock, and waits when asked", function()
      local path = dir .. "/state.lock"
      local a = assert(fs.lock(path))
      assert.is_true(a:held())
      local none, err, code = fs.lock(path)
      assert.is_nil(none)
      assert.equal("busy", code)
      assert.equal(path .. " is locked by another process", err)
      local t0 = resi.monotonic()
      none, err, code = fs.lock(path, { wait = 0.2 })
      assert.is_nil(none)
      assert.equal("busy", code)
      assert.truthy(resi.monotonic() - t0 >= 0.19)
      resi.spawn(function()
        resi.sleep(0.1)
        a:unlock()
      end)
      local b = assert(fs.lock(path, { wait = 5 }))
      assert.is_false(a:held())
      a:unlock() -- a second unlock does nothing
      do
        local c <close> = b
        assert.is_true(c:held())
      end
      assert.is_false(b:held())
      none, err, code = fs.lock(dir .. "/no/such/dir/x")
      assert.is_nil(none)
      assert.equal("error", code)
      assert.truthy(err:find("No such file or directory", 1, true), err)
    end)

    it("holds against another process, and dies with it", function()
      local path = dir .. "/held.lock"
      -- another resi takes the lock, says so, and sleeps until it is killed
      local holder = resi.spawn(proc.run, { proc.resi_path(), "-e",
        ("assert(require('resi.fs').lock(%q)) io.stdout:write('held\\n') io.stdout:flush() resi.sleep(30)"):format(path) })
      local held = false
      for _ = 1, 200 do
        local probe = fs.lock(path)
        if not probe then
          held = true
          break
        end
        probe:unlock()
        resi.sleep(0.02)
      end
      assert.is_true(held)
      proc.run { "pkill", "-KILL", "-f", path }
      local r = holder:wait()
      assert.equal(9, r.signal, ("status %s, stdout %q, stderr %q"):format(r.status, r.stdout, r.stderr))
      assert.is_truthy(fs.lock(path)) -- no stale lock after kill -9
    end)
  end)
end)
