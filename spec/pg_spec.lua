-- resi.pg: the non-blocking PostgreSQL driver against a real PostgreSQL
-- started for this file (spec/support/postgres.lua): types, parameters,
-- SQLSTATE codes, the FIFO of tasks, transactions, cancellation, timeouts,
-- a restarted and a killed server, secrets, and proof the loop never blocks.
local pg = require "resi.pg"
local resi = require "resi"
local uv = require "luv"
local postgres = require "spec.support.postgres"
local sockets = require "spec.support.sockets"
local proc = require "spec.support.proc"
local raised = require("spec.support.checks").raised

-- Seconds on the monotonic clock.
local function now() return uv.hrtime() / 1e9 end

-- Active server-side queries whose text contains marker (not this one).
local function active(server, marker)
  local res = server.admin("SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' "
    .. "AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()", { marker })
  return res[1].n
end

describe("resi.pg", function()
  local server = postgres.for_block()

  it("connects and shows where, never the password", function()
    local conn = assert(pg.connect(server.url))
    assert.is_true(conn:ok())
    assert.is_true(conn.server_version >= 120000)
    local text = tostring(conn)
    assert.matches("resi@127.0.0.1:" .. server.port .. "/postgres", text, 1, true)
    assert.is_nil(text:find(server.password, 1, true))
    conn:close()
    conn:close() -- idempotent
    assert.is_false(conn:ok())
    local res, msg, code = conn:query("SELECT 1")
    assert.is_nil(res)
    assert.equals("connection", code)
    assert.matches("closed", msg)
  end)

  it("decodes values by type and reports columns and affected rows", function()
    local conn = assert(pg.connect(server.url))
    local res = assert(conn:query([[SELECT 1::int2 AS i2, 70000::int4 AS i4,
      9223372036854775807::int8 AS i8, 1.5::float4 AS f4, 0.1::float8 AS f8, 12.25::numeric AS n,
      'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, true AS yes, false AS no, 'zaïre ✓'::text AS t,
      '{"a": [1, 2]}'::jsonb AS j, NULL::int AS missing, 26::oid AS o, '2026-01-02'::date AS d]]))
    assert.equals(1, #res)
    local row = res[1]
    assert.equals(math.type(row.i2), "integer")
    assert.equals(1, row.i2)
    assert.equals(70000, row.i4)
    assert.equals(math.maxinteger, row.i8)
    assert.equals(1.5, row.f4)
    assert.equals(0.1, row.f8)
    assert.equals(12.25, row.n)
    assert.is_true(row.nan ~= row.nan)
    assert.equals(math.huge, row.inf)
    assert.is_true(row.yes)
    assert.is_false(row.no)
    assert.equals("zaïre ✓", row.t)
    assert.equals('{"a": [1, 2]}', row.j)
    assert.is_nil(row.missing)
    assert.equals(26, row.o)
    assert.equals("2026-01-02", row.d)
    assert.same({ "i2", "i4", "i8", "f4", "f8", "n", "nan", "inf", "yes", "no", "t", "j", "missing", "o", "d" }, res.columns)
    assert(conn:query("CREATE TEMP TABLE t (id int PRIMARY KEY, v text)"))
    local ins = assert(conn:query("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"))
    assert.equals(3, ins.affected)
    assert.equals(0, #ins)
    local upd = assert(conn:query("UPDATE t SET v = 'z' WHERE id > $1 RETURNING id", { 1 }))
    assert.equals(2, upd.affected)
    assert.same({ { id = 2 }, { id = 3 } }, { upd[1], upd[2] })
    conn:close()
  end)

  it("passes parameters as values only, NULL included", function()
    local conn = assert(pg.connect(server.url))
    assert(conn:query("CREATE TEMP TABLE p (v text)"))
    local evil = "x'); DROP TABLE p; --"
    local res = assert(conn:query("SELECT $1::text AS s, $2::int AS i, $3::float8 AS f, $4::bool AS b, $5::text AS n, $6::text AS m",
      { evil, -42, 2.5, true, pg.null, nil, n = 6 }))
    assert.same({ s = evil, i = -42, f = 2.5, b = true }, res[1])
    assert(conn:query("INSERT INTO p VALUES ($1)", { evil }))
    local back = assert(conn:query("SELECT v FROM p WHERE v = $1", { evil }))
    assert.equals(evil, back[1].v)
    assert.equals("pg.null", tostring(pg.null))
    -- $1 is never SQL: a parameter that looks like a statement is just text
    local cnt = assert(conn:query("SELECT count(*) AS c FROM p WHERE v = $1", { "' OR '1'='1" }))
    assert.equals(0, cnt[1].c)
    -- bad arguments raise, naming the argument
    assert.matches("sql must be a string", raised(conn.query, conn, 42))
    assert.matches("params%[2%] is not a string, number, boolean or pg.null", raised(conn.query, conn, "SELECT $1, $2", { 1, {} }))
    assert.matches("params must be a table", raised(conn.query, conn, "SELECT 1", "x"))
    assert.matches("NUL byte", raised(conn.query, conn, "SELECT $1", { "a\0b" }))
    assert.matches("timeout must be a positive number", raised(conn.query, conn, "SELECT 1", {}, { timeout = -1 }))
    assert.is_true(conn:ok()) -- nothing was sent
    assert.equals(1, assert(conn:query("SELECT 1 AS one"))[1].one)
    conn:close()
  end)

  it("returns SQLSTATE codes and stays usable after a server error", function()
    local conn = assert(pg.connect(server.url))
    assert(conn:query("CREATE TEMP TABLE u (k text PRIMARY KEY)"))
    assert(conn:query("INSERT INTO u VALUES ($1)", { "a" }))
    local res, msg, code = conn:query("INSERT INTO u VALUES ($1)", { "a" })
    assert.is_nil(res)
    assert.equals("23505", code)
    assert.matches("duplicate key", msg)
    local _, _, code2 = conn:query("SELEC 1")
    assert.equals("42601", code2)
    local _, _, code3 = conn:query("SELECT 1/0")
    assert.equals("22012", code3)
    assert.is_true(conn:ok())
    assert.equals(1, #assert(conn:query("SELECT k FROM u")))
    conn:close()
  end)

  it("runs the queries of concurrent tasks one at a time, in call order", function()
    local conn = assert(pg.connect(server.url))
    local order, tasks = {}, {}
    for i = 1, 20 do
      tasks[i] = resi.spawn(function()
        local res, msg = conn:query("SELECT $1::int AS i, pg_sleep($2)", { i, (i % 3) * 0.01 })
        assert(res, msg)
        order[#order + 1] = res[1].i
      end)
    end
    for _, t in ipairs(tasks) do t:wait() end
    local want = {}
    for i = 1, 20 do want[i] = i end
    assert.same(want, order)
    conn:close()
  end)

  it("keeps a transaction to its task: other tasks' queries wait, rollback re-raises", function()
    local conn = assert(pg.connect(server.url))
    local other = assert(pg.connect(server.url))
    assert(conn:query("CREATE TABLE IF NOT EXISTS tx (v int)"))
    assert(conn:query("TRUNCATE tx"))
    local seen_outside, b_done_at, a_done_at
    local a = resi.spawn(function()
      return conn:transaction(function(c, x)
        assert(c:query("INSERT INTO tx VALUES ($1)", { x }))
        resi.sleep(0.3)
        seen_outside = assert(other:query("SELECT count(*) AS n FROM tx"))[1].n
        a_done_at = now()
        return "done", x
      end, 7)
    end)
    local b = resi.spawn(function()
      resi.sleep(0.05)
      local res = assert(conn:query("SELECT count(*) AS n FROM tx"))
      b_done_at = now()
      return res[1].n
    end)
    local r1, r2 = a:wait()
    assert.equals("done", r1)
    assert.equals(7, r2)
    assert.equals(0, seen_outside) -- not committed yet
    assert.equals(1, b:wait())     -- b ran after the COMMIT, not inside the transaction
    assert.is_true(b_done_at > a_done_at)
    -- an error rolls back and is re-raised; the connection is free again
    local err = raised(conn.transaction, conn, function(c)
      assert(c:query("INSERT INTO tx VALUES (99)"))
      error("boom")
    end)
    assert.matches("boom", err)
    assert.equals(0, assert(conn:query("SELECT count(*) AS n FROM tx WHERE v = 99"))[1].n)
    -- a failed statement the function ignored: COMMIT becomes a rollback
    local res, msg, code = conn:transaction(function(c)
      assert(c:query("INSERT INTO tx VALUES (5)"))
      c:query("SELECT 1/0")
      return "ignored"
    end)
    assert.is_nil(res)
    assert.equals("25P02", code)
    assert.matches("rolled back", msg)
    assert.equals(0, assert(conn:query("SELECT count(*) AS n FROM tx WHERE v = 5"))[1].n)
    assert.matches("nested", raised(conn.transaction, conn, function(c) return c:transaction(function() end) end))
    -- a task cancelled inside a transaction (not in a query): nobody inherits it
    local inside = resi.spawn(function()
      return conn:transaction(function(c)
        assert(c:query("INSERT INTO tx VALUES (6)"))
        resi.sleep(30)
      end)
    end)
    local next_query = resi.spawn(function() return conn:query("SELECT count(*) AS n FROM tx WHERE v = 6") end)
    resi.sleep(0.1)
    inside:cancel()
    local after, _, after_code = next_query:wait()
    assert.is_nil(after) -- the connection was closed, not handed over mid-transaction
    assert.equals("connection", after_code)
    assert.equals(0, assert(other:query("SELECT count(*) AS n FROM tx WHERE v = 6"))[1].n)
    conn = assert(pg.connect(server.url))
    assert(conn:query("DROP TABLE tx"))
    conn:close()
    other:close()
  end)

  it("cancels a running query when its task is cancelled", function()
    local conn = assert(pg.connect(server.url))
    local t = resi.spawn(function() return conn:query("SELECT pg_sleep(30) /* cancel-me */") end)
    resi.sleep(0.3)
    assert.equals(1, active(server, "cancel-me"))
    local t0 = now()
    t:cancel()
    assert.is_true(resi.is_cancelled(select(2, pcall(t.wait, t))))
    assert.is_true(now() - t0 < 1)
    assert.is_false(conn:ok())
    assert.is_true(proc.eventually(function() return active(server, "cancel-me") == 0 end, 5))
    -- a task waiting in the FIFO behind it is not lost
    conn = assert(pg.connect(server.url))
    local slow = resi.spawn(function() return conn:query("SELECT pg_sleep(30) /* cancel-2 */") end)
    local queued = resi.spawn(function() return conn:query("SELECT 1 AS one") end)
    resi.sleep(0.2)
    queued:cancel()
    slow:cancel()
    pcall(slow.wait, slow)
    assert.equals("cancelled", queued:status())
    assert.is_true(proc.eventually(function() return active(server, "cancel-2") == 0 end, 5))
  end)

  it("times a query out: cancelled on the server, the connection closed", function()
    local conn = assert(pg.connect(server.url))
    local t0 = now()
    local res, msg, code = conn:query("SELECT pg_sleep(30) /* time-me-out */", {}, { timeout = 0.3 })
    local took = now() - t0
    assert.is_nil(res)
    assert.equals("timeout", code)
    assert.matches("timed out after 0.3s", msg)
    assert.is_true(took >= 0.29 and took < 1.5, "took " .. took)
    assert.is_false(conn:ok())
    assert.is_true(proc.eventually(function() return active(server, "time-me-out") == 0 end, 5))
    local ok_res = assert(pg.connect(server.url)):query("SELECT 2 AS two", {}, { timeout = 5 })
    assert.equals(2, ok_res[1].two)
  end)

  it("sets TCP keepalives and application_name unless the URL says otherwise", function()
    local conn = assert(pg.connect(server.url))
    local res = assert(conn:query("SELECT inet_client_port() AS port, current_setting('application_name') AS app"))
    assert.equals("resi", res[1].app)
    -- /proc/net/tcp: the client socket (local port, state 01 established:
    -- an earlier connection's TIME_WAIT entry can hold the same port) runs
    -- the keepalive timer (tr 02), due within keepalives_idle = 5 s (the
    -- time is in 1/100 s)
    local port_hex = ("%04X"):format(res[1].port)
    local f = assert(io.open("/proc/net/tcp"))
    local tr, when
    for l in f:lines() do
      local lport, st, t, w = l:match("^%s*%d+: %x+:(%x+) %x+:%x+ (%x+) %x+:%x+ (%x+):(%x+)")
      if lport == port_hex and st == "01" then tr, when = t, w end
    end
    f:close()
    assert.is_not_nil(tr, "client socket not in /proc/net/tcp")
    assert.equals("02", tr)
    assert.is_true(tonumber(when, 16) <= 500)
    conn:close()
    local named = assert(pg.connect(server.url .. "?application_name=other"))
    assert.equals("other", assert(named:query("SELECT current_setting('application_name') AS app"))[1].app)
    named:close()
  end)

  it("keeps the loop running during a slow query", function()
    local conn = assert(pg.connect(server.url))
    local ticks, running = 0, true
    local ticker = resi.spawn(function()
      while running do
        resi.sleep(0.05)
        ticks = ticks + 1
      end
    end)
    local t0 = now()
    assert(conn:query("SELECT pg_sleep(1)"))
    running = false
    ticker:wait()
    assert.is_true(now() - t0 >= 1)
    assert.is_true(ticks >= 15, "only " .. ticks .. " ticks in a 1 s query")
    conn:close()
  end)

  it("fails to connect with a message naming host:port and never the password", function()
    local port = sockets.closed_port()
    local t0 = now()
    local conn, msg, code = pg.connect(("postgresql://resi:hunter2-Secret@127.0.0.1:%d/db"):format(port))
    assert.is_nil(conn)
    assert.equals("connection", code)
    assert.matches("127.0.0.1:" .. port, msg, 1, true)
    assert.matches("refused", msg)
    assert.is_nil(msg:find("hunter2", 1, true))
    assert.is_true(now() - t0 < 2)
    -- a wrong password: the server refuses, the message does not echo it
    local bad = ("postgresql://resi:wrong-Pa55word@127.0.0.1:%d/postgres"):format(server.port)
    conn, msg, code = pg.connect(bad)
    assert.is_nil(conn)
    assert.equals("connection", code)
    assert.matches("password authentication failed", msg)
    assert.is_nil(msg:find("wrong-Pa55word", 1, true))
    -- an unparsable URL that holds the password: libpq's quoting is dropped
    conn, msg = pg.connect("postgresql://resi:Sekr1t-pw@[::1/db")
    assert.is_nil(conn)
    assert.matches("bad connection string", msg)
    assert.is_nil(msg:find("Sekr1t", 1, true))
    -- a conninfo string works too, and its password is scrubbed from messages
    conn, msg = pg.connect(("host=127.0.0.1 port=%d user=resi password=Zz-pass-9 dbname=x"):format(port))
    assert.is_nil(conn)
    assert.is_nil(msg:find("Zz-pass-9", 1, true))
    -- a host name is resolved by libuv first
    conn = assert(pg.connect(("postgresql://resi:%s@localhost:%d/postgres"):format(server.password, server.port)))
    assert.matches("resi@localhost:" .. server.port, tostring(conn), 1, true)
    conn:close()
  end)

  it("times out a connect to a server that never answers", function()
    local port, stop = sockets.silent()
    local t0 = now()
    local conn, msg, code = pg.connect(("postgresql://u:p@127.0.0.1:%d/db"):format(port), { timeout = 0.3 })
    stop()
    assert.is_nil(conn)
    assert.equals("connection", code)
    assert.matches("timed out", msg)
    assert.is_true(now() - t0 < 1.5)
    assert.matches("connect: timeout must be a positive number", raised(pg.connect, "x", { timeout = "1" }))
    assert.matches("url must be a string", raised(pg.connect, nil))
  end)

  it("reports a restarted server as a lost connection; pg.client reconnects", function()
    local client = pg.client(server.url)
    assert.matches("resi@127.0.0.1:" .. server.port, tostring(client), 1, true)
    assert.is_nil(tostring(client):find(server.password, 1, true))
    assert.is_false(client:ok()) -- lazy
    assert.equals(1, assert(client:query("SELECT 1 AS one"))[1].one)
    local conn = assert(pg.connect(server.url))
    local inflight = resi.spawn(function() return conn:query("SELECT pg_sleep(30)") end)
    resi.sleep(0.2)
    server.restart()
    local res, msg, code = inflight:wait()
    assert.is_nil(res)
    assert.equals("connection", code)
    assert.is_string(msg)
    assert.is_false(conn:ok())
    -- the client's idle connection died with the server: one failure, then back
    res, msg, code = client:query("SELECT 2 AS two")
    if res == nil then
      assert.equals("connection", code)
      assert.is_nil(msg:find(server.password, 1, true))
      res = assert(client:query("SELECT 2 AS two"))
    end
    assert.equals(2, res[1].two)
    assert.is_true(client:ok())
    assert.equals(3, client:transaction(function(c) return assert(c:query("SELECT 3 AS x"))[1].x end))
    client:close()
    local _, _, closed = client:query("SELECT 1")
    assert.equals("connection", closed)
  end)

  it("notices a killed server promptly, and reconnects with backoff once it is back", function()
    local client = pg.client(server.url)
    assert(client:query("SELECT 1"))
    local conn = assert(pg.connect(server.url))
    local inflight = resi.spawn(function() return conn:query("SELECT pg_sleep(30)") end)
    resi.sleep(0.2)
    local t0 = now()
    server.kill()
    local res, _, code = inflight:wait()
    assert.is_nil(res)
    assert.equals("connection", code)
    assert.is_true(now() - t0 < 3, "took " .. (now() - t0))
    -- down: the client fails fast with "connection", waiting longer each time
    local fails, f0 = 0, now()
    for _ = 1, 4 do
      local r, m, c = client:query("SELECT 1")
      assert.is_nil(r)
      assert.equals("connection", c)
      assert.is_nil(m:find(server.password, 1, true))
      fails = fails + 1
    end
    local waited = now() - f0
    assert.is_true(waited >= 0.2 * 0.75 + 0.4 * 0.75 + 0.8 * 0.75, "backoff waited only " .. waited)
    server.start()
    local back = assert(client:query("SELECT 4 AS four"))
    assert.equals(4, back[1].four)
    client:close()
  end)
end)
