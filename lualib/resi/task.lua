--- resi.task: the scheduler. Every script, spec and request runs in a task
--- (a coroutine); anything that waits suspends its task and the loop resumes
--- it later. C operations (timers, HTTP transfers) wake a task through
--- resi_wake (core.c: the same rules as `wake` here, without calling into Lua),
--- Lua ones by calling `wake(task, token, ...)`; both only queue it. Tasks are
--- resumed from one place, `drain`, which the loop runs on the main thread.
---
--- Rules (DESIGN.md §2): a task waits on one operation at a time, identified
--- by a token; a completion with a stale token (after a cancel or a timeout)
--- is ignored; an operation that completes before its task yields returns
--- directly; a raw coroutine.yield that reaches the scheduler is an error.
---
--- For new waiting operations (Lua or C): `local t, token = M.prepare(what)`,
--- start the operation with (t, token), then `M.suspend(t, on_cancel)`; the completion
--- calls wake(t, token, ...). The token is what makes cancel and timeout
--- safe: a late completion carries an old token and is dropped, so nobody
--- needs to unregister a callback on every path.
local core = require "resi.core"

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_isyieldable, co_close = coroutine.status, coroutine.isyieldable, coroutine.close
local pack, unpack = table.pack, table.unpack
local traceback, getinfo = debug.traceback, debug.getinfo

local M = {}

-- The only value a task yields to the scheduler; private so user yields are told apart.
local SUSPEND = setmetatable({}, { __name = "resi.suspend" })
-- Resume value that makes a waiting task raise the cancellation error.
local CANCEL = setmetatable({}, { __name = "resi.cancel" })
local CANCEL_ARGS = pack(CANCEL)

local Cancelled = {
  __name = "resi.cancelled",
  __tostring = function() return "task cancelled" end,
}
--- The error a cancelled task raises at its wait point (and task:wait re-raises).
---@type {kind: "cancelled", message: string}
M.cancelled = setmetatable({ kind = "cancelled", message = "task cancelled" }, Cancelled)

--- Is err the cancellation error (a task was cancelled while it waited)?
---@param err any
---@return boolean
function M.is_cancelled(err) return getmetatable(err) == Cancelled end

---@alias resi.task.status "ready"|"running"|"waiting"|"done"|"failed"|"cancelled"

---@class resi.task.Task
---@field id integer
---@field name? string
local Task = {}
Task.__index = Task
Task.__name = "resi.task"

local current        -- the task being resumed, nil between resumes
local main           -- the main task
-- The ready queue, FIFO. core.c keeps its ends and appends to it (core.push,
-- core.push_values, and resi_wake for C completions); an entry is a task and
-- false (run with its wake_args), or a task, n and the n values to resume it
-- with. drain(first, last) runs the entries queued before the loop turn.
local queue = {}
local push, push_values = core.push, core.push_values
local next_id = 0
local exit_status = 0
local unobserved = setmetatable({}, { __mode = "k" }) -- failed tasks nobody waited for
local orphans = {} -- descriptions of the unobserved failures reported since take_orphans()

-- A short description of a task for messages: "task 3 (spec/x.lua:12)".
local function describe(t)
  if t.name then return ("task %d (%s)"):format(t.id, t.name) end
  local info = type(t.fn) == "function" and getinfo(t.fn, "S")
  if info then return ("task %d (%s:%d)"):format(t.id, info.short_src, info.linedefined) end
  return ("task %d"):format(t.id)
end

-- Writes a failed task's error and traceback to stderr and counts the failure.
local function report(t, label)
  io.stderr:write("resi: ", label, ": ", t.trace or tostring(t.err), "\n")
  io.stderr:flush()
  t.observed = true
  unobserved[t] = nil
  exit_status = 1
end

-- Reports a failed task that nobody waited for, and remembers it for take_orphans().
local function report_orphan(t)
  orphans[#orphans + 1] = describe(t)
  report(t, "error in " .. describe(t) .. " (never waited for)")
end

-- Records how a task ended, wakes its waiters and handles the main task.
local function finish(t, ok, r)
  if ok then
    t.state, t.results = "done", r
  elseif M.is_cancelled(r) then
    t.state, t.err = "cancelled", r
  else
    t.state, t.err = "failed", r
    t.trace = core.error_text(r, t.co) -- the host's rule too (lutil.c: resi_push_error_text)
  end
  if co_status(t.co) ~= "dead" or not ok then co_close(t.co) end -- runs pending to-be-closed variables
  local waiters = t.waiters
  t.waiters = nil
  if waiters then
    for i = 1, #waiters do waiters[i](t) end
  elseif t.state == "failed" and t ~= main then
    unobserved[t] = true
  end
  if t == main and t.state ~= "done" then
    if t.state == "failed" then report(t, "error") else exit_status = 1 end
    core.stop()
  end
end

-- Handles what a task's coroutine.resume returned (varargs, so that the
-- common case, a suspension, packs no table).
local function resumed(t, ok, ...)
  current = nil
  if not ok then return finish(t, false, (...)) end
  if (...) == SUSPEND then -- first: only task.suspend yields it, and no task can return it
    if t.state == "running" then t.state = "waiting" end
    return
  end
  if co_status(t.co) == "dead" then
    t.state = "done"
    return finish(t, true, pack(...))
  end
  local msg = "coroutine.yield() reached the resi scheduler: a task waits only through resi "
    .. "functions (resi.sleep, resi.http, task:wait ...); to yield values, run your own "
    .. "coroutine with coroutine.wrap or coroutine.create"
  finish(t, false, msg)
