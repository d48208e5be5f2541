--- resi.jobs.metrics: the Prometheus metrics of `resi jobs --metrics`
--- (anchors-round2 §D.5, the one-node subset), as a resi.metrics registry
--- and a scheduler observer that updates it:
---   resi_job_info{job,schedule,timezone,overlap,catchup} 1
---   resi_job_runs_total{job,outcome}                  initialised to 0 for every outcome
---   resi_job_skipped_total{job,reason}                overlap, missed_deadline, coalesced, paused, clock_jump ...
---   resi_job_run_duration_seconds{job}                histogram, 0.1 s .. 1 h
---   resi_job_start_delay_seconds{job}                 histogram: actual start - nominal time
---   resi_job_running{job}                             runs in progress
---   resi_job_last_success_timestamp_seconds{job}
---   resi_job_next_run_timestamp_seconds{job}
---   resi_job_suspended{job}                           1 while paused
---   resi_scheduler_clock_jumps_total{direction,size}
--- and, with a shared PostgreSQL store (lease mode, resi.jobs.cluster):
---   resi_scheduler_db_clock_offset_seconds            this node's clock minus the database's
---   resi_scheduler_lease_renewal_failures_total       renewals that got no answer
---   resi_scheduler_runs_fenced_total{job}             runs cancelled because their lease was lost
---   resi_scheduler_jobs_file_mismatch                 live daemons on the store with another jobs file
--- plus resi.metrics.process (process_*, resi_build_info) and
--- resi.metrics.http (the HTTP client's counters), resi.metrics.notify
--- (resi_notify_*_total: notifications sent, failed, retried) and
--- resi.metrics.ratelimit (resi_ratelimit_*{limiter}: one series per
--- provider account and endpoint group the jobs use, e.g.
--- limiter="unknownproxies:reseller:default", and per notify target).
local M = {}

--- The outcomes every job's run counter starts with.
M.OUTCOMES = { "succeeded", "failed", "timed_out", "cancelled", "interrupted" }

local DURATION_BUCKETS = { 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600 }
local DELAY_BUCKETS = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300 }

-- Registers the families on reg; returns them by short name.
local function families(reg)
  return {
    info = reg:gauge("resi_job_info", "A declared job: always 1.", { "job", "schedule", "timezone", "overlap", "catchup" }),
    runs = reg:counter("resi_job_runs_total", "Runs that ended, by outcome.", { "job", "outcome" }),
    skipped = reg:counter("resi_job_skipped_total", "Slots that did not run, by reason.", { "job", "reason" }),
    duration = reg:histogram("resi_job_run_duration_seconds", "How long runs took.", { "job" }, DURATION_BUCKETS),
    delay = reg:histogram("resi_job_start_delay_seconds", "Actual start minus nominal time (jitter included).",
      { "job" }, DELAY_BUCKETS),
    running = reg:gauge("resi_job_running", "Runs in progress.", { "job" }),
    last_success = reg:gauge("resi_job_last_success_timestamp_seconds", "When the last successful run ended.", { "job" }),
    next_run = reg:gauge("resi_job_next_run_timestamp_seconds", "The next slot's nominal time.", { "job" }),
    suspended = reg:gauge("resi_job_suspended", "1 while the job is paused.", { "job" }),
    jumps = reg:counter("resi_scheduler_clock_jumps_total", "Wall-clock jumps seen, by direction and size.",
      { "direction", "size" }),
    offset = reg:gauge("resi_scheduler_db_clock_offset_seconds",
      "This node's clock minus the shared store's database clock.", {}),
    renew_failures = reg:counter("resi_scheduler_lease_renewal_failures_total",
      "Lease renewals of running runs that failed (no answer from the store).", {}),
    fenced = reg:counter("resi_scheduler_runs_fenced_total", "Runs cancelled because their lease was lost.", { "job" }),
    mismatch = reg:gauge("resi_scheduler_jobs_file_mismatch",
      "Live daemons on the shared store that load a different jobs file.", {}),
  }
end

--- The rate limiters the daemon's jobs use now: every provider account's
--- that a client holds (resi.providers.limits.live) and the notifiers'
--- targets'; none when neither module has been loaded (nothing to load at
--- a scrape).
---@return resi.ratelimit.limiter[]
function M.limiters()
  local out = {}
  local limits, notify = package.loaded["resi.providers.limits"], package.loaded["resi.notify"]
  if limits then out = limits.live() end
  if notify then
    for _, lim in ipairs(notify.limiters()) do out[#out + 1] = lim end
  end
  return out
end

--- A registry with the jobs daemon's metrics and an observer for the
--- scheduler. Call m:declare(defs) after every (re)load.
---@return table m {registry=, observer=, declare=fn}
function M.new()
  local metrics = require "resi.metrics"
  local reg = metrics.new_registry()
  require("resi.metrics.process").register(reg)
  local f = families(reg)
  require("resi.metrics.http").register(reg)
  require("resi.metrics.notify").register(reg)
  require("resi.metrics.ratelimit").register(reg, M.limiters)
  local m = { registry = reg, families = f }
  local obs = {}
  function obs.on_outcome(job, outcome, duration, now)
    f.runs:inc{ job = job, outcome = outcome }
    if duration then f.duration:observe({ job = job }, duration) end
    if outcome == "succeeded" and now then f.last_success:set({ job = job }, now) end
  end
  function obs.on_skip(job, reason, n) f.skipped:inc({ job = job, reason = reason }, n or 1) end
  function obs.on_start(job, delay) f.delay:observe({ job = job }, math.max(0, delay)) end
  function obs.on_running(job, n) f.running:set({ job = job }, n) end
  function obs.on_next(job, t) if t then f.next_run:set({ job = job }, t) end end
  function obs.on_jump(direction, size) f.jumps:inc{ direction = direction, size = size } end
  function obs.on_paused(job, paused) f.suspended:set({ job = job }, paused and 1 or 0) end
  function obs.on_clock_offset(seconds) f.offset:set({}, seconds) end
  function obs.on_lease_failure() f.renew_failures:inc({}) end
  function obs.on_fenced(job) f.fenced:inc{ job = job } end
  function obs.on_mismatch(n) f.mismatch:set({}, n) end
  m.observer = obs
  --- Declares the jobs of a (re)loaded file: their info and zeroed counters.
  function m.declare(defs, paused)
    f.info:clear()
    for _, d in ipairs(defs) do
      f.info:set({ job = d.name, schedule = d.schedule.text, timezone = d.schedule.tz or "UTC",
        overlap = d.overlap or "skip", catchup = d.catchup or "latest" }, 1)
      for _, o in ipairs(M.OUTCOMES) do f.runs:init{ job = d.name, outcome = o } end
      f.running:init{ job = d.name }
      f.suspended:set({ job = d.name }, paused and paused(d) and 1 or 0)
    end
  end
  return m
end

return M
