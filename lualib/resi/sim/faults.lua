--- resi.sim.faults: faults injected through the admin API, per provider and
--- route. A rule fires on the next `count` matching requests (0: until
--- cleared). Kinds:
---   latency      wait `ms` before handling (then answer normally); with
---                "after": true, handle first (the change is committed)
---                and wait before answering: a timeout after the commit
---   error        answer `status` (default 503) without touching state
---   reset        close the connection before handling (nothing committed)
---   truncate     handle, then send the response cut short (Content-Length
---                promises more than is sent) and close
---   malformed    handle, then send a body that is not valid JSON
---   rate_limit   answer 429 with Retry-After `retry_after` (default 1)
---   commit_lost  handle (the change is committed), then close the
---                connection without answering: "fail after committing"
local M = {}

M.KINDS = { latency = true, error = true, reset = true, truncate = true, malformed = true,
  rate_limit = true, commit_lost = true }

---@class resi.sim.faults
local Faults = {}
Faults.__index = Faults

--- An empty rule set.
function M.new() return setmetatable({ rules = {}, next_id = 1 }, Faults) end

-- Splits "METHOD /a/:b/*" into a method and path segments.
local function parse_route(route)
  local method, path = route:match("^(%S+)%s+(/%S*)$")
  if not method then return nil end
  local segs = {}
  for s in path:gmatch("[^/]+") do segs[#segs + 1] = s end
  return method:upper(), segs
end

--- Adds a rule from the admin API's JSON; returns it, or nil and a message
--- naming the bad field.
---@param spec table {provider?, route?, kind, count?, ms?, status?, retry_after?}
function Faults:add(spec)
  if type(spec) ~= "table" then return nil, "expected a JSON object" end
  if not M.KINDS[spec.kind] then
    return nil, "kind must be one of latency, error, reset, truncate, malformed, rate_limit, commit_lost"
  end
  local rule = { id = self.next_id, kind = spec.kind, provider = spec.provider, route = spec.route or "* /*",
    count = math.tointeger(spec.count) or 1, ms = tonumber(spec.ms) or 0,
    status = math.tointeger(spec.status) or 503, retry_after = spec.retry_after or 1, fired = 0,
    after = spec.after == true }
  if spec.provider ~= nil and type(spec.provider) ~= "string" then return nil, "provider must be a string" end
  local method, segs = parse_route(rule.route)
  if not method then return nil, 'route must look like "POST /resi/token/create" (":x" and "*" match one segment, a trailing "/*" any rest)' end
  if rule.count < 0 then return nil, "count must be >= 0 (0: until cleared)" end
  if rule.status < 100 or rule.status > 599 then return nil, "status must be 100..599" end
  rule.method, rule.segs = method, segs
  self.next_id = self.next_id + 1
  self.rules[#self.rules + 1] = rule
  return self:list()[#self.rules]
end

-- True when a rule's route matches a method and relative path.
local function matches(rule, method, path)
  if rule.method ~= "*" and rule.method ~= method then return false end
  local i = 0
  for s in path:gmatch("[^/]+") do
    i = i + 1
    local want = rule.segs[i]
    if want == nil then return false end
    if want == "*" and i == #rule.segs then return true end -- trailing * takes the rest
    if want ~= "*" and want:sub(1, 1) ~= ":" and want ~= s then return false end
  end
  return i == #rule.segs or (i == #rule.segs - 1 and rule.segs[#rule.segs] == "*")
end

--- Takes the first rule that matches this request (counting it down), or nil.
---@param provider string
---@param method string
---@param path string
---@return table|nil rule
function Faults:take(provider, method, path)
  if self.rules[1] == nil then return nil end -- none armed: the usual case, on every request
  for idx, rule in ipairs(self.rules) do
    if (rule.provider == nil or rule.provider == provider) and matches(rule, method, path) then
      rule.fired = rule.fired + 1
      if rule.count > 0 then
        rule.count = rule.count - 1
        if rule.count == 0 then table.remove(self.rules, idx) end
      end
      return rule
    end
  end
  return nil
end

--- The rules still armed, as the admin API shows them.
---@return table[]
function Faults:list()
  local out = {}
  for i, r in ipairs(self.rules) do
    out[i] = { id = r.id, kind = r.kind, provider = r.provider, route = r.route, count = r.count, ms = r.ms,
      status = r.status, retry_after = r.retry_after, fired = r.fired, after = r.after }
  end
  return out
end

--- Removes every rule (of one provider when given); returns how many.
---@param provider? string
---@return integer removed
function Faults:clear(provider)
  local kept, n = {}, 0
  for _, r in ipairs(self.rules) do
    if provider == nil or r.provider == provider then n = n + 1 else kept[#kept + 1] = r end
  end
  self.rules = kept
  return n
end

return M
