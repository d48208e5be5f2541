--- resi.jobs.schedule: the slot arithmetic of a job. A schedule turns
--- "every 5 minutes" or a cron expression into nominal fire times (integer
--- UTC epoch seconds), the identity of a run together with the job's name.
---
--- `every` slots are whole multiples of the interval counted from the Unix
--- epoch (UTC), so the lattice is the same after every restart: "5m" fires
--- at :00, :05, :10 ...; "1h30m" at 00:00, 01:30, 03:00 UTC ... An `every`
--- job follows real elapsed time (it is a "wildcard" job in cronie's terms).
---
--- `cron` slots come from resi.cron, which applies the DST rule (DESIGN §7,
--- cronie's): a wildcard job (minute or hour field starting with `*`)
--- follows real time; a fixed-time job runs once at the first valid instant
--- after a skipped hour and once, at the first occurrence, in a repeated
--- hour. This module only asks resi.cron for the next match.
local M = {}

local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 604800 }

--- Parses an interval: a positive integer number of seconds, or a string of
--- number+unit pairs ("90s", "5m", "1h30m", "1d"; units w d h m s).
--- Returns the seconds, or nil and a message.
---@param v any
---@return integer|nil seconds
---@return string|nil err
function M.parse_interval(v)
  if type(v) == "number" then
    local n = math.tointeger(v)
    if not n or n < 1 then return nil, ("interval must be a whole number of seconds >= 1, got %s"):format(v) end
    return n
  end
  if type(v) ~= "string" then return nil, "interval must be seconds or a string such as \"5m\", got " .. type(v) end
  local s = v:gsub("%s+", "")
  if s == "" then return nil, "interval is empty" end
  local total, pos = 0, 1
  while pos <= #s do
    local num, unit, stop = s:match("^(%d+)(%a)()", pos)
    if not num or not UNITS[unit:lower()] then
      return nil, ("bad interval %q: expected number+unit pairs such as \"5m\" or \"1h30m\" (units w d h m s)"):format(v)
    end
    total = total + tonumber(num) * UNITS[unit:lower()]
    pos = stop
  end
  if total < 1 then return nil, ("interval %q is zero"):format(v) end
  return math.tointeger(total)
end

--- Formats seconds as the shortest unit string ("1h30m", "90s" -> "1m30s").
---@param seconds integer
---@return string
function M.format_interval(seconds)
  local out = {}
  for _, u in ipairs({ { "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 } }) do
    local n = seconds // u[2]
    if n > 0 then
      out[#out + 1] = n .. u[1]
      seconds = seconds - n * u[2]
    end
  end
  return table.concat(out)
end

local Every = {}
Every.__index = Every

--- An interval schedule: slots at whole multiples of `seconds` since the epoch.
---@param seconds integer
---@return table sched
function M.every(seconds)
  return setmetatable({ kind = "every", interval = seconds, wildcard = true, tz = "UTC",
    text = "every " .. M.format_interval(seconds) }, Every)
end

--- The first slot strictly after t.
---@param t number
---@return integer
function Every:next(t)
  return (math.floor(t) // self.interval + 1) * self.interval
end

--- The last slot at or before t.
---@param t number
---@return integer
function Every:last(t)
  return (math.floor(t) // self.interval) * self.interval
end

--- How many slots fall in (a, b].
---@param a number
---@param b number
---@return integer
function Every:count(a, b)
  if b <= a then return 0 end
  return math.floor(b) // self.interval - math.floor(a) // self.interval
end

--- Is t a slot?
---@param t number
---@return boolean
function Every:matches(t)
  return t % 1 == 0 and math.floor(t) % self.interval == 0
end

--- The next n slots after `from`, shaped like resi.cron's explain entries.
---@param from number
---@param n integer
---@return table[]
function Every:explain(from, n)
  local out, t = {}, from
  for i = 1, n do
    t = self:next(t)
    local wall = os.date("!%Y-%m-%d %H:%M:%S", t)
    out[i] = { at = t, wall = wall, offset = "+00:00", abbr = "UTC", text = wall .. " +00:00 UTC" }
  end
  return out
end

-- Is the minute or the hour field of a cron expression a wildcard (starts
-- with `*`)? cronie's MIN_STAR | HR_STAR; a range or a list is not.
local function cron_wildcard(expr)
  local e = expr:lower()
  local macros = { ["@hourly"] = true }
  if e:sub(1, 1) == "@" then return macros[e] == true end
  local f = {}
  for w in expr:gmatch("%S+") do f[#f + 1] = w end
  local min, hr = f[1], f[2]
  if #f == 6 then min, hr = f[2], f[3] end
  return (min and min:sub(1, 1) == "*") or (hr and hr:sub(1, 1) == "*") or false
end
M.cron_wildcard = cron_wildcard

local Cron = {}
Cron.__index = Cron

--- A cron schedule through resi.cron. Returns the schedule or nil and the
--- parser's message (it names the field and the bad token).
---@param expr string
---@param tz string|nil IANA zone, UTC when nil
---@return table|nil sched
---@return string|nil err
function M.cron(expr, tz)
  if type(expr) ~= "string" then return nil, "cron expression must be a string, got " .. type(expr) end
  local ok, cron = pcall(require, "resi.cron")
  if not ok then return nil, "resi.cron is not available: " .. tostring(cron) end
  local sched, err = cron.parse(expr, { tz = tz })
  if not sched then return nil, err end
  return setmetatable({ kind = "cron", expr = expr, cron = sched, tz = tz or "UTC",
    wildcard = (sched.wildcard == nil and cron_wildcard(expr)) or sched.wildcard == true, text = expr }, Cron)
end

--- The first slot strictly after t (nil if the expression never matches again).
---@param t number
---@return integer|nil
function Cron:next(t)
  local n = self.cron:next(math.floor(t))
  return n and math.tointeger(n) or n
end

--- The last slot at or before t (nil if none).
---@param t number
---@return integer|nil
function Cron:last(t)
  t = math.floor(t)
  if self.cron:matches(t) then return t end
  local p = self.cron:prev(t)
  return p and math.tointeger(p) or p
end

--- How many slots fall in (a, b] (walks them; callers bound b - a).
---@param a number
---@param b number
---@param limit? integer stop counting here
---@return integer
function Cron:count(a, b, limit)
  local n, t = 0, self:next(a)
  while t and t <= b and (not limit or n < limit) do
    n = n + 1
    t = self:next(t)
  end
  return n
end

--- Is t a slot?
---@param t number
---@return boolean
function Cron:matches(t) return self.cron:matches(t) end

--- The next n fire times after `from` with resi.cron's DST markers:
--- {at=, wall=, offset=, abbr=, note=, ...} each.
---@param from number
---@param n integer
---@return table[]
function Cron:explain(from, n) return self.cron:explain(from, n) end

--- The slots in (a, b], oldest first, at most `limit` of them: the newest
--- ones when there are more. Returns the list and how many older slots
--- were left out (an exact count for `every`, or a lower bound `true` when
--- a cron schedule had more than it walked).
---@param sched table
---@param a number
---@param b number
---@param limit integer
---@return integer[] slots
---@return integer|boolean dropped
function M.between(sched, a, b, limit)
  local out = {}
  if b <= a then return out, 0 end
  if sched.kind == "every" then
    local n = sched:count(a, b)
    local last = sched:last(b)
    local take = math.min(n, limit)
    for i = take - 1, 0, -1 do out[#out + 1] = last - i * sched.interval end
    return out, n - take
  end
  local t = sched:next(a)
  local dropped = 0
  while t and t <= b do
    out[#out + 1] = t
    if #out > limit then
      table.remove(out, 1)
      dropped = dropped + 1
      if dropped > 100000 then
        -- jump: walk from the newest limit slots backwards is not offered by
        -- every cron; restart the walk near b to bound the work
        return M.tail(sched, a, b, limit), true
      end
    end
    t = sched:next(t)
  end
  return out, dropped
end

--- The newest `limit` slots in (a, b] found by walking back with last().
---@param sched table  a resi.cron schedule or an interval
---@param a integer
---@param b integer
---@param limit integer
function M.tail(sched, a, b, limit)
  local out = {}
  local t = sched:last(b)
  while t and t > a and #out < limit do
    table.insert(out, 1, t)
    t = sched:last(t - 1)
  end
  return out
end

--- ISO 8601 UTC text of an epoch second: 2026-03-29T01:00:00Z.
---@param t number
---@return string
function M.iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- Parses ISO 8601 (UTC "Z", an offset, or none meaning UTC), "now", or
--- epoch seconds. Returns epoch seconds or nil and a message.
---@param s string
---@return integer|nil
---@return string|nil
---@param now? number epoch seconds that "now" stands for (default os.time())
function M.parse_time(s, now)
  if s == "now" then return math.floor(now or os.time()) end
  if s:match("^%d+$") then return math.tointeger(tonumber(s)) end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)[T ]?(%d?%d?):?(%d?%d?):?(%d?%d?)(.*)$")
  if not y then return nil, ("bad time %q: expected ISO 8601 (2026-03-29T01:00:00Z), epoch seconds or now"):format(s) end
  local days = M.days_from_civil(tonumber(y), tonumber(mo), tonumber(d))
  local t = days * 86400 + (tonumber(h) or 0) * 3600 + (tonumber(mi) or 0) * 60 + (tonumber(sec) or 0)
  if rest == "" or rest == "Z" then return t end
  local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then return nil, ("bad time zone offset %q in %q"):format(rest, s) end
  local off = tonumber(oh) * 3600 + tonumber(om) * 60
  return sign == "+" and t - off or t + off
end

--- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
---@param y integer
---@param m integer
---@param d integer
---@return integer
function M.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

return M
