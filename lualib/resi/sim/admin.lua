--- resi.sim.admin: the sandbox's admin API, under /_sim/ on every provider
--- port and answered only to loopback clients:
---   GET    /_sim/state            clock, config and every provider's state
---   POST   /_sim/clock            {"advance": seconds} and/or {"speed": x}
---   POST   /_sim/usage            {"provider"?, "id", "bytes" | "add_bytes"}
---   GET    /_sim/faults           the armed fault rules
---   POST   /_sim/faults           a rule (see resi.sim.faults)
---   DELETE /_sim/faults           clears the rules (?provider=NAME for one)
---   POST   /_sim/traffic          {"enabled": bool, "rate": fraction/hour}
---   POST   /_sim/config           {"rate_window", "generate_limit", "read_limit"}
local json = require "resi.json"
local util = require "resi.sim.util"

local M = {}

-- A JSON answer.
local function reply(status, value) return { status = status, json = value } end

-- An error answer naming what was wrong.
local function bad(message) return reply(400, { error = { code = "invalid_request", message = message } }) end

-- The whole sandbox state.
local function state(world)
  local providers = {}
  for name, p in pairs(world.providers) do providers[name] = p:snapshot() end
  return { clock = { now = world.clock:now(), speed = world.clock.speed }, config = world.config,
    providers = providers }
end

-- POST /_sim/clock
local function clock(world, body)
  if body.advance ~= nil then
    if type(body.advance) ~= "number" or body.advance < 0 or body.advance == math.huge then return bad("advance must be a non-negative number of seconds") end
    world.clock:advance(body.advance)
  end
  if body.speed ~= nil then
    if type(body.speed) ~= "number" or body.speed < 0 or body.speed == math.huge then return bad("speed must be a non-negative number") end
    world.clock:set_speed(body.speed)
  end
  world:tick() -- expiry and usage follow the new time at once
  return reply(200, { now = world.clock:now(), speed = world.clock.speed })
end

-- POST /_sim/usage
local function usage(world, body, provider)
  local p = world.providers[body.provider or provider]
  if not p then return bad("provider must be unknownproxies, oxylabs or resifactory") end
  local ok, res = p:set_usage(body)
  if not ok then return reply(res.status or 400, { error = { code = res.code or "invalid_request", message = res.message } }) end
  return reply(200, res)
end

-- POST /_sim/faults
local function add_fault(world, body)
  local rule, err = world.faults:add(body)
  if not rule then return bad(err) end
  return reply(201, rule)
end

-- POST /_sim/traffic
local function traffic(world, body)
  if body.enabled ~= nil then
    if type(body.enabled) ~= "boolean" then return bad("enabled must be true or false") end
    world.config.traffic = body.enabled
  end
  if body.rate ~= nil then
    if type(body.rate) ~= "number" or body.rate < 0 or body.rate == math.huge then
      return bad("rate must be a non-negative fraction of each limit per simulated hour")
    end
    world.config.traffic_rate = body.rate
  end
  return reply(200, { enabled = world.config.traffic, rate = world.config.traffic_rate })
end

-- POST /_sim/config
local function config(world, body)
  for _, field in ipairs({ "rate_window", "generate_limit", "read_limit" }) do
    local v = body[field]
    if v ~= nil then
      if type(v) ~= "number" or v <= 0 or (field ~= "rate_window" and not util.is_int(v)) then
        return bad(field .. " must be a positive " .. (field == "rate_window" and "number of seconds" or "integer"))
      end
      world.config[field] = v
    end
  end
  return reply(200, world.config)
end

-- 403: the admin API is not for this client.
local function forbidden(message) return reply(403, { error = { code = "forbidden", message = message } }) end

--- Answers one admin request; `provider` names the port it came in on.
--- `relayed` is true for requests that came through the TLS front of a
--- non-loopback --host: their address is the relay's (127.0.0.1), so they
--- are refused whatever it says.
---@param world table the sandbox's state (resi.sim)
---@param req table
---@param path string below /_sim/
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param relayed? boolean
---@return table response
function M.handle(world, req, path, provider, relayed)
  if relayed then
    return forbidden("the /_sim/ admin API answers loopback clients only, and this request came through the TLS "
      .. "front of a non-loopback --host; on the sandbox's machine use the admin URLs resi sim printed on stderr")
  end
  if not util.from_loopback(req) then return forbidden("the /_sim/ admin API answers loopback clients only") end
  local route = req.method .. " " .. path
  if route == "GET /_sim/state" then return reply(200, state(world)) end
  if route == "GET /_sim/faults" then return reply(200, { faults = json.array(world.faults:list()) }) end
  if route == "DELETE /_sim/faults" then return reply(200, { cleared = world.faults:clear(req.query.provider) }) end
  local handlers = { ["POST /_sim/clock"] = clock, ["POST /_sim/usage"] = usage, ["POST /_sim/faults"] = add_fault,
    ["POST /_sim/traffic"] = traffic, ["POST /_sim/config"] = config }
  local fn = handlers[route]
  if not fn then return reply(404, { error = { code = "not_found", message = "no admin route " .. route } }) end
  local body, err = util.json_body(req)
  if not body then return bad(err) end
  return fn(world, body, provider)
end

return M
