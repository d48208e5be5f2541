-- resi.store on PostgreSQL: the same API, schema and statements as on
-- SQLite, against a real server started for the spec (spec/support/postgres).
-- Every behaviour below runs on both back-ends; then what only a shared
-- store has: migrations under concurrency, a newer schema refused, the
-- password never shown, leases on the database clock, calls outside a task.
local store = require "resi.store"
local json = require "resi.json"
local files = require "spec.support.files"
local proc = require "spec.support.proc"
local postgres = require "spec.support.postgres"
local lease = require "resi.store.lease"
local raised = require("spec.support.checks").raised

local server = postgres.for_block()
local dir

setup(function() dir = files.dir("resi-store-pg") end)
teardown(function() if dir then files.remove_dir(dir) end end)

-- The behaviours of the common API, for a store opened by open().
local function common(name, open)
  describe(name .. " back-end", function()
    local db
    before_each(function() db = open() end)
    after_each(function() db:close() end)

    it("keeps values exactly (bytes, integers, arrays) and lists by byte order of keys", function()
      db:set("ns", "b", { s = "a\0b\255", big = math.maxinteger, list = json.array({ 1, 2 }) })
      db:set("ns", "a", 1.0)
      db:set("ns", "c", "x")
      local v = db:get("ns", "b")
      assert.equal("a\0b\255", v.s)
      assert.equal(math.maxinteger, v.big)
      assert.same({ 1, 2 }, v.list)
      assert.equal(1, db:get("ns", "a"))
      local keys = {}
      for _, row in ipairs(db:list("ns")) do keys[#keys + 1] = row.key end
      assert.same({ "a", "b", "c" }, keys)
      assert.equal(1, #db:list("ns", "c"))
      assert.is_true(db:delete("ns", "a"))
      assert.is_false(db:delete("ns", "a"))
      assert.is_nil(db:get("ns", "a"))
    end)

    it("adds a key once (add), the second add keeps the first value", function()
      assert.is_true(db:add("once", "k", { v = 1 }))
      assert.is_false(db:add("once", "k", { v = 2 }))
      assert.equal(1, db:get("once", "k").v)
    end)

    it("commits a transaction, rolls back on error, nests as savepoints", function()
      assert.equal(7, db:transaction(function(d) d:set("tx", "a", 1) return 7 end))
      local err = raised(db.transaction, db, function(d)
        d:set("tx", "b", 2)
        error("boom", 0)
      end)
      assert.equal("boom", err)
      assert.is_nil(db:get("tx", "b"))
      db:transaction(function(d)
        d:set("tx", "c", 3)
        pcall(d.transaction, d, function(d2)
          d2:set("tx", "d", 4)
          error("inner")
        end)
      end)
      assert.equal(3, db:get("tx", "c"))
      assert.is_nil(db:get("tx", "d"))
    end)

    it("claims a slot once, finishes it once, records skipped slots, reruns interrupted ones", function()
      assert.is_true(db:claim_run{ job = "j", nominal_at = 100 })
      assert.is_false(db:claim_run{ job = "j", nominal_at = 100 })
      assert.is_true(db:finish_run("j", 100, "succeeded"))
      assert.is_false(db:finish_run("j", 100, "failed"))
      assert.is_true(db:record_slot("j", 101, "missed", { error = "paused" }))
      assert.is_false(db:claim_run{ job = "j", nominal_at = 101 })
      local row = db:get_run("j", 100)
      assert.equal("succeeded", row.status)
      assert.equal(1, row.attempt)
      assert.equal("number", type(row.started_at))
      assert.equal("j", db:last_run("j").job)
      assert.equal(101, db:last_run("j").nominal_at)
      assert.equal(2, #db:history{ job = "j" })
      assert.is_true(db:claim_run{ job = "j", nominal_at = 102, pid = 999999 })
      assert.is_true(db:mark_interrupted(db:get_run("j", 102), "gone"))
      assert.equal(2, db:rerun{ job = "j", nominal_at = 102 })
      assert.is_nil(db:rerun{ job = "j", nominal_at = 102 })
      -- a claim released before it started: gone, so the slot can be claimed again
      assert.is_true(db:claim_run{ job = "j", nominal_at = 103, pid = 4242 })
      assert.is_false(db:release_claim("j", 103, 4243))
      assert.is_true(db:release_claim("j", 103, 4242))
      assert.is_nil(db:get_run("j", 103))
      assert.is_false(db:release_claim("j", 102, 999999)) -- not held by that pid any more
      assert.equal(1, db:prune_runs(101))
      db:set_paused("j", true)
      assert.is_true(db:job_state("j").paused)
      db:set_next_at("j", 200)
      assert.equal(200, db:job_state("j").next_at)
    end)

    it("claims under a lease on the database clock: early, taken, overlap, renew, reap, rerun", function()
      local me = lease.owner_id()
      local now = math.floor(db:db_clock())
      assert.near(os.time(), now, 2)
      local ok, why, wait = db:claim_leased{ job = "L", nominal_at = now + 30, owner = me, lease = 5 }
      assert.is_false(ok)
      assert.equal("early", why)
      assert.near(30, wait, 2)
      assert.is_true(db:claim_leased{ job = "L", nominal_at = now, owner = me, lease = 1 })
      assert.same({ false, "taken" }, { db:claim_leased{ job = "L", nominal_at = now, owner = "other", lease = 1 } })
      assert.same({ false, "overlap" },
        { db:claim_leased{ job = "L", nominal_at = now - 1, owner = "other", lease = 1, exclusive = true } })
      local held = db:renew_runs(me, 0.5)
      assert.is_number(held["L\0" .. now])
      assert.same({}, db:renew_runs("other", 5))
      assert.is_false(db:finish_owned("L", now, "succeeded", "other"))
      resi.sleep(0.7)
      assert.same({}, db:renew_runs(me, 5)) -- expired: not renewed any more
      assert.is_false(db:finish_owned("L", now, "succeeded", me))
      local reaped = db:reap_expired()
      assert.equal(1, #reaped)
      assert.equal(me, reaped[1].owner)
      assert.same({}, db:reap_expired())
      assert.equal("interrupted", db:get_run("L", now).status)
      assert.equal(2, db:rerun_leased{ job = "L", nominal_at = now, owner = "other", lease = 5 })
      assert.is_true(db:finish_owned("L", now, "succeeded", "other"))
      assert.equal("other", db:get_run("L", now).owner)
    end)

    it("hands a named lease to one owner, with a new term after expiry", function()
      local term = db:acquire_lease("chore", "a", 0.4)
      assert.equal(1, term)
      assert.is_nil(db:acquire_lease("chore", "b", 5))
      assert.is_number(db:extend_lease("chore", "a", 1, 0.4))
      assert.is_nil(db:extend_lease("chore", "b", 1, 5))
      resi.sleep(0.5)
      assert.equal(2, db:acquire_lease("chore", "b", 5))
      assert.is_nil(db:extend_lease("chore", "a", 1, 5)) -- the old holder is fenced by the term
      assert.equal("b", db:lease_holder("chore").owner)
      db:release_lease("chore", "b", 2)
      assert.is_nil(db:lease_holder("chore"))
    end)

    it("keeps intents: begin makes one, a second begin resumes it", function()
      local intent = require "resi.intent"
      local book = intent.open("wf", { account = "acct1", store = db })
      local it = book:begin("k1", { user = "u1" })
      assert.is_false(it.resumed)
      local again = book:begin("k1", { user = "other" })
      assert.is_true(again.resumed)
      assert.equal("u1", again.plan.user)
      it:finish({ done = true })
      local r, how = book:once("k1", { act = function() error("must not act") end })
      assert.equal("done", how)
      assert.is_true(r.done)
    end)
  end)
end

common("SQLite", function()
  local path = dir .. "/" .. tostring(math.random(1, 1e9)) .. ".db"
  return store.open(path)
end)

local pg_url
common("PostgreSQL", function()
  pg_url = pg_url or server.fresh_url()
  local db = store.open(pg_url)
  for _, t in ipairs({ "kv", "runs", "jobs", "leases" }) do db.conn:exec("DELETE FROM " .. t) end
  return db
end)

describe("a PostgreSQL store", function()
  it("says which back-end it is and never shows the password", function()
    local url = server.fresh_url()
    local password = url:match("://[^:]+:([^@]+)@")
    assert.is_true(#password >= 8)
    local db = store.open(url)
    assert.is_true(db.shared)
    assert.equal("postgres", db.dialect)
    assert.is_nil(tostring(db):find(password, 1, true))
    assert.is_nil(db.path:find(password, 1, true))
    db:close()
    local at = url:find(password, 1, true)
    local bad = url:sub(1, at - 1) .. password .. "x" .. url:sub(at + #password)
    local err = raised(store.open, bad)
    assert.equal("store", err.kind)
    assert.is_nil(tostring(err):find(password, 1, true))
    local err2 = raised(store.open, (url:gsub("/db%d+$", "/nosuchdb")))
    assert.is_nil(tostring(err2):find(password, 1, true))
    assert.matches("nosuchdb", tostring(err2), 1, true)
  end)

  it("is migrated once when three processes open a new database at the same moment", function()
    local url = server.fresh_url()
    local code = [[
      local db = require("resi.store").open(resi.args[1])
      db:set("who", resi.args[2], true)
      db:close()
    ]]
    local results = { resi.all {
      function() return proc.resi({ "-e", code, url, "a" }) end,
      function() return proc.resi({ "-e", code, url, "b" }) end,
      function() return proc.resi({ "-e", code, url, "c" }) end,
    } }
    assert.equal(3, #results)
    for _, r in ipairs(results) do assert.equal(0, r.status, r.stderr) end
    local db = store.open(url)
    assert.equal(3, #db:list("who"))
    assert.equal(store.schema_version, db.conn:first("SELECT version FROM resi_schema").version)
    db:close()
  end)

  it("from a newer resi is refused with a clear message, and left untouched", function()
    local url = server.fresh_url()
    local db = store.open(url)
    db.conn:exec("UPDATE resi_schema SET version = version + 1")
    db:close()
    local err = raised(store.open, url)
    assert.equal("schema", err.code)
    assert.matches(("schema version %d is newer than this resi supports (%d)"):format(store.schema_version + 1,
      store.schema_version), tostring(err), 1, true)
  end)

  it("raises a clear error when called outside a task", function()
    local url = server.fresh_url()
    local r = proc.resi({ "-e", [[
      local db = require("resi.store").open(resi.args[1])
      local t = require("luv").new_timer()
      t:start(10, 0, function() -- a luv callback runs outside every task
        t:close()
        local ok, err = pcall(db.get, db, "a", "b")
        print(ok, err.code, tostring(err))
      end)
    ]], url })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^false\tnotask\t", r.stdout)
    assert.matches("call them inside a task", r.stdout, 1, true)
  end)

  it("raises 'unavailable' while the server is down and works again once it is back", function()
    local url = server.fresh_url()
    local db = store.open(url, { timeout = 5 })
    db:set("a", "b", 1)
    server.stop_fast()
    local err = raised(db.get, db, "a", "b")
    assert.equal("unavailable", err.code)
    server.start()
    assert.is_true(proc.eventually(function()
      local ok, v = pcall(db.get, db, "a", "b")
      return ok and v == 1
    end, 15))
    db:close()
  end)
end)
