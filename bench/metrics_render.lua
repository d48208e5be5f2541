-- bench/metrics_render.lua [JOBS]: resi.metrics' cost for a jobs daemon.
-- Case 1: one counter, JOBS x 8 outcomes (DESIGN §7's eight), all
-- initialised. Case 2: the per-job metric set of anchors-round2 §D.5 for
-- JOBS jobs (info, runs x 5 outcomes, skipped x 4 reasons, duration and
-- start-delay histograms of 14 and 13 bounds, running, last success, last
-- run, next run, suspended), one run recorded per job, plus the process
-- collector. Prints series, bytes of text, memory per series
-- and render() time (best and median of 7); for case 2 also a render with
-- yield_every = 2000 (as resi.health does): its wall time and the longest
-- the loop went without running a 1 ms ticker meanwhile.
local metrics = require "resi.metrics"
local jobs = (tonumber(resi.args[1]) or 10000) // 1

local OUTCOMES = { "succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped_overlap", "missed", "coalesced" }

-- Lua heap in KiB after a full collection.
local function heap()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count")
end

-- CPU seconds (user + system) this process has used: unlike wall time, not
-- inflated when a busy machine preempts the bench.
local function cpu()
  local ru = require("luv").getrusage()
  return ru.utime.sec + ru.stime.sec + (ru.utime.usec + ru.stime.usec) / 1e6
end

-- Renders reg 7 times; returns best and median wall milliseconds, best CPU
-- milliseconds and the text.
local function time_render(reg)
  local times, cpus, text = {}, {}, nil
  for i = 1, 7 do
    local t0, c0 = resi.monotonic(), cpu()
    text = reg:render()
    times[i], cpus[i] = (resi.monotonic() - t0) * 1000, (cpu() - c0) * 1000
  end
  table.sort(times)
  table.sort(cpus)
  return times[1], times[4], cpus[1], text
end

-- Prints one case's line.
local function report(label, series, kib, reg)
  local best, median, best_cpu, text = time_render(reg)
  print(("%-24s %7d series %9d bytes %4.0f B/series  render best %6.1f ms (CPU %6.1f)  median %6.1f ms")
    :format(label, series, #text, kib * 1024 / series, best, best_cpu, median))
end

-- Case 1: jobs x 8 outcomes on one counter.
local function counter_case()
  local m0 = heap()
  local reg = metrics.new_registry()
  local runs = reg:counter("resi_job_runs_total", "Runs that ended, by outcome.", { "job", "outcome" })
  for j = 1, jobs do
    local name = ("job-%05d"):format(j)
    for _, o in ipairs(OUTCOMES) do runs:init { job = name, outcome = o } end
    runs:inc { job = name, outcome = "succeeded" }
  end
  report(("counter %d jobs x 8"):format(jobs), jobs * 8, heap() - m0, reg)
end

-- The §D.5 families of one node: name -> family.
local function d5_families(reg)
  local function g(name, extra) return reg:gauge(name, name, { "job", table.unpack(extra or {}) }) end
  return {
    info = g("resi_job_info", { "schedule", "timezone", "overlap", "catchup" }),
    runs = reg:counter("resi_job_runs_total", "runs", { "job", "outcome" }),
    skipped = reg:counter("resi_job_skipped_total", "skips", { "job", "reason" }),
    duration = reg:histogram("resi_job_run_duration_seconds", "durations", { "job" },
      { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600 }),
    delay = reg:histogram("resi_job_start_delay_seconds", "delays", { "job" },
      { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600 }),
    running = g("resi_job_running"),
    last_success = g("resi_job_last_success_timestamp_seconds"),
    last_run = g("resi_job_last_run_timestamp_seconds", { "outcome" }),
    next_run = g("resi_job_next_run_timestamp_seconds"),
    suspended = g("resi_job_suspended"),
  }
end

-- Sets up one job's series as a daemon would after one successful run.
local function d5_job(f, name, now)
  local job = { job = name }
  f.info:set({ job = name, schedule = "*/5 * * * *", timezone = "UTC", overlap = "skip", catchup = "latest" }, 1)
  for _, o in ipairs { "succeeded", "failed", "timed_out", "cancelled", "interrupted" } do
    f.runs:init { job = name, outcome = o }
  end
  for _, r in ipairs { "overlap", "missed_deadline", "coalesced", "paused" } do f.skipped:init { job = name, reason = r } end
  f.runs:inc { job = name, outcome = "succeeded" }
  f.duration:observe(job, 1.5)
  f.delay:observe(job, 0.002)
  f.running:set(job, 0)
  f.suspended:set(job, 0)
  f.last_success:set(job, now)
  f.last_run:set({ job = name, outcome = "succeeded" }, now)
  f.next_run:set(job, now + 300)
end

-- Case 2: the D.5 per-job set.
local function jobs_case()
  local m0 = heap()
  local reg = metrics.new_registry()
  require("resi.metrics.process").register(reg)
  local f = d5_families(reg)
  local now = resi.now()
  for j = 1, jobs do d5_job(f, ("job-%05d"):format(j), now) end
  local series = 0
  for _, fam in ipairs(reg.families) do series = series + fam:size() end
  report(("D.5 set, %d jobs"):format(jobs), series, heap() - m0, reg)
  return reg
end

-- Case 3: a yielding render of reg while a ticker measures loop stalls.
local function yield_case(reg)
  local stop, worst, last = false, 0, resi.monotonic()
  local ticker = resi.spawn(function()
    while not stop do
      resi.sleep(0.001)
      local now = resi.monotonic()
      worst = math.max(worst, now - last)
      last = now
    end
  end)
  resi.sleep(0.01)
  worst = 0
  local t0 = resi.monotonic()
  reg:render { yield_every = 2000 }
  local wall = resi.monotonic() - t0
  stop = true
  ticker:wait()
  print(("%-24s render wall %6.1f ms, longest loop stall %5.1f ms"):format("  with yield_every = 2000", wall * 1000,
    worst * 1000))
end

counter_case()
yield_case(jobs_case())
