-- resi.store: the SQLite driver (exact values, blobs, parameters), the
-- key-value API, transactions, file modes, migrations and the errors that
-- name the file; on real files in a temp directory.
local store = require "resi.store"
local core = require "resi.sqlite_core"
local json = require "resi.json"
local resi = require "resi"
local uv = require "luv"
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local raised = require("spec.support.checks").raised

-- The mode bits of path as octal text ("600"), or nil when it is missing.
local function mode(path)
  local st = uv.fs_stat(path)
  return st and ("%o"):format(st.mode & 511)
end

-- Runs a chunk in a child resi with args; returns the proc.run result.
local function child(code, args, opts)
  local argv = { "-e", code }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return proc.resi(argv, opts)
end

describe("resi.store", function()
  local dir, path

  before_each(function()
    dir = files.dir("resi-store")
    path = dir .. "/state/resi.db"
  end)
  after_each(function() files.remove_dir(dir) end)

  describe("the driver", function()
    local conn
    before_each(function() conn = assert(core.open(dir .. "/raw.db")) end)
    after_each(function() conn:close() end)

    it("keeps 64-bit integers exact both ways", function()
      conn:exec("CREATE TABLE t (v)")
      for _, v in ipairs { (1 << 53) + 1, math.mininteger, math.maxinteger, -1, 0 } do
        conn:run("DELETE FROM t")
        conn:run("INSERT INTO t VALUES ($1)", v)
        local row = conn:first("SELECT v, typeof(v) AS t FROM t")
        assert.equal("integer", row.t)
        assert.equal("integer", math.type(row.v))
        assert.equal(v, row.v)
      end
      assert.equal(9007199254740993, conn:first("SELECT $1 + 0 AS v", (1 << 53) + 1).v)
      assert.equal(1.5, conn:first("SELECT $1 AS v", 1.5).v)
    end)

    it("keeps NUL bytes in blobs and in text, and tells them apart", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      bytes = table.concat(bytes)
      local row = conn:first("SELECT $1 AS b, typeof($1) AS bt, length($1) AS bl, $2 AS s, typeof($2) AS st",
        core.blob("a\0b\0"), "x\0y")
      assert.equal("a\0b\0", row.b)
      assert.equal("blob", row.bt)
      assert.equal(4, row.bl)
      assert.equal("x\0y", row.s)
      assert.equal("text", row.st)
      assert.equal(bytes, conn:first("SELECT $1 AS b", core.blob(bytes)).b)
      assert.equal("", conn:first("SELECT $1 AS b", core.blob("")).b)
    end)

    it("binds nil, JSON null and booleans, and leaves NULL columns out of the row", function()
      local row = conn:first("SELECT $1 AS a, $2 AS b, $3 AS t, $4 AS f", nil, json.null, true, false)
      assert.is_nil(row.a)
      assert.is_nil(row.b)
      assert.equal(1, row.t)
      assert.equal(0, row.f)
    end)

    it("binds $N by number and ? by position", function()
      local row = conn:first("SELECT $2 AS two, $1 AS one, $2 || $1 AS both", "a", "b")
      assert.same({ two = "b", one = "a", both = "ba" }, row)
      assert.same({ x = 1, y = 2 }, conn:first("SELECT ? AS x, ? AS y", 1, 2))
    end)

    it("rejects a wrong parameter count, an unbindable value and two statements", function()
      local err = raised(conn.first, conn, "SELECT $1, $2", 1)
      assert.equal("range", err.code)
      assert.matches("takes 2 parameters, 1 given", tostring(err), 1, true)
      err = raised(conn.first, conn, "SELECT $1", {})
      assert.equal("mismatch", err.code)
      err = raised(conn.first, conn, "SELECT 1; SELECT 2")
      assert.equal("misuse", err.code)
      err = raised(conn.first, conn, "SELEC 1")
      assert.equal("error", err.code)
      assert.matches("syntax error", tostring(err), 1, true)
      -- the cache is intact after each failure
      assert.equal(7, conn:first("SELECT $1 AS v", 7).v)
    end)

    it("returns all rows, counts changes, and knows when a transaction is open", function()
      conn:exec("CREATE TABLE t (v INTEGER); BEGIN")
      assert.is_true(conn:in_transaction())
      for i = 1, 5 do conn:run("INSERT INTO t VALUES ($1)", i) end
      conn:exec("COMMIT")
      assert.is_false(conn:in_transaction())
      assert.equal(5, #conn:rows("SELECT v FROM t ORDER BY v"))
      assert.equal(3, conn:run("DELETE FROM t WHERE v > $1", 2))
      assert.is_nil(conn:first("SELECT v FROM t WHERE v > 100"))
    end)

    it("is closed by close, twice without harm, and then refuses statements", function()
      conn:close()
      conn:close()
      assert.is_false(conn:is_open())
      local err = raised(conn.first, conn, "SELECT 1")
      assert.equal("closed", err.code)
      assert.equal(dir .. "/raw.db", err.path)
    end)
  end)

  describe("an open store", function()
    local db
    before_each(function() db = store.open(path) end)
    after_each(function() db:close() end)

    describe("values", function()
      it("round-trip exactly: big integers, floats, bytes, arrays, objects, null", function()
        local all = {}
        for i = 0, 255 do all[#all + 1] = string.char(i) end
        local values = {
          (1 << 53) + 1, math.mininteger, math.maxinteger, 0, -7, 1.5, -0.25, 1e300,
          "", "plain", "a\0b\0c", table.concat(all), true, false,
          { bytes = (1 << 53) + 1, list = { 1, 2, 3 }, nested = { deep = { math.mininteger } } },
          json.array(), { allowedPools = json.array() }, json.null,
        }
        for i, v in ipairs(values) do db:set("values", "k" .. i, v) end
        for i, v in ipairs(values) do
          local got = db:get("values", "k" .. i)
          assert.same(v, got)
          if math.type(v) then assert.equal(math.type(v), math.type(got)) end
        end
        assert.is_true(json.is_array(db:get("values", "k" .. 16)))
        assert.equal('{"allowedPools":[]}', json.encode(db:get("values", "k17")))
        assert.equal(json.null, db:get("values", "k18"))
      end)

      it("gets nil for a missing key, replaces, deletes, and keeps namespaces apart", function()
        assert.is_nil(db:get("a", "k"))
        db:set("a", "k", 1)
        db:set("b", "k", 2)
        db:set("a", "k", 3)
        assert.equal(3, db:get("a", "k"))
        assert.equal(2, db:get("b", "k"))
        assert.is_true(db:delete("a", "k"))
        assert.is_false(db:delete("a", "k"))
        assert.is_nil(db:get("a", "k"))
        db:set("b", "k", nil) -- nil deletes
        assert.is_nil(db:get("b", "k"))
      end)

      it("lists a namespace in key order, by prefix", function()
        for _, k in ipairs { "job/b", "job/a", "jobz", "job\255x", "job\255", "other", "job/" } do db:set("n", k, k) end
        db:set("m", "job/c", 0)
        local function keys(prefix)
          local out = {}
          for _, e in ipairs(db:list("n", prefix)) do
            assert.equal(e.key, e.value)
            out[#out + 1] = e.key
          end
          return out
        end
        assert.same({ "job/", "job/a", "job/b" }, keys("job/"))
        assert.same({ "job/", "job/a", "job/b", "jobz", "job\255", "job\255x" }, keys("job"))
        assert.same({ "job\255", "job\255x" }, keys("job\255"))
        assert.same({ "job/", "job/a", "job/b", "jobz", "job\255", "job\255x", "other" }, keys())
        assert.same({}, keys("zzz"))
      end)

      it("names the namespace and key of a value JSON cannot hold, and bad arguments", function()
        local err = raised(db.set, db, "ns", "key", { f = print })
        assert.matches("db:set: cannot store the value of ns/key", err, 1, true)
        err = raised(function() db:get("ns", 5) end)
        assert.matches("db:get: key must be a string, got number", err, 1, true)
        assert.matches("^spec/store_spec.lua:%d+:", err) -- raised at the caller
      end)
    end)

    describe("transactions", function()
      it("commit when fn returns, with its results", function()
        local a, b = db:transaction(function(d, x)
          d:set("t", "a", x)
          d:set("t", "b", x + 1)
          return x, "done"
        end, 41)
        assert.equal(41, a)
        assert.equal("done", b)
        assert.equal(42, db:get("t", "b"))
        assert.is_false(db.conn:in_transaction())
      end)

      it("roll back when fn raises, and re-raise the same error", function()
        db:set("t", "a", 1)
        local boom = setmetatable({ kind = "mine" }, { __tostring = function() return "boom" end })
        local err = raised(db.transaction, db, function()
          db:set("t", "a", 2)
          db:set("t", "new", 1)
          error(boom)
        end)
        assert.equal(boom, err)
        assert.equal(1, db:get("t", "a"))
        assert.is_nil(db:get("t", "new"))
        assert.is_false(db.conn:in_transaction())
      end)

      it("nest as savepoints: an inner failure caught by the outer undoes only the inner", function()
        db:transaction(function()
          db:set("t", "outer", 1)
          local ok = pcall(db.transaction, db, function()
            db:set("t", "inner", 1)
            db:transaction(function() db:set("t", "innermost", 1) end)
            error("inner fails")
          end)
          assert.is_false(ok)
          db:transaction(function() db:set("t", "second", 1) end)
        end)
        assert.equal(1, db:get("t", "outer"))
        assert.is_nil(db:get("t", "inner"))
        assert.is_nil(db:get("t", "innermost"))
        assert.equal(1, db:get("t", "second"))
      end)

      it("roll back everything when an inner error reaches the outer", function()
        raised(db.transaction, db, function()
          db:set("t", "outer", 1)
          db:transaction(function()
            db:set("t", "inner", 1)
            error("through")
          end)
        end)
        assert.is_nil(db:get("t", "outer"))
        assert.is_nil(db:get("t", "inner"))
        -- the db is usable afterwards
        db:transaction(function() db:set("t", "after", 1) end)
        assert.equal(1, db:get("t", "after"))
      end)

      it("make other tasks' statements wait until the transaction ends", function()
        local order = {}
        local writer = resi.spawn(function()
          db:transaction(function()
            db:set("t", "x", "writer")
            order[#order + 1] = "writer in"
            resi.sleep(0.05) -- a yield inside the transaction
            order[#order + 1] = "writer out"
          end)
        end)
        resi.sleep(0.01)
        local reader = resi.spawn(function()
          order[#order + 1] = "reader asks"
          local v = db:get("t", "x")
          order[#order + 1] = "reader got " .. v
        end)
        writer:wait()
        reader:wait()
        assert.same({ "writer in", "reader asks", "writer out", "reader got writer" }, order)
      end)

      it("are refused without a function", function()
        local err = raised(db.transaction, db, "nope")
        assert.matches("db:transaction: expected a function, got string", err, 1, true)
      end)
    end)
  end)

  describe("files", function()
    it("are never made from a libpq keyword string, whose password would name the file", function()
      local here = uv.cwd()
      uv.chdir(dir)
      local err = raised(store.open, "host=db.internal password=Kw0rdS3cret dbname=resi")
      uv.chdir(here)
      assert.equal("misuse", err.code)
      assert.truthy(tostring(err):find("postgresql://", 1, true), tostring(err))
      assert.is_nil(tostring(err):find("Kw0rdS3cret", 1, true))
      assert.is_nil(uv.fs_scandir_next(uv.fs_scandir(dir))) -- nothing created
    end)

    it("are created 0600 in 0700 directories, whatever the umask", function()
      local deep = dir .. "/a/b/resi.db"
      local code = [[
        local db = require("resi.store").open(resi.args[1])
        db:set("k", "v", 1)
        local f = io.open(resi.args[2], "w")
        f:write("open\n")
        f:close()
        resi.sleep(0.3) -- the parent looks at the -wal and -shm files meanwhile
        db:close()
      ]]
      local marker = dir .. "/marker"
      local task = resi.spawn(function()
        return proc.run { "sh", "-c", 'umask 000; exec "$0" -e "$1" "$2" "$3"', proc.resi_path(), code, deep, marker }
      end)
      for _ = 1, 200 do
        if uv.fs_stat(marker) then break end
        resi.sleep(0.01)
      end
      assert.equal("700", mode(dir .. "/a"))
      assert.equal("700", mode(dir .. "/a/b"))
      assert.equal("600", mode(deep))
      assert.equal("600", mode(deep .. "-wal"))
      assert.equal("600", mode(deep .. "-shm"))
      local r = task:wait()
      assert.equal(0, r.status, r.stderr)
      assert.equal("600", mode(deep))
    end)

    it("go to $XDG_STATE_HOME/resi/resi.db, else ~/.local/state/resi/resi.db", function()
      local code = [[print(require("resi.store").default_path()); require("resi.store").open():close()]]
      local r = child(code, {}, { env = { "XDG_STATE_HOME=" .. dir .. "/xdg", "RESI_STORE=" } }) -- RESI_STORE would win
      assert.equal(0, r.status, r.stderr)
      assert.equal(dir .. "/xdg/resi/resi.db\n", r.stdout)
      assert.equal("600", mode(dir .. "/xdg/resi/resi.db"))
      assert.equal("700", mode(dir .. "/xdg/resi"))
      r = child(code, {}, { env = { "XDG_STATE_HOME=", "HOME=" .. dir .. "/home", "RESI_STORE=" } })
      assert.equal(0, r.status, r.stderr)
      assert.equal(dir .. "/home/.local/state/resi/resi.db\n", r.stdout)
      assert.equal("600", mode(dir .. "/home/.local/state/resi/resi.db"))
      assert.equal("700", mode(dir .. "/home/.local/state"))
      r = child(code, {}, { env = { "XDG_STATE_HOME=relative/dir", "HOME=" .. dir .. "/home2", "RESI_STORE=" } })
      assert.equal(dir .. "/home2/.local/state/resi/resi.db\n", r.stdout) -- a relative XDG path is ignored
    end)

    it("in a place that cannot exist give a one-line error naming the path", function()
      local f = assert(io.open(dir .. "/plain", "w"))
      f:close()
      local bad = dir .. "/plain/sub/resi.db"
      local err = raised(store.open, bad)
      assert.equal("store", err.kind)
      assert.equal(bad, err.path)
      assert.equal("cantopen", err.code)
      local text = tostring(err)
      assert.matches(bad, text, 1, true)
      assert.is_nil(text:find("\n"))
      -- and in a script: one line on stderr names it
      local r = child([[require("resi.store").open(resi.args[1])]], { bad })
      assert.equal(1, r.status)
      assert.matches("resi.store: " .. bad .. ": " .. dir .. "/plain is not a directory", r.stderr, 1, true)
      assert.is_nil(store.open(dir .. "/ok.db"):close()) -- a missing file in an existing directory is fine
    end)

    it("that are not databases, or are damaged, raise errors naming them", function()
      local junk = dir .. "/junk.db"
      local f = assert(io.open(junk, "w"))
      f:write(("not a database "):rep(100))
      f:close()
      local err = raised(store.open, junk)
      assert.equal("notadb", err.code)
      assert.equal("resi.store: " .. junk .. ": file is not a database", tostring(err))

      local db = store.open(path)
      for i = 1, 200 do db:set("n", "k" .. i, ("x"):rep(100)) end
      db:close()
      f = assert(io.open(path, "r+b"))
      local size = f:seek("end")
      f:seek("set", 4096) -- keep the header page, break every other
      f:write(("\255"):rep(size - 4096))
      f:close()
      db = store.open(path)
      err = raised(db.get, db, "n", "k1")
      assert.equal("corrupt", err.code)
      assert.equal("resi.store: " .. path .. ": database disk image is malformed", tostring(err))
      db:close()
    end)

    it("locked by another process give a busy error naming the file after the timeout", function()
      store.open(path):close()
      local marker = dir .. "/locked"
      local holder = resi.spawn(function()
        return child([[
          local db = require("resi.store").open(resi.args[1])
          db:transaction(function()
            db:set("k", "v", 1)
            io.open(resi.args[2], "w"):close()
            resi.sleep(0.5)
          end)
        ]], { path, marker })
      end)
      for _ = 1, 300 do
        if uv.fs_stat(marker) then break end
        resi.sleep(0.01)
      end
      local db = store.open(path, { busy_timeout = 0.05 })
      local t0 = resi.monotonic()
      local err = raised(db.set, db, "k", "w", 2)
      assert.equal("busy", err.code)
      assert.equal("resi.store: " .. path .. ": database is locked", tostring(err))
      assert.is_true(resi.monotonic() - t0 >= 0.04)
      assert.is_nil(db:get("k", "v")) -- readers are not blocked in WAL mode: they see the last commit
      assert.equal(0, holder:wait().status)
      db:set("k", "w", 2) -- the lock is free again
      assert.equal(1, db:get("k", "v"))
      db:close()
    end)
  end)

  describe("schema", function()
    it("is created in an empty file, and reopening keeps the data", function()
      local empty = dir .. "/empty.db"
      assert(io.open(empty, "w")):close()
      local db = store.open(empty)
      assert.equal(store.schema_version, db.conn:first("PRAGMA user_version").user_version)
      assert.equal("wal", db.conn:first("PRAGMA journal_mode").journal_mode)
      assert.equal(2, db.conn:first("PRAGMA synchronous").synchronous) -- FULL
      db:set("k", "v", "kept")
      db:close()
      db = store.open(empty)
      assert.equal("kept", db:get("k", "v"))
      db:close()
    end)

    it("from a newer resi is refused with a clear message, and left untouched", function()
      local newer = dir .. "/newer.db"
      local conn = assert(core.open(newer))
      conn:exec("CREATE TABLE future (x); PRAGMA user_version = " .. (store.schema_version + 1))
      conn:close()
      local err = raised(store.open, newer)
      assert.equal("schema", err.code)
      assert.equal(newer, err.path)
      assert.matches(("schema version %d is newer than this resi supports (%d)"):format(store.schema_version + 1,
        store.schema_version), tostring(err), 1, true)
      conn = assert(core.open(newer))
      assert.equal("delete", conn:first("PRAGMA journal_mode").journal_mode) -- not switched to WAL
      assert.is_nil(conn:first("SELECT name FROM sqlite_master WHERE name = 'kv'"))
      conn:close()
    end)

    it("is migrated once when two processes open a new file at the same moment", function()
      local code = [[
        local db = require("resi.store").open(resi.args[1])
        db:set("who", resi.args[2], true)
        db:close()
      ]]
      local a, b = resi.all {
        function() return child(code, { path, "a" }) end,
        function() return child(code, { path, "b" }) end,
      }
      assert.equal(0, a.status, a.stderr)
      assert.equal(0, b.status, b.stderr)
      local db = store.open(path)
      assert.equal(2, #db:list("who"))
      db:close()
    end)
  end)

  describe("closing", function()
    it("happens with <close>, and a closed db raises naming its file", function()
      local held
      do
        local db <close> = store.open(path)
        db:set("k", "v", 1)
        held = db
      end
      assert.is_false(held:is_open())
      local err = raised(held.get, held, "k", "v")
      assert.equal("closed", err.code)
      assert.equal("resi.store: " .. path .. ": the database is closed", tostring(err))
      held:close()
      assert.matches("closed", tostring(held), 1, true)
    end)
  end)

  describe("under kill -9", function()
    -- Starts a child resi running code with args; returns its handle, its
    -- pid and a function that waits for its exit and returns the signal.
    local function start(code, args)
      local exited, signal = false, nil
      local waiter
      local argv = { "-e", code }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      local handle, pid
      handle, pid = uv.spawn(proc.resi_path(), { args = argv }, function(_, sig)
        exited, signal = true, sig
        handle:close()
        if waiter then waiter() end
      end)
      assert(handle, pid)
      local function wait()
        if not exited then resi.await(function(done) waiter = done end) end
        return signal
      end
      return handle, pid, wait
    end

    it("leaves a consistent database after 20 kills in the middle of transactions", function()
      local code = [[
        local store = require "resi.store"
        local db = store.open(resi.args[1])
        local i = db:get("c", "a") or 0
        while true do
          i = i + 1
          db:transaction(function()
            db:set("c", "a", i)
            assert(db:claim_run { job = "tx", nominal_at = i })
            db:set("blob", "k" .. i % 50, ("x"):rep(i % 3000))
            assert(db:finish_run("tx", i, "succeeded"))
            db:set("c", "b", i)
          end)
          if db:claim_run { job = "loose", nominal_at = i } then db:finish_run("loose", i, "failed", { error = "e" }) end
        end
      ]]
      local last, interrupted = 0, 0
      for kill = 1, 20 do
        local handle, _, wait = start(code, { path })
        resi.sleep(0.05 + math.random() * 0.15)
        handle:kill("sigkill")
        assert.equal(9, wait())
        local db = store.open(path)
        assert.equal("ok", db.conn:first("PRAGMA integrity_check").integrity_check)
        local a, b = db:get("c", "a"), db:get("c", "b")
        assert.equal(a, b, "kill " .. kill)
        assert.is_true((a or 0) >= last, "kill " .. kill)
        last = a or 0
        local tx = db.conn:first("SELECT count(*) AS n, sum(status = 'succeeded') AS ok FROM runs WHERE job = 'tx'")
        assert.equal(last, tx.n)
        assert.equal(last, tx.ok or 0)
        -- the loose claim in flight, if any, belongs to a dead process
        local marked = db:interrupt_dead()
        assert.is_true(#marked <= 1)
        interrupted = interrupted + #marked
        assert.same({}, db:running_runs())
        db:close()
      end
      assert.is_true(last > 20, "the children made progress: " .. last)
      local db = store.open(path)
      local loose = db.conn:first("SELECT count(*) AS n, sum(status = 'interrupted') AS i FROM runs WHERE job = 'loose'")
      assert.equal(interrupted, loose.i or 0)
      db:close()
    end)
  end)
end)
