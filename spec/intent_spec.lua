-- resi.intent on a scratch store file: once() acts once, a pending intent
-- (begun, never finished: a crash) is resumed with its own plan and its
-- effect looked for first, an act that raises leaves it pending, every
-- change survives a reopen of the store, the idempotency key is fixed,
-- the lock is one run at a time per book, namespaces are per account, bad
-- arguments are named; and a process killed with -9 after begin leaves an
-- intent that the next process sees pending with the same plan.
local intent = require "resi.intent"
local wp = require "spec.support.workflow_proc"
local files = require "spec.support.files"

describe("resi.intent", function()
  local dir, path

  -- A book on the scratch store (a new connection each time: a reopen).
  local function open(name, account)
    return intent.open(name or "w", { account = account or "unknownproxies:reseller", store = path })
  end

  before_each(function()
    dir = wp.scratch_dir()
    path = dir .. "/state/resi.db"
  end)

  after_each(function()
    collectgarbage() -- closes the books' connections before the files go
    wp.remove(dir)
  end)

  it("acts once, then answers done with the recorded result", function()
    local book, acts = open(), 0
    local steps = { plan = function() return { limit = 6 } end, act = function(p) acts = acts + 1; return p.limit * 10 end }
    local r, how = book:once("tok1:1", steps)
    assert.are.same({ 60, "acted" }, { r, how })
    r, how = book:once("tok1:1", steps)
    assert.are.same({ 60, "done" }, { r, how })
    r, how = open():once("tok1:1", steps) -- another run, the same store
    assert.are.same({ 60, "done" }, { r, how })
    assert.are.equal(1, acts)
    assert.are.equal("done", open():get("tok1:1").state)
  end)

  it("resumes a pending intent with its own plan, consulting find first", function()
    local it = open():begin("k", { limit = 1 }) -- then a crash: no finish
    assert.is_false(it.resumed)
    local seen, acted = {}, 0
    local steps = { plan = function() return { limit = 2 } end,
      find = function(p) seen[#seen + 1] = p.limit; return "seen-" .. p.limit end,
      act = function() acted = acted + 1 end }
    local r, how = open():once("k", steps)
    assert.are.same({ "seen-1", "found" }, { r, how })
    assert.are.same({ 1 }, seen)
    assert.are.equal(0, acted)
    assert.are.equal("seen-1", open():get("k").result)
  end)

  it("acts again with the recorded plan when find sees nothing", function()
    open():begin("k", { limit = 1 })
    local found = 0
    local r, how = open():once("k", { plan = function() return { limit = 2 } end,
      find = function() found = found + 1; return nil end, act = function(p, it) return { p.limit, it.resumed } end })
    assert.are.same({ { 1, true }, "acted" }, { r, how })
    assert.are.equal(1, found)
  end)

  it("does not consult find for a fresh intent", function()
    local r, how = open():once("fresh", { find = function() error("find called for a fresh intent") end,
      act = function() return "made" end })
    assert.are.same({ "made", "acted" }, { r, how })
  end)

  it("leaves the intent pending when act raises, and the error goes on", function()
    local ok, err = pcall(open().once, open(), "k", { plan = function() return { v = 7 } end,
      act = function() error("provider said no", 0) end })
    assert.is_false(ok)
    assert.are.equal("provider said no", err)
    local it = open():get("k")
    assert.are.equal("pending", it.state)
    assert.are.equal(7, it.plan.v)
    assert.are.equal(1, #open():pending())
    local r, how = open():once("k", { act = function(p) return p.v end })
    assert.are.same({ 7, "acted" }, { r, how })
    assert.are.equal(0, #open():pending())
  end)

  it("keeps update, finish and abandon across a reopen", function()
    local a = open():begin("a", { phase = "created", new = "u1" })
    a:update { phase = "published", at = 5 }
    local b = open():begin("b", { x = 1 })
    local c = open():begin("c", { y = 2 })
    b:finish { ok = true, n = 3 }
    c:abandon("token gone")
    local book = open()
    local a2, b2, c2 = book:get("a"), book:get("b"), book:get("c")
    assert.are.same({ phase = "published", new = "u1", at = 5 }, a2.plan)
    assert.are.equal("pending", a2.state)
    assert.are.equal("done", b2.state)
    assert.are.same({ ok = true, n = 3 }, b2.result)
    assert.are.equal("abandoned", c2.state)
    assert.are.equal("token gone", c2.note)
    assert.are.same({ "a" }, (function()
      local keys = {}
      for _, it in ipairs(book:pending()) do keys[#keys + 1] = it.key end
      return keys
    end)())
    assert.are.equal(3, #book:list())
    assert.are.equal(1, #book:list("abandoned"))
    -- an abandoned or finished intent is not begun again: begin returns it as it is
    local again = book:begin("c", { y = 99 })
    assert.are.equal("abandoned", again.state)
    assert.is_false(again.resumed)
    local _, how = book:once("c", { act = function() error("acted on an abandoned intent") end })
    assert.are.equal("abandoned", how) -- told apart from done
  end)

  it("fixes the idempotency key when the intent is made, across a reopen", function()
    local it = open():begin("day", { q = 1 })
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", it.idempotency_key)
    local again = open():begin("day", { q = 2 })
    assert.is_true(again.resumed)
    assert.are.equal(it.idempotency_key, again.idempotency_key)
    assert.are.same({ q = 1 }, again.plan)
    local key
    open():once("day", { act = function(_, i) key = i.idempotency_key end })
    assert.are.equal(it.idempotency_key, key)
    assert.are_not.equal(it.idempotency_key, open():begin("other").idempotency_key)
  end)

  it("locks one run at a time per book: busy from a second book, free after unlock", function()
    local lock = assert(open():lock())
    local second, err, code = open():lock()
    assert.is_nil(second)
    assert.are.equal("busy", code)
    assert.matches("another run holds", err, 1, true)
    assert.matches("intent/w/unknownproxies:reseller", err, 1, true)
    assert(open("w", "oxylabs:other"):lock()):unlock() -- another account's book is free
    lock:unlock()
    local third = assert(open():lock())
    third:unlock()
    do
      local scoped <close> = assert(open():lock())
      assert.are.equal("busy", select(3, open():lock()))
    end
    assert(open():lock { wait = 1 }):unlock()
  end)

  it("keeps each account's intents apart (and each workflow's)", function()
    local up = open("w", "unknownproxies:a")
    local other = open("w", "unknownproxies:b")
    local acct_table = open("w", { id = "unknownproxies:a" }) -- an account object names it by its id
    up:begin("k", { who = "a" })
    assert.is_nil(other:get("k"))
    assert.is_nil(open("w2", "unknownproxies:a"):get("k"))
    assert.are.equal("a", acct_table:get("k").plan.who)
    local r, how = other:once("k", { act = function() return "b" end })
    assert.are.same({ "b", "acted" }, { r, how })
    assert.are.equal("pending", up:get("k").state)
    assert.are.equal("intent/w/unknownproxies:a", up.ns)
  end)

  it("names the bad argument", function()
    local err_of = require("spec.support.checks").raised
    assert.matches("resi.intent.open: name", err_of(intent.open, nil), 1, true)
    assert.matches("resi.intent.open: name", err_of(intent.open, "has space", { store = path }), 1, true)
    assert.matches("resi.intent.open: account", err_of(intent.open, "w", { account = 42, store = path }), 1, true)
    local book = open()
    assert.matches("resi.intent.begin: key", err_of(book.begin, book, ""), 1, true)
    assert.matches("resi.intent.begin: key", err_of(book.begin, book, 12), 1, true)
    assert.matches("resi.intent.once: steps.act", err_of(book.once, book, "k", {}), 1, true)
    assert.matches("resi.intent.once: steps.act", err_of(book.once, book, "k", nil), 1, true)
    assert.matches("resi.intent.once: steps.act", err_of(book.once, book, "k", { act = "no" }), 1, true)
    assert.is_nil(book:get("k")) -- nothing was recorded by the refused calls
  end)

  it("sees the intent of a process killed with -9 before it finished, pending with the same plan", function()
    local script = files.write(dir, "begin.lua", ([[
local intent = require "resi.intent"
local book = intent.open("killed", { account = "oxylabs:main", store = %q })
local lock <close> = assert(book:lock())
local it = book:begin("sub-42", { username = "r" .. resi.args[1], limit = 5000000000 })
it:update { phase = "created" }
print(it.idempotency_key)
io.stdout:flush()
resi.sleep(60) -- killed here, before it:finish
it:finish("never")
]]):format(path))
    local p = wp.start({ "run", script, "abc123" })
    local book = intent.open("killed", { account = "oxylabs:main", store = path })
    assert.is_true(wp.eventually(function()
      local it = book:get("sub-42")
      return it ~= nil and it.plan.phase == "created"
    end), "the script never recorded its intent")
    assert.are.equal("busy", select(3, book:lock())) -- the script holds the lock
    p:kill("sigkill")
    local r = p:wait()
    assert.are.equal(9, r.signal, r.stderr)
    local key = r.stdout:match("%S+")
    -- the next run: the lock died with the process; the intent is pending, its plan intact
    local second = intent.open("killed", { account = "oxylabs:main", store = path })
    local lock = assert(second:lock())
    local pending = second:pending()
    assert.are.equal(1, #pending)
    assert.are.equal("sub-42", pending[1].key)
    assert.are.same({ username = "rabc123", limit = 5000000000, phase = "created" }, pending[1].plan)
    local it = second:begin("sub-42", { username = "rother" })
    assert.is_true(it.resumed)
    assert.are.equal(key, it.idempotency_key)
    assert.are.equal("rabc123", it.plan.username)
    lock:unlock()
  end)
end)
