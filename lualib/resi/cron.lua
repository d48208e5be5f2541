--- resi.cron: cron expressions, their next/previous fire times, in UTC or
--- in an IANA time zone, with one stated DST rule.
---
---   local cron = require "resi.cron"
---   local s = assert(cron.parse("0 6 * * 1-5", { tz = "Europe/Berlin" }))
---   s:next(os.time())          --> the next 06:00 Berlin time on a weekday
---   cron.parse("61 * * * *")   --> nil, 'minute: bad token "61" (out of range 0-59)'
---
--- Syntax. 5 fields (minute hour day-of-month month day-of-week) or 6 with
--- seconds first. Each field is a list (`,`) of `*`, `n`, `a-b`, `*/n`,
--- `a-b/n` or `a/n` (from a to the field's maximum). Names JAN-DEC and
--- SUN-SAT in any case; day-of-week 0-7, 7 and 0 both Sunday, `*` meaning
--- 0-6; a range may end on Sunday (FRI-SUN). `?` is `*` in the two day
--- fields. A range that runs backwards (22-2) is an error: write 22-23,0-2.
--- Macros: @yearly @annually @monthly @weekly @daily @midnight @hourly (and
--- Cronos' @every_minute @every_second).
---
--- Day-of-month and day-of-week combine as in Vixie cron (cronie's
--- DOM_STAR/DOW_STAR): if either field starts with `*` or is `?`, a day
--- must match both (the starred one usually matches all); otherwise a day
--- matching either one fires. `0 0 1,15 * MON` fires on the 1st, the 15th
--- and every Monday; `0 0 */2 * MON` fires on Mondays that are odd days.
---
--- L, W and # (Quartz's meaning, each exact for every month and year), as
--- list items of their day field:
---   day-of-month  L (last day), L-3 (3 days before it), 15W (the weekday
---                 nearest the 15th, never leaving the month: a Saturday 1st
---                 gives Monday the 3rd, a Sunday 31st gives Friday the 29th;
---                 no day if the month has no 15th), LW (last weekday), L-3W
---   day-of-week   5L (the last Friday of the month), 1#2 (its second Monday),
---                 names allowed: FRIL, MON#2
--- They count as restricted fields for the Vixie rule: `0 0 L * 5` fires on
--- the last day of the month and on every Friday.
---
--- Times are epoch seconds (integers). In UTC (the default) every wall time
--- exists once. With { tz = "Area/City" } the fields are wall-clock time in
--- that zone, and the clock changes follow cronie's rule:
---
--- * A wildcard job, one whose minute or hour field starts with `*` (`*`,
---   `*/15`; not a range or a list such as `0-30` or `0,30`), follows real
---   elapsed time. A slot inside a skipped hour does not exist, and a slot
---   in a repeated hour fires in both occurrences.
---     `*/30 * * * *` in Europe/Berlin on 2024-03-31: 01:30 CET, then 03:00
---     CEST (02:00 and 02:30 do not exist).
---     `*/30 1 * * *` in America/New_York on 2024-11-03: 01:00 EDT,
---     01:30 EDT, 01:00 EST, 01:30 EST.
--- * Every other job is fixed-time. A wall time inside a skipped hour runs
---   once, at the first valid instant after the gap; a wall time in a
---   repeated hour runs once, at its first occurrence.
---     `30 2 * * *` in Europe/Berlin on 2024-03-31: 03:00 CEST (moved).
---     `30 1 * * *` in America/New_York on 2024-11-03: 01:30 EDT only.
---     `0,30 2 * * *` on the Berlin spring day: once, at 03:00.
--- The seconds field plays no part in the classification: `*/10 30 2 * * *`
--- is fixed-time. sched:explain(t, n) shows the rule at work with markers
--- "moved: skipped hour", "once: repeated hour", "twice: repeated hour" and
--- "after skipped hour".
---
--- Searching works field by field (jump to the next matching month, day,
--- hour, minute, second), with the matching days of a month computed once
--- per month and cached; an expression that can never fire (`0 0 30 2 *`)
--- is recognised when parsed, and every search is bounded (400 years, and
--- years 1-9999).
local civil = require "resi.cron.civil"
local parser = require "resi.cron.parse"
local tz = require "resi.cron.tz"

local days_from_civil, civil_from_days = civil.days_from_civil, civil.civil_from_days
local days_in_month, weekday = civil.days_in_month, civil.weekday
local floor, ceil, type, mtype = math.floor, math.ceil, type, math.type

local M = {}

local HORIZON_YEARS = 400                  -- the calendar repeats every 400 years
local HORIZON = 401 * 366 * 86400          -- the same, in seconds, for zoned searches
local MIN_T = civil.epoch(1, 1, 1, 0, 0, 0)
local MAX_T = civil.epoch(9999, 12, 31, 23, 59, 59)
local CACHE_MONTHS = 64                    -- month day-tables kept per day-field pair

--- A parsed cron expression (cron.parse).
---@class resi.cron.schedule
---@field expr string
---@field tz string|nil  the IANA zone, nil for UTC
---@field kind "wildcard"|"fixed"  how DST moves it (see resi.jobs)
local Schedule = {}
Schedule.__index = Schedule

------------------------------------------------------------------------
-- lookup tables

-- For a set over lo..hi: nxt[v] = smallest member >= v (nil past the last),
-- prv[v] = largest member <= v (nil before the first).
local function steps(set, lo, hi)
  local nxt, prv = {}, {}
  local n, p = nil, nil
  for v = hi, lo, -1 do
    if set[v] then n = v end
    nxt[v] = n
  end
  for v = lo, hi do
    if set[v] then p = v end
    prv[v] = p
  end
  return nxt, prv
end

-- The weekday-nearest day to day n of a month (Quartz's nW), or nil.
local function nearest_weekday(n, dim, wd1)
  if n < 1 or n > dim then return nil end
  local wd = (wd1 + n - 1) % 7
  if wd == 6 then return n == 1 and 3 or n - 1 end   -- Saturday
  if wd == 0 then return n == dim and n - 2 or n + 1 end -- Sunday
  return n
end

-- The days of a month of dim days starting on weekday wd1 that the
-- day-of-month field's L and W items select.
local function dom_specials(dom, dim, wd1)
  local out = {}
  for k in pairs(dom.last) do
    if dim - k >= 1 then out[dim - k] = true end
  end
  for k in pairs(dom.lastw) do
    local d = nearest_weekday(dim - k, dim, wd1)
    if d then out[d] = true end
  end
  for n in pairs(dom.w) do
    local d = nearest_weekday(n, dim, wd1)
    if d then out[d] = true end
  end
  return out
end

-- Does day d (weekday wd) of a dim-day month match the day-of-week field?
local function dow_match(dow, d, dim, wd)
  if dow.set[wd] then return true end
  if dow.lastdow[wd] and d + 7 > dim then return true end
  return dow.nth[wd * 8 + (d - 1) // 7 + 1] == true
end

-- Which days 1..dim of a month starting on weekday wd1 fire (Vixie's rule);
-- days holds the dom and dow fields.
local function match_days(days, dim, wd1)
  local dom, dow = days.dom, days.dow
  local both = dom.star or dow.star
  local special = dom_specials(dom, dim, wd1)
  local out = {}
  for d = 1, dim do
    local a = dom.set[d] or special[d] or false
    local b = dow_match(dow, d, dim, (wd1 + d - 1) % 7)
    if both then out[d] = a and b else out[d] = a or b end
  end
  return out
end

-- True when no month of any year has a matching day: every (month, length,
-- first weekday) combination occurs in the Gregorian calendar.
local function never_fires(spec)
  for m = 1, 12 do
    if spec.month.set[m] then
      for _, dim in ipairs(m == 2 and { 28, 29 } or { days_in_month(2001, m) }) do
        for wd1 = 0, 6 do
          for _, ok in ipairs(match_days(spec, dim, wd1)) do
            if ok then return false end
          end
        end
      end
    end
  end
  return true
end

-- The next/previous matching day tables of month m of year y for compiled
-- expression k, cached in k.days (shared by expressions with the same day
-- fields).
local function month_tables(k, y, m)
  local days, key = k.days, y * 12 + m
  local nxt = days.dn[key]
  if nxt then return nxt, days.dp[key] end
  if days.ncache >= CACHE_MONTHS then days.dn, days.dp, days.ncache = {}, {}, 0 end
  local dim = days_in_month(y, m)
  local prv
  nxt, prv = steps(match_days(days, dim, weekday(days_from_civil(y, m, 1))), 1, dim)
  days.dn[key], days.dp[key], days.ncache = nxt, prv, days.ncache + 1
  return nxt, prv
end

------------------------------------------------------------------------
-- searching in wall-clock (civil) time

-- The smallest matching civil time >= c and < limit, or nil.
local function next_civil(k, c, limit)
  local days, sod = c // 86400, c % 86400
  local y, m, d = civil_from_days(days)
  local h, mi, s = sod // 3600, sod % 3600 // 60, sod % 60
  local ystop = y + HORIZON_YEARS
  local mon_n, hn, mn, sn = k.mon_n, k.hour_n, k.min_n, k.sec_n
  while true do
    local mm = mon_n[m]
    if mm ~= m then -- not a month of the set: the first day of the next one
      if mm then m = mm else y, m = y + 1, k.mon_first end
      d, h, mi, s = 1, 0, 0, 0
      if y > ystop or days_from_civil(y, m, 1) * 86400 >= limit then return nil end
    end
    local nd = month_tables(k, y, m)[d]
    if not nd then -- no matching day left: the next month
      m, d, h, mi, s = m + 1, 1, 0, 0, 0
      if m > 12 then y, m = y + 1, 1 end
      if y > ystop or days_from_civil(y, m, 1) * 86400 >= limit then return nil end
      goto continue
    end
    if nd ~= d then d, h, mi, s = nd, 0, 0, 0 end
    local nh = hn[h]
    if not nh then d, h, mi, s = d + 1, 0, 0, 0 goto continue end -- no hour left: the next day
    if nh ~= h then h, mi, s = nh, 0, 0 end
    local nm = mn[mi]
    if not nm then h, mi, s = h + 1, 0, 0 goto continue end
    if nm ~= mi then mi, s = nm, 0 end
    local ns = sn[s]
    if ns then
      local found = days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + ns
      return found < limit and found or nil
    end
    mi, s = mi + 1, 0
    ::continue::
  end
end

-- The largest matching civil time <= c and >= floor_c, or nil.
local function prev_civil(k, c, floor_c)
  local days, sod = c // 86400, c % 86400
  local y, m, d = civil_from_days(days)
  local h, mi, s = sod // 3600, sod % 3600 // 60, sod % 60
  local ystop = y - HORIZON_YEARS
  local mon_p, hp, mp, sp = k.mon_p, k.hour_p, k.min_p, k.sec_p
  while true do
    local mm = mon_p[m]
    if mm ~= m then -- not a month of the set: the last second of the previous one
      if mm then m = mm else y, m = y - 1, k.mon_last end
      d, h, mi, s = days_in_month(y, m), 23, 59, 59
      if y < ystop or (days_from_civil(y, m, d) + 1) * 86400 <= floor_c then return nil end
    end
    local _, prv = month_tables(k, y, m)
    local pd = prv[d]
    if not pd then -- no matching day before: the previous month
      m = m - 1
      if m < 1 then y, m = y - 1, 12 end
      d, h, mi, s = days_in_month(y, m), 23, 59, 59
      if y < ystop or (days_from_civil(y, m, d) + 1) * 86400 <= floor_c then return nil end
      goto continue
    end
    if pd ~= d then d, h, mi, s = pd, 23, 59, 59 end
    local ph = hp[h]
    if not ph then d, h, mi, s = d - 1, 23, 59, 59 goto continue end -- no hour before: the day before
    if ph ~= h then h, mi, s = ph, 59, 59 end
    local pm = mp[mi]
    if not pm then h, mi, s = h - 1, 59, 59 goto continue end
    if pm ~= mi then mi, s = pm, 59 end
    local ps = sp[s]
    if ps then
      local found = days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + ps
      return found >= floor_c and found or nil
    end
    mi, s = mi - 1, 59
    ::continue::
  end
end

------------------------------------------------------------------------
-- searching in a time zone (cronie's DST rule)

-- For a fixed-time job: does civil time c, in interval i of zone z, repeat
-- a wall time that already occurred before the transition (a fold)?
local function repeats(z, i, c)
  if i == 0 then return false end
  local off, poff = z.off[i], z.off[i - 1]
  return poff > off and c < z.at[i] + poff and (i == 1 or c - poff >= z.at[i - 1])
end

-- For a fixed-time job: the first matching wall time skipped by the
-- transition that starts interval i (a gap), or nil.
local function skipped(k, z, i)
  if i == 0 then return nil end
  local lo, off, poff = z.at[i], z.off[i], z.off[i - 1]
  if poff >= off then return nil end
  return next_civil(k, lo + poff, lo + off)
end

-- One step of the zoned forward search from instant s: returns the fire
-- time, or nil and the instant to go on from (nil: give up).
local function next_step(k, z, s)
  local i = z:interval(s)
  local off, lo, hi = z.off[i], z.at[i], z.at[i + 1]
  local fixed = not k.wildcard
  if fixed and s == lo and skipped(k, z, i) then return lo end
  local c = next_civil(k, s + off, hi and hi + off or MAX_T + 1 + off)
  if c then
    if fixed and repeats(z, i, c) then return nil, lo + z.off[i - 1] - off end
    return c - off
  end
  return nil, hi
end

-- One step of the zoned backward search from instant s (inclusive).
local function prev_step(k, z, s)
  local i = z:interval(s)
  local off, lo = z.off[i], z.at[i]
  local fixed = not k.wildcard
  local c = prev_civil(k, s + off, lo and lo + off or MIN_T + off)
  if c then
    if fixed and repeats(z, i, c) then return nil, lo - 1 end
    return c - off
  end
  if not lo then return nil, nil end
  if fixed and skipped(k, z, i) then return lo end
  return nil, lo - 1
end

-- The first fire time >= s of compiled expression k in zone z (nil: UTC), or nil.
local function next_at(k, z, s)
  if k.never or s > MAX_T then return nil end
  if not z then return next_civil(k, s, MAX_T + 1) end
  local stop = s + HORIZON
  repeat
    local found
    found, s = next_step(k, z, s)
    if found then return found <= MAX_T and found or nil end
  until not s or s > stop or s > MAX_T
  return nil
end

-- The last fire time <= s of compiled expression k in zone z (nil: UTC), or nil.
local function prev_at(k, z, s)
  if k.never or s < MIN_T then return nil end
  if not z then return prev_civil(k, s, MIN_T) end
  local stop = s - HORIZON
  repeat
    local found
    found, s = prev_step(k, z, s)
    if found then return found >= MIN_T and found or nil end
  until not s or s < stop or s < MIN_T
  return nil
end

------------------------------------------------------------------------
-- the public API

-- Raises unless t is a number (a programming error, not a data error).
local function check_time(fname, t)
  if type(t) ~= "number" or t ~= t then
    error(("resi.cron: %s expects a time in epoch seconds, got %s"):format(fname, tostring(t)), 3)
  end
end

--- The first fire time strictly after t (epoch seconds), or nil if there is
--- none (the expression never fires, or not before year 10000).
---@param t number
---@return integer|nil
function Schedule:next(t)
  check_time("next", t)
  if t >= MAX_T then return nil end
  if t < MIN_T - 1 then t = MIN_T - 1 end
  return next_at(self.core, self.zone, floor(t) + 1)
end

--- The last fire time strictly before t, or nil.
---@param t number
---@return integer|nil
function Schedule:prev(t)
  check_time("prev", t)
  if t <= MIN_T then return nil end
  if t > MAX_T + 1 then t = MAX_T + 1 end
  return prev_at(self.core, self.zone, ceil(t) - 1)
end

--- Is t (epoch seconds) a fire time?
---@param t number
---@return boolean
function Schedule:matches(t)
  check_time("matches", t)
  if mtype(t) ~= "integer" and t ~= floor(t) then return false end
  t = floor(t)
  return next_at(self.core, self.zone, t) == t
end

--- The next n fire times strictly after t, in order (fewer if the schedule
--- ends).
---@param t number
---@param n integer
---@return integer[]
function Schedule:next_n(t, n)
  check_time("next_n", t)
  local out = {}
  for k = 1, math.tointeger(n) or error("resi.cron: next_n expects a count, got " .. tostring(n), 2) do
    t = self:next(t)
    if not t then break end
    out[k] = t
  end
  return out
end

--- The wall-clock time of instant t in the schedule's zone:
--- "YYYY-MM-DD HH:MM:SS", the offset ("+02:00") and the abbreviation ("CEST").
---@param t integer
---@return string wall
---@return string offset
---@return string abbr
function Schedule:localtime(t)
  local z = self.zone or tz.UTC
  local off, abbr = z:offset(floor(t))
  return civil.format(floor(t) + off), civil.format_offset(off), abbr
end

-- The DST note for fire time x of a zoned schedule (prev: the previous fire
-- time or the search start), or nil, with the wall time the note is about.
local function dst_note(k, z, x, prev)
  local i = z:interval(x)
  local off, lo, hi = z.off[i], z.at[i], z.at[i + 1]
  local c = x + off
  local wild = k.wildcard
  if lo and x == lo and not wild then
    local want = skipped(k, z, i)
    if want then return "moved: skipped hour", want end
  end
  if i > 0 and z.off[i - 1] > off and c < lo + z.off[i - 1] then
    return "twice: repeated hour (2nd)", c -- only wildcard jobs fire here
  end
  if hi and z.off[i + 1] < off and c >= hi + z.off[i + 1] then
    return wild and "twice: repeated hour (1st)" or "once: repeated hour", c
  end
  if wild and lo and lo > prev and z.off[i - 1] < off then
    local gone = next_civil(k, lo + z.off[i - 1], lo + off)
    if gone then return "after skipped hour: its slots do not exist", gone end
  end
  return nil
end

--- The next n fire times after t with their wall-clock time and what the
--- DST rule did: a list of {at=, wall=, offset=, abbr=, note=, wanted=, text=}
--- where note is nil or one of "moved: skipped hour" (wanted: the wall time
--- that did not exist), "once: repeated hour", "twice: repeated hour (1st)",
--- "twice: repeated hour (2nd)", "after skipped hour: its slots do not exist".
---@param t number
---@param n integer
---@return table[]
function Schedule:explain(t, n)
  local out, prev = {}, floor(t)
  for k, x in ipairs(self:next_n(t, n)) do
    local wall, offset, abbr = self:localtime(x)
    local e = { at = x, wall = wall, offset = offset, abbr = abbr }
    if self.zone then
      local note, about = dst_note(self.core, self.zone, x, prev)
      e.note = note
      if note and note:find("skipped", 1, true) then e.wanted = civil.format(about) end
    end
    e.text = ("%s %s %s"):format(wall, offset, abbr)
    if e.note then
      e.text = e.text .. "  " .. e.note .. (e.wanted and (" (" .. e.wanted .. " does not exist)") or "")
    end
    out[k], prev = e, x
  end
  return out
end

-- The expression and zone, for printing.
function Schedule:__tostring()
  return ("cron(%q%s)"):format(self.expr, self.tz and (", tz=" .. self.tz) or "")
end

-- Lookup tables and compiled expressions are shared: a daemon with 10,000
-- jobs on a handful of expressions keeps a handful of each. Weak values:
-- what no schedule uses any more is collected.
local step_cache = setmetatable({}, { __mode = "v" })
local days_cache = setmetatable({}, { __mode = "v" })
local compiled = setmetatable({}, { __mode = "v" })

-- The next/previous tables of a field over lo..hi, shared by field text.
local function field_steps(key, f, lo, hi)
  local id = key .. " " .. f.text
  local pair = step_cache[id]
  if not pair then
    pair = { steps(f.set, lo, hi) }
    step_cache[id] = pair
  end
  return pair[1], pair[2]
end

-- The day fields of a spec with their month-table cache, shared by text.
local function shared_days(spec)
  local id = spec.dom.text .. " " .. spec.dow.text
  local days = days_cache[id]
  if not days then
    days = { dom = spec.dom, dow = spec.dow, dn = {}, dp = {}, ncache = 0 }
    days_cache[id] = days
  end
  return days
end

-- Compiles an expression (parse, lookup tables, the never-fires check), or
-- returns the compiled one of the same text.
local function compile(expr)
  local k = type(expr) == "string" and compiled[expr]
  if k then return k end
  local spec, err = parser.parse(expr)
  if not spec then return nil, err end
  k = { spec = spec, wildcard = spec.wildcard, days = shared_days(spec) }
  k.sec_n, k.sec_p = field_steps("s", spec.second, 0, 60)
  k.min_n, k.min_p = field_steps("m", spec.minute, 0, 60)
  k.hour_n, k.hour_p = field_steps("h", spec.hour, 0, 24)
  k.mon_n, k.mon_p = field_steps("M", spec.month, 0, 13)
  k.mon_first, k.mon_last = k.mon_n[1], k.mon_p[12]
  k.never = never_fires(spec)
  compiled[expr] = k
  return k
end

--- Parses a cron expression. opts.tz names an IANA zone (default UTC).
--- Returns a schedule, or nil and a message that names the field and the
--- bad token (or the unknown zone).
---@param expr string
---@param opts {tz: string|nil}|nil
---@return resi.cron.schedule|nil sched
---@return string|nil err
function M.parse(expr, opts)
  local k, err = compile(expr)
  if not k then return nil, err end
  local name = opts and opts.tz
  local zone
  if name ~= nil and name ~= "UTC" then
    zone, err = tz.load(name)
    if not zone then return nil, err end
  end
  return setmetatable({ core = k, expr = expr, zone = zone, tz = name, wildcard = k.wildcard,
    kind = k.wildcard and "wildcard" or "fixed" }, Schedule)
end

--- Loads an IANA time zone (see resi.cron.tz): zone:offset(t) gives the
--- offset east of UTC in seconds, the abbreviation and the DST flag.
---@param name string
---@return table|nil zone
---@return string|nil err
function M.zone(name)
  return tz.load(name)
end

return M
