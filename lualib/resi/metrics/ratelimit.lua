--- resi.metrics.ratelimit: rate limiters' counters (lim:stats()) on a
--- resi.metrics registry, one series per limiter, labelled by its name:
---
---   require("resi.metrics.ratelimit").register(reg, { lim_a, lim_b })
---   require("resi.metrics.ratelimit").register(reg, function() return daemon.limiters end)
---
--- Pass the limiters whose names are bounded (one per provider account, say),
--- not a group's per-key limiters: each one adds about twenty series.
local M = {}

--- Counters: stats() field, metric name, help.
M.counters = {
  { "granted", "resi_ratelimit_granted_total", "Permits the limiter granted." },
  { "waits", "resi_ratelimit_waits_total", "Permits that had to wait for their turn." },
  { "waited", "resi_ratelimit_wait_seconds_total", "Seconds permits spent waiting, summed." },
  { "rejected", "resi_ratelimit_rejected_total", "Calls refused (waiting line full, or too heavy for the limit)." },
  { "dropped", "resi_ratelimit_dropped_total", "Waiting calls dropped to make room (on_full = drop_*)." },
  { "cancelled", "resi_ratelimit_cancelled_total", "Waiting calls whose task was cancelled." },
  { "timeouts", "resi_ratelimit_timeouts_total", "Waiting calls whose time in line ran out." },
  { "handed_back", "resi_ratelimit_handed_back_total", "Calls handed back with a not-before time (pause above retry_after_max)." },
  { "retries", "resi_ratelimit_retries_total", "Retries the retry budget allowed." },
  { "retries_denied", "resi_ratelimit_retries_denied_total", "Retries the retry budget refused." },
  { "pauses", "resi_ratelimit_pauses_total", "Pauses ordered by the server (429, 503 with Retry-After)." },
  { "capped", "resi_ratelimit_pauses_capped_total", "Pauses the server asked for above retry_after_max." },
  { "episodes", "resi_ratelimit_adaptive_episodes_total", "Adaptive limiters: episodes of 429 responses." },
  { "lowered", "resi_ratelimit_adaptive_lowered_total", "Adaptive limiters: times the limit went down." },
  { "raised", "resi_ratelimit_adaptive_raised_total", "Adaptive limiters: times the limit went up." },
}

--- Gauges: stats() field, metric name, help.
M.gauges = {
  { "queued", "resi_ratelimit_queued", "Calls waiting in line." },
  { "in_flight", "resi_ratelimit_in_flight", "Calls holding a permit now." },
  { "paused_for", "resi_ratelimit_pause_remaining_seconds", "Seconds left of the current pause (0 when none)." },
  { "max_wait", "resi_ratelimit_max_wait_seconds", "The longest wait for a permit so far, in seconds." },
}

-- The limiters to report: a list, or what a function returns.
local function limiters_of(source)
  if type(source) == "function" then return source() or {} end
  return source
end

-- Sets every family from one limiter's stats.
local function put(fams, lim, i)
  local s = lim:stats()
  local labels = { limiter = s.name or ("#" .. i) }
  for _, c in ipairs(fams.counters) do c.fam:set(labels, s[c.field] or 0) end
  for _, g in ipairs(fams.gauges) do g.fam:set(labels, s[g.field] or 0) end
  fams.throttled:set({ limiter = labels.limiter, status = "429" }, s.seen_429 or 0)
  fams.throttled:set({ limiter = labels.limiter, status = "503" }, s.seen_503 or 0)
end

--- Registers the limiter families and a collector that reads limiters (a
--- list of limiters, or a function returning one) at every scrape. A
--- limiter that is gone from the list is dropped from the output.
---@param reg resi.metrics.registry
---@param limiters resi.ratelimit.limiter[]|fun(): resi.ratelimit.limiter[]
function M.register(reg, limiters)
  if type(limiters) ~= "table" and type(limiters) ~= "function" then
    error("resi.metrics.ratelimit.register: limiters must be a list or a function returning one", 2)
  end
  local fams = { counters = {}, gauges = {} }
  for _, c in ipairs(M.counters) do fams.counters[#fams.counters + 1] = { field = c[1], fam = reg:counter(c[2], c[3], { "limiter" }) } end
  for _, g in ipairs(M.gauges) do fams.gauges[#fams.gauges + 1] = { field = g[1], fam = reg:gauge(g[2], g[3], { "limiter" }) } end
  fams.throttled = reg:counter("resi_ratelimit_throttled_responses_total",
    "Responses that throttled the limiter, by status (429, 503).", { "limiter", "status" })
  reg:collect(function()
    for _, c in ipairs(fams.counters) do c.fam:clear() end
    for _, g in ipairs(fams.gauges) do g.fam:clear() end
    fams.throttled:clear()
    for i, lim in ipairs(limiters_of(limiters)) do put(fams, lim, i) end
  end)
end

return M
