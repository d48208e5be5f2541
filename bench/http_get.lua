-- http_get.lua: resi in the HTTP benchmark.
--
--   resi bench/http_get.lua URL N CONC
--
-- N GETs of URL with resi.http, each response's JSON decoded (res:json())
-- and checked. CONC worker tasks (resi.spawn), each looping: take the next
-- request index, http.get, decode, until N are done; the main task waits for
-- all of them (CONC=1: one request after another). Prints requests/second.
local resi = require "resi"
local http = require "resi.http"

local url, n, conc = resi.args[1], tonumber(resi.args[2]), tonumber(resi.args[3] or 1)
assert(url and n and conc, "usage: resi bench/http_get.lua URL N CONC")
local next_index = 0

local function worker()
  while next_index < n do
    next_index = next_index + 1
    local res, err, code = http.get(url)
    if not res then error(("request failed: %s (%s)"):format(err, code)) end
    if res.status ~= 200 then error("status " .. res.status) end
    local doc, jerr = res:json()
    if type(doc) ~= "table" or doc.token == nil then error("unexpected document: " .. tostring(jerr)) end
  end
end

local t0 = resi.monotonic()
local workers = {}
for i = 1, conc do workers[i] = resi.spawn(worker) end
for _, w in ipairs(workers) do w:wait() end
local secs = resi.monotonic() - t0
io.stderr:write(("%d requests, %.3f s\n"):format(n, secs))
print(("%.1f"):format(n / secs))
