-- resi.fs: atomic writes and the advisory lock that keeps two runs of a
-- script off the same state file (checked across real processes).
local fs = require "resi.fs"
local resi = require "resi"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

describe("resi.fs", function()
  local dir

  before_each(function() dir = files.dir("resi-fs") end)
  after_each(function() files.remove_dir(dir) end)

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

  describe("stale temp files", function()
    -- Makes a temp file by name in dir (content "secret"), optionally dated.
    local function temp(name, date)
      files.write(dir, name, "secret")
      if date then proc.run { "touch", "-d", date, dir .. "/" .. name } end
    end

    -- The names in dir, sorted, one per line.
    local function names() return proc.run({ "ls", dir }, { env = { "LC_ALL=C" } }).stdout end

    it("are removed when their writer is gone, and kept while it lives", function()
      local dead = proc.run({ "true" }).pid -- exited and reaped: no such process now
      local me = require("luv").os_getpid()
      temp(("state.json.tmp-%d-0badf00d"):format(dead)) -- a killed writer's
      temp(("state.json.tmp-%d-00c0ffee"):format(me)) -- a live writer's (this process)
      temp("state.json.tmp-1-0000beef", "2000-01-01") -- PID 1 is alive, but started after this was written: reused
      temp(("state.json.tmp-%d-0000abcd"):format(me), "2000-01-01") -- the same for this process's PID
      temp(("other.json.tmp-%d-0badf00d"):format(dead)) -- another target's: not this writer's business
      temp(("state.json.tmp-%d-notahex!"):format(dead)) -- not a temp file name
      fs.write_atomic(dir .. "/state.json", "{}", 384)
      local want = { ("other.json.tmp-%d-0badf00d"):format(dead), "state.json",
        ("state.json.tmp-%d-00c0ffee"):format(me), ("state.json.tmp-%d-notahex!"):format(dead) }
      table.sort(want) -- the order of names() (byte order): the PIDs' digits decide it
      assert.equal(table.concat(want, "\n") .. "\n", names())
      assert.equal("{}", fs.read(dir .. "/state.json"))
    end)

    it("are found by remove_stale_temps for any path, also a bare name", function()
      local dead = proc.run({ "true" }).pid
      temp(("out.txt.tmp-%d-12345678"):format(dead))
      temp("out.txt.tmp-1-12345678") -- PID 1, written after it started: kept
      local removed = fs.remove_stale_temps(dir .. "/out.txt")
      assert.same({ ("out.txt.tmp-%d-12345678"):format(dead) }, removed)
      assert.equal("out.txt.tmp-1-12345678\n", names())
      assert.same({}, fs.remove_stale_temps(dir .. "/no/such/dir/x"))
    end)
  end)

  it("checks up front that a path can be written", function()
    assert.is_true(fs.check_writable(dir .. "/new.txt"))
    local ok, why = fs.check_writable(dir .. "/missing/x.txt")
    assert.is_nil(ok)
    assert.equal("directory " .. dir .. "/missing does not exist", why)
    fs.write_atomic(dir .. "/file", "x")
    assert.equal(dir .. "/file is not a directory", select(2, fs.check_writable(dir .. "/file/x")))
    assert.equal("it is a directory", select(2, fs.check_writable(dir)))
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

    it("tells a lock held by another from one it cannot take at all", function()
      fs.write_atomic(dir .. "/plain", "x")
      assert(proc.run({ "mkdir", dir .. "/adir" }).status == 0)
      local cases = { { dir .. "/plain/x", "Not a directory" }, { dir .. "/adir", "Is a directory" },
        { dir .. "/none/x", "No such file or directory" } }
      for _, c in ipairs(cases) do
        local t0 = resi.monotonic()
        local none, err, code = fs.lock(c[1], { wait = 0.3 })
        assert.is_true(resi.monotonic() - t0 < 0.2) -- said at once
        assert.is_nil(none)
        assert.equal("error", code) -- not "busy": waiting would not help
        assert.equal("cannot open " .. c[1] .. ": " .. c[2], err)
      end
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
