--- resi.providers.call: the one way a provider API call is made. One loop,
--- whose every attempt goes through the client's limiter for the call's
--- endpoint group (resi.ratelimit.retry's attempt and again steps), ends in
--- one tagged outcome, and is decided on that tag alone:
---
---   ok         a 2xx whose body is JSON (or empty): the call's result
---   failed     an answer that a repeat would not change (4xx ...): raised
---   auth       a 401 the client can cure (Oxylabs' JWT): log in, once
---   throttled  429, or 503 with Retry-After: the server did not process
---              it; the next attempt waits for the limiter's pause
---   transient  a failure a repeat cannot make worse (a safe call's 5xx,
---              timeout or reset; a connect failure: it never left)
---   unknown    an unsafe call (a create) that may have taken effect: its
---              spec.reconcile looks for what it made; found is the result;
---              not found, a create lost in transport is sent once more and
---              one the server answered (5xx, not JSON) is raised
---   refused    the limiter would not let it go (timeout in line, queue
---              full, a pause longer than allowed): raised as rate_limited
---
--- A call is a spec: {method, path (may hold {user_id}), query?, json?,
--- headers?, safe? (may be repeated after a failure that may have taken
--- effect: reads, absolute updates, deletes, keyed creates), reconcile?,
--- login? (the client's own log-in call)}. The client supplies
--- limiter_for, attempt, response_error and, when it has them, prepare
--- (before each attempt: e.g. log in) and refresh (cure an auth outcome).
local retry = require "resi.ratelimit.retry"

local M = {}

--- The tag of one attempt's outcome (see the module's documentation).
---@param client table
---@param spec table
---@param res table|nil  the response
---@param code string|nil  the transport failure's code when res is nil
---@return "ok"|"failed"|"auth"|"throttled"|"transient"|"unknown"
function M.classify(client, spec, res, code)
  if res and res.status == 401 and client.refresh and not spec.login and not spec.refreshed then return "auth" end
  local decision, why = retry.classify(spec.method, nil, res, code, spec.safe == true)
  if decision == "throttled" then return "throttled" end
  if decision == "retry" then return "transient" end
  if why == "not idempotent" then return "unknown" end
  if res.status >= 300 then return "failed" end
  if res.body ~= "" and res:json() == nil then return spec.safe and "transient" or "unknown" end
  return "ok"
end

-- The error of a call that failed in transport, or whose answer is not
-- JSON: it names the call; context, when given, says what else failed.
local function lost_error(client, spec, res, err, code, context)
  local common = require "resi.providers.common"
  local what = res and (" answered %d with a body that is not JSON: %s"):format(res.status, select(2, res:json()))
    or (": " .. tostring(err))
  return common.error { kind = res and "protocol" or "transport", provider = client.provider,
    status = res and res.status or nil, code = res and "bad_json" or code,
    message = ("%s %s%s%s"):format(spec.method, spec.path, what, context and ("; " .. context) or "") }
end

-- The error an attempt's outcome raises when it is the last.
local function final_error(client, spec, res, err, code)
  if res and res.status >= 300 then return client:response_error(res, spec) end
  return lost_error(client, spec, res, err, code)
end

-- The error of a call the limiter would not let go.
local function refused_error(client, spec, why, info)
  local common = require "resi.providers.common"
  return common.error { kind = "rate_limited", provider = client.provider, code = why,
    retry_after = type(info) == "number" and math.max(0, info - os.time()) or nil,
    message = ("%s %s was not sent: the rate limiter said %s"):format(spec.method, spec.path, why) }
end

-- Runs spec.reconcile (looks for what a call whose answer was lost made).
-- When the lookup fails too, raises the call's own error with the
-- lookup's failure as context: the call is what the caller asked for.
local function lookup(client, spec, res, err, code)
  local ok, found = pcall(spec.reconcile)
  if ok then return found end
  error(lost_error(client, spec, res, err, code, "looking for what it may have made failed too: " .. tostring(found)), 0)
end

--- Sends one API call and returns the decoded body and the response (a
--- reconciled create returns what the lookup found and no response), or
--- raises an error object (resi.providers.common's).
---@param client table
---@param spec table
---@return any body
---@return table|nil res
function M.run(client, spec)
  local lim = client:limiter_for(spec.method, spec.path)
  -- attempts: the call's, else the client's ratelimit.retry option, else 4
  local st = retry.start(lim, { method = spec.method, attempts = spec.attempts })
  local resent = false
  while true do
    if client.prepare and not spec.login then client:prepare(spec) end
    local sent, r, info = retry.attempt(lim, st, function() return client:attempt(spec) end)
    if not sent then error(refused_error(client, spec, r, info), 0) end
    local res, err, code = r[1], r[2], r[3]
    local tag = M.classify(client, spec, res, code)
    if tag == "ok" then
      retry.succeeded(st)
      if res.body == "" then return nil, res end
      return res:json(), res
    elseif tag == "failed" then
      error(client:response_error(res, spec), 0)
    elseif tag == "auth" then
      spec.refreshed = true
      client:refresh(spec)
    elseif tag == "unknown" then
      if not spec.reconcile or resent then error(final_error(client, spec, res, err, code), 0) end
      local found = lookup(client, spec, res, err, code)
      if found ~= nil then return found, nil end
      -- not found: a create whose answer was lost in transport is sent once
      -- more; one the server answered (a 5xx, a body that is not JSON) is not
      if res then error(final_error(client, spec, res, err, code), 0) end
      resent = true
    end
    if tag ~= "auth" and not retry.again(lim, st, tag == "throttled" and "throttled" or "retry") then
      error(final_error(client, spec, res, err, code), 0)
    end
  end
end

return M
