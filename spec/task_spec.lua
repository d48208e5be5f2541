-- The task scheduler: spawn, wait, cancel, sleep, all, timeout, clocks, and
-- the errors that say why a wait is impossible.
local task = require "resi.task"

describe("tasks", function()
  it("runs the spec itself in a task", function()
    assert.is_table(resi.current())
    assert.equal("running", resi.current():status())
  end)

  it("spawns a task with arguments and waits for all its results", function()
    local t = resi.spawn(function(a, b) return a + b, "second", nil, 4 end, 40, 2)
    assert.equal("ready", t:status())
    local r = table.pack(t:wait())
    assert.equal(4, r.n)
    assert.equal(42, r[1])
    assert.equal("second", r[2])
    assert.is_nil(r[3])
    assert.equal(4, r[4])
    assert.equal("done", t:status())
    -- waiting again returns the same results
    assert.equal(42, (t:wait()))
  end)

  it("runs spawned tasks in FIFO order when the spawner waits", function()
    local order = {}
    for i = 1, 5 do resi.spawn(function() order[#order + 1] = i end) end
    resi.sleep(0)
    assert.same({ 1, 2, 3, 4, 5 }, order)
  end)

  it("re-raises a task's error in the waiter, error objects unchanged", function()
    local t = resi.spawn(function() error("boom") end)
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.truthy(err:find("task_spec.lua:%d+: boom"))
    assert.equal("failed", t:status())
    local obj = setmetatable({ code = 7 }, { __tostring = function() return "E7" end })
    local t2 = resi.spawn(function() error(obj) end)
    local ok2, err2 = pcall(t2.wait, t2)
    assert.is_false(ok2)
    assert.equal(obj, err2)
  end)

  it("sleeps for at least the time asked, without blocking other tasks", function()
    local t0 = resi.monotonic()
    local ticks = 0
    local ticker = resi.spawn(function()
      for _ = 1, 5 do resi.sleep(0.01); ticks = ticks + 1 end
    end)
    resi.sleep(0.1)
    assert.is_true(resi.monotonic() - t0 >= 0.099)
    assert.equal(5, ticks)
    ticker:wait()
  end)

  it("runs sleeps concurrently: 50 tasks sleeping 0.1 s take about 0.1 s", function()
    local t0 = resi.monotonic()
    local tasks = {}
    for i = 1, 50 do tasks[i] = resi.spawn(resi.sleep, 0.1) end
    for i = 1, 50 do tasks[i]:wait() end
    local took = resi.monotonic() - t0
    assert.is_true(took >= 0.099)
    assert.is_true(took < 2.5) -- sequential would be 5 s
  end)

  it("cancels a sleeping task: the wait raises resi.cancelled", function()
    local reached = false
    local t = resi.spawn(function()
      resi.sleep(10)
      reached = true
    end)
    resi.sleep(0.01)
    assert.equal("waiting", t:status())
    assert.is_true(t:cancel())
    local ok, err = pcall(t.wait, t)
    assert.is_false(ok)
    assert.is_true(resi.is_cancelled(err))
    assert.equal("task cancelled", tostring(err))
    assert.equal("cancelled", t:status())
    assert.is_false(reached)
    assert.is_false(t:cancel()) -- already over
  end)

  it("sleeps until a wall-clock time (sleep_until): never before it, in the order of the times", function()
    local order, late = {}, {}
    local base = resi.now()
    local tasks = {}
    for i, d in ipairs({ 0.12, 0.04, 0.08, 0.02 }) do
      tasks[i] = resi.spawn(function()
        assert.equal("due", task.sleep_until(base + d))
        late[#late + 1] = resi.now() - (base + d)
        order[#order + 1] = d
      end)
    end
    for _, t in ipairs(tasks) do t:wait() end
    assert.same({ 0.02, 0.04, 0.08, 0.12 }, order)
    for _, l in ipairs(late) do
      assert.is_true(l >= 0, "woke before its time")
      assert.is_true(l < 0.5, "woke " .. l .. " s late")
    end
    -- a time already passed: at once
    local t0 = resi.monotonic()
    assert.equal("due", task.sleep_until(resi.now() - 3600))
    assert.equal("due", task.sleep_until(0))
    assert.is_true(resi.monotonic() - t0 < 0.5)
    assert.has_error(function() task.sleep_until("soon") end, "resi.sleep_until: expected epoch seconds, got string")
  end)

  it("cancels a task in sleep_until: the wait raises resi.cancelled and nothing wakes it later", function()
    local t = resi.spawn(function() task.sleep_until(resi.now() + 0.05) end)
    resi.sleep(0.01)
    assert.is_true(t:cancel())
    assert.is_true(resi.is_cancelled(select(2, pcall(t.wait, t))))
    resi.sleep(0.1) -- past the time: a timer left armed would wake a finished task
    assert.equal("cancelled", t:status())
  end)

  it("cancels a task that has not started yet: it never runs", function()
    local ran = false
    local t = resi.spawn(function() ran = true end)
    t:cancel()
    resi.sleep(0.01)
    assert.is_false(ran)
    assert.equal("cancelled", t:status())
  end)

  it("runs cleanup (pcall and to-be-closed variables) when cancelled", function()
    local closed, caught = false, nil
    local t = resi.spawn(function()
      local guard <close> = setmetatable({}, { __close = function() closed = true end })
      local ok, err = pcall(resi.sleep, 10)
      caught = err
      assert(ok, err)
    end)
    resi.sleep(0.01)
    t:cancel()
    pcall(t.wait, t)
    assert.is_true(resi.is_cancelled(caught))
    assert.is_true(closed)
  end)

  it("keeps a cancelled task cancelled: later waits raise again", function()
    local second
    local t = resi.spawn(function()
      pcall(resi.sleep, 10)
      second = select(2, pcall(resi.sleep, 0))
    end)
    resi.sleep(0.01)
    t:cancel()
    t:wait()
    assert.is_true(resi.is_cancelled(second))
  end)

  it("ignores a completion that arrives after a cancel", function()
    local woke = 0
    local wake
    local t = resi.spawn(function()
      resi.await(function(done) wake = done end)
      woke = woke + 1
    end)
    resi.sleep(0.01)
    t:cancel()
    wake("late") -- stale token: ignored
    pcall(t.wait, t)
    assert.equal(0, woke)
  end)

  it("cancels a task whose timer has fired but which has not been resumed yet", function()
    local t = resi.spawn(resi.sleep, 0.01)
    resi.sleep(0) -- t is asleep now
    local cancelled
    resi.spawn(function() cancelled = t:cancel() end) -- queued ahead of t's completion
    local stop = resi.monotonic() + 0.05
    while resi.monotonic() < stop do end -- t's timer is overdue: it fires in the same turn
    local ok, err = pcall(t.wait, t)
    assert.is_true(cancelled)
    assert.is_false(ok)
    assert.is_true(task.is_cancelled(err))
    assert.equal("cancelled", t:status()) -- not "done": the fired timer's wake-up was not used
  end)

  it("returns directly when an operation completes before the task yields", function()
    local a, b = resi.await(function(done) done("now", 2) end)
    assert.equal("now", a)
    assert.equal(2, b)
  end)

  it("resi.all returns first results in order and cancels the rest on error", function()
    local a, b, c = resi.all {
      function() resi.sleep(0.03) return "a" end,
      function() return "b" end,
      resi.spawn(function() resi.sleep(0.01) return "c" end),
    }
    assert.same({ "a", "b", "c" }, { a, b, c })

    local slow
    slow = resi.spawn(function() resi.sleep(10) end)
    local ok, err = pcall(resi.all, { function() resi.sleep(0.01) error("second failed") end, slow })
    assert.is_false(ok)
    assert.truthy(err:find("second failed", 1, true))
    resi.sleep(0)
    assert.equal("cancelled", slow:status())
    assert.is_nil(resi.all {})
  end)

  it("resi.timeout returns results in time, nil+timeout otherwise, and re-raises errors", function()
    assert.equal(7, resi.timeout(1, function(x) resi.sleep(0.01) return x end, 7))
    local child
    local r, err, code = resi.timeout(0.05, function()
      child = resi.current()
      resi.sleep(10)
    end)
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.equal("timeout", code)
    resi.sleep(0)
    assert.equal("cancelled", child:status())
    local ok, e = pcall(resi.timeout, 1, function() error("inner") end)
    assert.is_false(ok)
    assert.truthy(e:find("inner", 1, true))
  end)

  it("resi.timeout in a cancelled task raises without starting fn", function()
    local ran = false
    local t = resi.spawn(function()
      pcall(resi.sleep, 10) -- cancelled here; the pcall swallows it
      resi.timeout(1, function() ran = true end)
    end)
    resi.sleep(0.01)
    t:cancel()
    resi.sleep(0.05)
    assert.equal("cancelled", t:status())
    assert.is_false(ran)
  end)

  it("has a wall clock and a monotonic clock", function()
    local now = resi.now()
    assert.is_true(math.abs(now - os.time()) <= 1)
    assert.equal("float", math.type(now))
    local m1 = resi.monotonic()
    resi.sleep(0.02)
    assert.is_true(resi.monotonic() - m1 >= 0.019)
  end)

  it("lets coroutine.wrap iterators wait inside a task", function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        resi.sleep(0.001)
        coroutine.yield(i * 10)
      end
    end)
    assert.same({ 10, 20, 30 }, { gen(), gen(), gen() })
    local co = coroutine.create(function(x)
      resi.sleep(0.001)
      local y = coroutine.yield(x + 1)
      return y * 2
    end)
    assert.same({ true, 2 }, { coroutine.resume(co, 1) })
    assert.same({ true, 10 }, { coroutine.resume(co, 5) })
    assert.equal("dead", coroutine.status(co))
  end)

  it("says why a wait is impossible in __tostring, a sort comparator or gsub", function()
    local obj = setmetatable({}, { __tostring = function() resi.sleep(0) return "x" end })
    local ok, err = pcall(tostring, obj)
    assert.is_false(ok)
    assert.truthy(err:find("resi.sleep cannot wait here", 1, true))
    assert.truthy(err:find("__tostring", 1, true))
    ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b) resi.sleep(0) return a < b end)
    assert.is_false(ok)
    assert.truthy(err:find("cannot wait here", 1, true))
    ok, err = pcall(string.gsub, "abc", "%w", function() resi.sleep(0) end)
    assert.is_false(ok)
    assert.truthy(err:find("cannot wait here", 1, true))
  end)

  it("says a wait needs a task when called from a plain callback", function()
    local err
    local timer = resi.uv.new_timer()
    resi.await(function(done)
      timer:start(1, 0, function()
        err = select(2, pcall(resi.sleep, 0))
        timer:close()
        done()
      end)
    end)
    assert.truthy(err:find("must be called from inside a task", 1, true))
  end)

  it("refuses to let a task wait for itself", function()
    local me = resi.current()
    local ok, err = pcall(me.wait, me)
    assert.is_false(ok)
    assert.truthy(err:find("cannot wait for itself", 1, true))
  end)

  it("checks argument types", function()
    assert.has_error(function() resi.spawn(42) end, "resi.spawn: expected a function, got number")
    assert.has_error(function() resi.sleep("1") end, "resi.sleep: expected a number of seconds, got string")
    assert.has_error(function() resi.all { 1 } end, "resi.all: entry 1 is a number, not a function or task")
  end)

  it("exposes luv bound to the same loop as resi.uv", function()
    assert.equal(require("luv"), resi.uv)
    local fired = resi.await(function(done)
      local t = resi.uv.new_timer()
      t:start(5, 0, function() t:close() done("fired") end)
    end)
    assert.equal("fired", fired)
    assert.has_error(function() resi.uv.walk(function() end) end)
  end)

  it("knows the cancellation error", function()
    assert.is_true(task.is_cancelled(task.cancelled))
    assert.is_false(task.is_cancelled("task cancelled"))
  end)
end)