end

-- Resumes one ready task with the values it was woken with.
local function step(t)
  local args = t.wake_args
  t.wake_args = nil
  current, t.state, t.started = t, "running", true
  return resumed(t, co_resume(t.co, unpack(args, 1, args.n)))
end

-- Resumes a woken task with the values at queue[i..j] (no table per wake-up).
local function step_values(t, i, j)
  current, t.state, t.started = t, "running", true
  return resumed(t, co_resume(t.co, unpack(queue, i, j)))
end

-- Runs the queue entries first..last; called by the loop (core.c's drain
-- step) on the main thread. Tasks queued while draining run on the next
-- turn, so I/O is never starved.
local function drain(i, last)
  while i <= last do
    local t, n = queue[i], queue[i + 1]
    queue[i], queue[i + 1] = nil, nil
    if n == false then
      i = i + 2
      if t.state == "ready" then step(t) end
    else
      local j = i + 1 + n
      if t.state == "ready" then
        if t.wake_args then step(t) else step_values(t, i + 2, j) end -- wake_args: cancelled since
      end
      for k = i + 2, j do queue[k] = nil end
      i = j + 1
    end
  end
end

-- Hands an operation's results to a waiting task. core.c's core_wake does
-- the same for C completions (resi.h: resi_wake): keep the two alike.
local function wake(t, token, ...)
  if t.token ~= token then return end -- stale: cancelled, timed out or already woken
  t.token = token + 1
  t.on_cancel = nil
  if t.state == "running" then
    t.early = pack(...) -- completed before the task yielded: suspend returns it directly
  elseif t.state == "waiting" then
    t.state = "ready"
    push_values(t, ...)
  end
end
M.wake = wake

core.set_scheduler(wake, drain, queue)

--- The task that is running now, or nil outside any task.
---@return resi.task.Task|nil
function M.current() return current end

--- Checks that the caller can wait here; returns the task and the token its
--- operation must wake it with. `what` names the caller in error messages.
---@param what string
---@return resi.task.Task task
---@return integer token
function M.prepare(what)
  local t = current
  if t == nil then
    error(what .. " must be called from inside a task (the main script, a function given to "
      .. "resi.spawn, or a spec); it was called from a plain callback: start a task there with "
      .. "resi.spawn", 3)
  end
  if not co_isyieldable() then
    error(what .. " cannot wait here: it was called from a function Lua runs without the ability "
      .. "to suspend (a metamethod such as __tostring called from C, a table.sort comparator, a "
      .. "string.gsub callback, or the top level of a required module); move the call out of it", 3)
  end
  if t.cancelled then error(M.cancelled, 0) end
  return t, t.token
end

-- Returns the values a suspended task was woken with, or raises the
-- cancellation error (varargs: no table per wake-up).
local function woken(...)
  if (...) == CANCEL then error(M.cancelled, 0) end
  return ...
end

--- Suspends the task until its operation wakes it; returns the wake values.
--- on_cancel, if given, aborts the operation when the task is cancelled.
---@async
---@param t resi.task.Task
---@param on_cancel fun()|nil
---@return any ... the wake values
function M.suspend(t, on_cancel)
  local early = t.early
  if early then
    t.early = nil
    return unpack(early, 1, early.n)
  end
  t.on_cancel = on_cancel
  return woken(co_yield(SUSPEND))
end

-- Creates a task record for fn (not yet queued).
local function new_task(fn)
  next_id = next_id + 1
  return setmetatable({ id = next_id, fn = fn, co = co_create(fn), state = "ready", token = 0 }, Task)
end

--- Starts fn(...) in a new task; it runs when the current task waits or ends.
---@param fn function
---@param ... any fn's arguments
---@return resi.task.Task
function M.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("resi.spawn: expected a function, got " .. type(fn), 2)
  end
  local t = new_task(fn)
  t.wake_args = pack(...)
  push(t)
  return t
