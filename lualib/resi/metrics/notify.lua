--- resi.metrics.notify: resi.notify's delivery counters on a resi.metrics
--- registry, read at every scrape, one series per target name:
---
---   require("resi.metrics.notify").register(reg)
---
---   resi_notify_sent_total{target}       notifications a target took
---   resi_notify_failed_total{target}     notifications given up on (logged)
---   resi_notify_retries_total{target}    attempts after the first
---   resi_notify_pending{target}          deliveries in progress
---
--- The collector does not load resi.notify itself: until something else
--- has, no series is written.
local M = {}

--- Registers the families and their collector.
---@param reg resi.metrics.registry
function M.register(reg)
  local fams = {
    sent = reg:counter("resi_notify_sent_total", "Notifications a target took.", { "target" }),
    failed = reg:counter("resi_notify_failed_total", "Notifications given up on (each is logged).", { "target" }),
    retries = reg:counter("resi_notify_retries_total", "Notification attempts after the first.", { "target" }),
    pending = reg:gauge("resi_notify_pending", "Notification deliveries in progress.", { "target" }),
  }
  reg:collect(function()
    local notify = package.loaded["resi.notify"]
    if not notify then return end
    local stats, names = notify.stats(), {}
    for name in pairs(stats) do names[#names + 1] = name end
    table.sort(names) -- series in a stable order
    for _, name in ipairs(names) do
      for _, field in ipairs({ "sent", "failed", "retries", "pending" }) do fams[field]:set({ target = name }, stats[name][field]) end
    end
  end)
end

return M
