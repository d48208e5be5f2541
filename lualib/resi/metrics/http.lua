--- resi.metrics.http: the HTTP client's counters (resi.http.stats()) on a
--- resi.metrics registry, read at every scrape:
---
---   require("resi.metrics.http").register(reg)
---
--- The collector does not load resi.http (and so libcurl) itself: until
--- something else has, the figures are 0.
local M = {}

--- Registers resi_http_client_transfers_started_total,
--- resi_http_client_sockets_opened_total and
--- resi_http_client_transfers_in_flight, and their collector.
---@param reg resi.metrics.registry
function M.register(reg)
  local started = reg:counter("resi_http_client_transfers_started_total",
    "HTTP client transfers started (every attempt and redirect hop).")
  local sockets = reg:counter("resi_http_client_sockets_opened_total",
    "Connections the HTTP client opened (a low ratio to transfers means reuse).")
  local in_flight = reg:gauge("resi_http_client_transfers_in_flight", "HTTP client transfers in progress.")
  reg:collect(function()
    local http = package.loaded["resi.http"]
    if not http then return end
    local s = http.stats()
    started:set(nil, s.transfers_started)
    sockets:set(nil, s.sockets_opened)
    in_flight:set(nil, s.in_flight)
  end)
end

return M