end

-- Adds a callback run (synchronously, inside drain) when the task ends.
local function on_finish(t, cb)
  local w = t.waiters
  if not w then
    w = {}
    t.waiters = w
  end
  w[#w + 1] = cb
  return cb
end

-- Removes a callback added with on_finish.
local function off_finish(t, cb)
  local w = t.waiters
  if not w then return end
  for i = #w, 1, -1 do
    if w[i] == cb then
      table.remove(w, i)
      return
    end
  end
end

local function finished(t)
  local s = t.state
  return s == "done" or s == "failed" or s == "cancelled"
end

-- Returns a finished task's results, or raises its error.
local function outcome(t)
  t.observed = true
  unobserved[t] = nil
  if t.state == "done" then return unpack(t.results, 1, t.results.n) end
  error(t.err, 0)
end

--- Waits for the task to end; returns its results or re-raises its error.
---@async
---@return any ... the task function's results
function Task:wait()
  if not finished(self) then
    if self == current then error("task:wait(): a task cannot wait for itself", 2) end
    local w, token = M.prepare("task:wait()")
    local cb = on_finish(self, function() wake(w, token) end)
    M.suspend(w, function() off_finish(self, cb) end)
  end
  return outcome(self)
end

--- Cancels the task: a wait in progress is aborted (a timer stopped, an HTTP
--- transfer removed) and the task sees the error resi.task.cancelled there.
--- Returns false if the task had already ended.
---@return boolean
function Task:cancel()
  if finished(self) then return false end
  self.cancelled = true
  local s = self.state
  if s == "ready" and not self.started then
    self.wake_args = nil
    finish(self, false, M.cancelled)
  elseif s == "waiting" then
    local abort = self.on_cancel
    self.on_cancel = nil
    self.token = self.token + 1 -- a completion that arrives after this is ignored
    if abort then abort() end
    self.state, self.wake_args = "ready", CANCEL_ARGS
    push(self)
  elseif s == "ready" then
    self.wake_args = CANCEL_ARGS -- woken but not resumed yet
  end -- running: its next wait raises (prepare checks the flag)
  return true
end

--- "ready" | "running" | "waiting" | "done" | "failed" | "cancelled"
---@return resi.task.status
function Task:status() return self.state end

function Task:__tostring() return describe(self) end

-- A failed task that nobody waited for is reported when it is collected.
function Task:__gc()
  if self.state == "failed" and not self.observed then report_orphan(self) end
end

--- Suspends the current task for `seconds` (fractions allowed).
---@async
---@param seconds number
function M.sleep(seconds)
  if type(seconds) ~= "number" then
    error("resi.sleep: expected a number of seconds, got " .. type(seconds), 2)
  end
  local t, token = M.prepare("resi.sleep")
  local timer = core.timer(seconds * 1000, t, token)
  M.suspend(t, function() timer:stop() end)
end

--- Suspends the calling task until the wall clock reads `epoch` seconds (at
--- once when it has passed), to the kernel timer's precision rather than
--- the loop's millisecond (core.wall_timer, a timerfd). Returns "due", or
--- "clock_changed" when the wall clock was set meanwhile: the caller looks
--- at the time again. For the jobs scheduler's wake-ups.
---@async
---@param epoch number  epoch seconds
---@return string why  "due" | "clock_changed"
function M.sleep_until(epoch)
  if type(epoch) ~= "number" then
    error("resi.sleep_until: expected epoch seconds, got " .. type(epoch), 2)
  end
  local t, token = M.prepare("resi.sleep_until")
  local timer, err = core.wall_timer(epoch, t, token)
  if not timer then error("resi.sleep_until: " .. err, 2) end
  return M.suspend(t, function() timer:stop() end)
end

--- Bridges a callback API: start(done) begins an operation that calls
--- done(...) once; returns done's arguments.
---@async
---@param start fun(done: function)
---@return any ... what done was called with
function M.await(start)
  local t, token = M.prepare("resi.await")
  start(function(...) wake(t, token, ...) end)
  return M.suspend(t)
end

--- Runs fn(...) in a child task for at most `seconds`. Returns fn's results,
--- or nil, "timeout", "timeout" when time ran out (the child is cancelled,
--- which aborts what it was waiting on). fn's errors are re-raised.
---@async
---@param seconds number
---@param fn function
---@param ... any fn's arguments
---@return any ... fn's results, or nil, "timeout", "timeout"
function M.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" then
    error("resi.timeout: expected a number of seconds, got " .. type(seconds), 2)
  end
  local t, token = M.prepare("resi.timeout") -- before spawning: a cancelled caller starts no fn
  local child = M.spawn(fn, ...)
  local timer = core.timer(seconds * 1000, t, token)
  local cb = on_finish(child, function() wake(t, token) end)
  local function abort()
    timer:stop()
    off_finish(child, cb)
    child:cancel()
  end
  M.suspend(t, abort)
  if finished(child) then
    timer:stop()
    return outcome(child)
  end
  abort()
  return nil, "timeout", "timeout"
end

--- Runs functions (or waits for tasks) concurrently; returns the first result
--- of each, in order. The first error cancels the others and is re-raised.
---@async
---@param list (function|resi.task.Task)[]
---@return any ... the first result of each, in order
function M.all(list)
  if type(list) ~= "table" then error("resi.all: expected a list of functions or tasks", 2) end
  local n = #list
  local tasks = {}
  for i = 1, n do
    local x = list[i]
    if getmetatable(x) == Task then
      tasks[i] = x
    elseif type(x) == "function" then
      tasks[i] = M.spawn(x)
    else
      error(("resi.all: entry %d is a %s, not a function or task"):format(i, type(x)), 2)
    end
  end
  local pending, failed = 0, nil
  local w, token = M.prepare("resi.all")
  local cbs = {}
  local function done(t)
    pending = pending - 1
    if t.state ~= "done" and not failed then failed = t end
    if pending == 0 or failed then wake(w, token) end
  end
  for i = 1, n do
    local t = tasks[i]
    if not finished(t) then
      pending = pending + 1
      cbs[i] = on_finish(t, done)
    elseif t.state ~= "done" and not failed then
      failed = t
    end
  end
  local function detach()
    for i, cb in pairs(cbs) do off_finish(tasks[i], cb) end
  end
  if pending > 0 and not failed then
    M.suspend(w, function()
      detach()
      for i = 1, n do tasks[i]:cancel() end
    end)
  end
  detach()
  if failed then
    for i = 1, n do tasks[i]:cancel() end
    outcome(failed)
  end
  local out = {}
  for i = 1, n do
    out[i] = tasks[i].results[1]
    tasks[i].observed = true
  end
  return unpack(out, 1, n)
end

-- Pass resi's suspensions through user coroutines, so an iterator made with
-- coroutine.wrap can still wait on HTTP: when the inner coroutine suspends
-- for resi, the caller suspends too and hands the wake values back down.
local function pass_through(co, r)
  while r[1] and r[2] == SUSPEND and co_status(co) == "suspended" do
    r = pack(co_resume(co, co_yield(SUSPEND)))
  end
  return r
end

--- coroutine.resume that lets resi operations inside the coroutine wait.
---@param co thread
---@param ... any
---@return boolean ok
---@return any ...
function M.resume(co, ...)
  local r = pass_through(co, pack(co_resume(co, ...)))
  return unpack(r, 1, r.n)
end

--- coroutine.wrap that lets resi operations inside the coroutine wait.
---@param fn function
---@return function
function M.wrap(fn)
  local co = co_create(fn)
  return function(...)
    local r = pass_through(co, pack(co_resume(co, ...)))
    if not r[1] then
      co_close(co)
      error(r[2], 0)
    end
    return unpack(r, 2, r.n)
  end
end

coroutine.resume = M.resume
coroutine.wrap = M.wrap

--- Starts the main task (called by the host with the loaded chunk).
---@param chunk function
---@param args string[]
function M.start_main(chunk, args)
  local resi = require "resi"
  resi.args = { unpack(args, 1, #args) }
  _G.resi = resi -- scripts and -e chunks may use resi without requiring it
  main = new_task(chunk)
  main.name = "main"
  main.wake_args = pack(unpack(args, 1, #args))
  push(main)
end

--- Sets the status the process exits with once everything has finished
--- (an error still makes it at least 1).
---@param code integer
function M.set_exit_status(code)
  if exit_status == 0 then exit_status = math.tointeger(code) or 1 end
end

--- Called by the host when the loop has nothing left to do; returns the
--- process exit status.
---@return integer
function M.finish()
  if main and not finished(main) then
    io.stderr:write("resi: the main task is waiting but nothing is left that could wake it ",
      "(deadlock)\n", traceback(main.co, "main task suspended here"), "\n")
    exit_status = 1
  end
  for t in pairs(unobserved) do
    if not t.observed then report_orphan(t) end
  end
  return exit_status
end

--- Reports now every failed task nobody has waited for (each once, as at
--- exit) and returns the descriptions of those reported since the last call:
--- how `resi test` charges such an error to the test that left it.
---@return string[]
function M.take_orphans()
  for t in pairs(unobserved) do
    if not t.observed then report_orphan(t) end
  end
  local list = orphans
  orphans = {}
  return list
end

return M
