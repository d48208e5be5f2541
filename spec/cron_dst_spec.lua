-- resi.cron in time zones: cronie's DST rule in Europe/Berlin and
-- America/New_York both ways (and Lord Howe's half hour), the vectors of
-- Cronos and robfig/cron that touch DST, a brute-force model of the rule,
-- and the TZif/POSIX-TZ reader checked against GNU date.
--
-- The rule (see lualib/resi/cron.lua): a wildcard job (minute or hour
-- field starting with *) follows real time: no slot in a skipped hour, both
-- slots in a repeated hour. A fixed-time job runs a skipped wall time once
-- at the first instant after the gap, and a repeated one once, at its first
-- occurrence.
local cron = require "resi.cron"
local civil = require "resi.cron.civil"
local tz = require "resi.cron.tz"
local checks = require "spec.support.checks"

local V = require("spec.support.vectors").load("cronos_dst") -- the Cronos DST rows

-- Epoch seconds of "YYYY-MM-DD HH:MM[:SS[.fffffff]] +HH:MM" (Cronos'
-- format); the second result is true when it has a non-zero fraction.
local function instant(s)
  local y, mo, d, h, mi, rest = s:match("^(%d+)-(%d+)-(%d+) (%d+):(%d+)(.*)$")
  local sec, frac = rest:match("^:(%d+)(%.?%d*)")
  local sign, oh, om = rest:match("([+-])(%d+):(%d+)%s*$")
  local off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  local t = civil.epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec) or 0) - off
  return t, frac ~= nil and #frac > 1 and tonumber(frac:sub(2)) > 0
end

-- Epoch seconds of a wall time "YYYY-MM-DD HH:MM[:SS]" that exists once in zone.
local function wall(s, zone)
  local y, mo, d, h, mi, sec = s:match("^(%d+)-(%d+)-(%d+) (%d+):(%d+):?(%d*)$")
  local c = civil.epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec) or 0)
  return c - zone:offset(c - 3 * 3600) -- the offset three hours before: right outside a change
end

-- "YYYY-MM-DD HH:MM:SS +HH:MM ABBR" of an instant in a schedule's zone.
local function show(s, t)
  if not t then return nil end
  local w, o, a = s:localtime(t)
  return ("%s %s %s"):format(w, o, a)
end

-- The local fire times of expr in zone after wall time from, n of them.
local function fires(expr, zone, from, n)
  local s = assert(cron.parse(expr, { tz = zone }))
  local out = {}
  for i, t in ipairs(s:next_n(wall(from, s.zone), n)) do out[i] = show(s, t) end
  return out
end

-- Asserts for each case {expr, zone, from, to} that the fire times between
-- the two wall times, found with next going forward and with prev going
-- backward, are the same list, and that there are some.
local function assert_both_ways(cases)
  for _, c in ipairs(cases) do
    local s = assert(cron.parse(c[1], { tz = c[2] }))
    local a, b = wall(c[3], s.zone), wall(c[4], s.zone)
    local forward, backward = {}, {}
    local t = s:next(a)
    while t and t < b do forward[#forward + 1] = show(s, t); t = s:next(t) end
    t = s:prev(b)
    while t and t > a do table.insert(backward, 1, show(s, t)); t = s:prev(t) end
    assert.truthy(#forward > 3, c[1])
    assert.same(forward, backward, c[1])
  end
end

describe("resi.cron DST, spring forward", function()
  it("Berlin: fixed-time 30 2 * * * runs once, at 03:00 CEST", function()
    assert.same({ "2024-03-30 02:30:00 +01:00 CET", "2024-03-31 03:00:00 +02:00 CEST", "2024-04-01 02:30:00 +02:00 CEST" },
      fires("30 2 * * *", "Europe/Berlin", "2024-03-30 00:00", 3))
    assert.same({ "2024-03-31 03:00:00 +02:00 CEST" }, fires("0,30 2 * * *", "Europe/Berlin", "2024-03-31 00:00", 1))
    assert.same({ "2024-03-31 03:00:00 +02:00 CEST", "2024-04-01 02:00:00 +02:00 CEST" },
      fires("0,30 2 * * *", "Europe/Berlin", "2024-03-31 00:00", 2))
    -- a job at both 02:00 and 03:00 runs once at 03:00, not twice
    assert.same({ "2024-03-31 03:00:00 +02:00 CEST", "2024-04-01 02:00:00 +02:00 CEST" },
      fires("0 2,3 * * *", "Europe/Berlin", "2024-03-31 00:00", 2))
    -- seconds do not make a job wildcard: */10 30 2 is fixed-time
    assert.same({ "2024-03-31 03:00:00 +02:00 CEST", "2024-04-01 02:30:00 +02:00 CEST" },
      fires("*/10 30 2 * * *", "Europe/Berlin", "2024-03-31 00:00", 2))
  end)

  it("Berlin: wildcard */30 * * * * has no 02:xx slots", function()
    assert.same({ "2024-03-31 01:30:00 +01:00 CET", "2024-03-31 03:00:00 +02:00 CEST", "2024-03-31 03:30:00 +02:00 CEST" },
      fires("*/30 * * * *", "Europe/Berlin", "2024-03-31 01:00", 3))
    assert.same({ "2024-04-01 02:00:00 +02:00 CEST" }, fires("*/30 2 * * *", "Europe/Berlin", "2024-03-31 00:00", 1))
    assert.same({ "2024-03-31 03:15:00 +02:00 CEST" }, fires("15 * * * *", "Europe/Berlin", "2024-03-31 01:30", 1))
  end)

  it("New York: fixed-time 30 2 * * * runs at 03:00 EDT; */30 * * * * jumps from 01:30 EST to 03:00 EDT", function()
    assert.same({ "2024-03-10 03:00:00 -04:00 EDT", "2024-03-11 02:30:00 -04:00 EDT" },
      fires("30 2 * * *", "America/New_York", "2024-03-09 12:00", 2))
    assert.same({ "2024-03-10 01:30:00 -05:00 EST", "2024-03-10 03:00:00 -04:00 EDT" },
      fires("*/30 * * * *", "America/New_York", "2024-03-10 01:15", 2))
  end)
end)

describe("resi.cron DST, fall back", function()
  it("New York: fixed-time 30 1 * * * runs once, at the first 01:30", function()
    assert.same({ "2024-11-03 01:30:00 -04:00 EDT", "2024-11-04 01:30:00 -05:00 EST" },
      fires("30 1 * * *", "America/New_York", "2024-11-02 12:00", 2))
    assert.same({ "2024-11-03 01:00:00 -04:00 EDT", "2024-11-03 01:30:00 -04:00 EDT", "2024-11-04 01:00:00 -05:00 EST" },
      fires("0,30 1 * * *", "America/New_York", "2024-11-02 12:00", 3))
    assert.same({ "2024-11-03 01:00:00 -04:00 EDT", "2024-11-03 01:30:00 -04:00 EDT", "2024-11-04 01:00:00 -05:00 EST" },
      fires("0-30/30 1 * * *", "America/New_York", "2024-11-02 12:00", 3))
  end)

  it("New York: wildcard */30 1 * * * fires in both 01:xx hours", function()
    assert.same({ "2024-11-03 01:00:00 -04:00 EDT", "2024-11-03 01:30:00 -04:00 EDT", "2024-11-03 01:00:00 -05:00 EST",
      "2024-11-03 01:30:00 -05:00 EST", "2024-11-04 01:00:00 -05:00 EST" },
      fires("*/30 1 * * *", "America/New_York", "2024-11-02 12:00", 5))
    assert.same({ "2024-11-03 01:30:00 -04:00 EDT", "2024-11-03 01:30:00 -05:00 EST", "2024-11-03 02:30:00 -05:00 EST" },
      fires("30 * * * *", "America/New_York", "2024-11-03 01:00", 3))
  end)

  it("Berlin: 30 2 * * * once at 02:30 CEST, */30 2 * * * four times", function()
    assert.same({ "2024-10-27 02:30:00 +02:00 CEST", "2024-10-28 02:30:00 +01:00 CET" },
      fires("30 2 * * *", "Europe/Berlin", "2024-10-26 12:00", 2))
    assert.same({ "2024-10-27 02:00:00 +02:00 CEST", "2024-10-27 02:30:00 +02:00 CEST", "2024-10-27 02:00:00 +01:00 CET",
      "2024-10-27 02:30:00 +01:00 CET", "2024-10-28 02:00:00 +01:00 CET" },
      fires("*/30 2 * * *", "Europe/Berlin", "2024-10-26 12:00", 5))
  end)
end)

describe("resi.cron DST, both ways", function()
  it("prev walks the same fire times backwards, spring forward and fall back", function()
    assert_both_ways {
      { "30 2 * * *", "Europe/Berlin", "2024-03-29 00:00", "2024-04-03 00:00" },
      { "*/30 * * * *", "Europe/Berlin", "2024-03-31 00:00", "2024-03-31 05:00" },
      { "0,30 2 * * *", "America/New_York", "2024-03-08 00:00", "2024-03-13 00:00" },
      { "*/20 1-3 * * *", "America/New_York", "2024-03-09 00:00", "2024-03-12 00:00" },
      { "30 1 * * *", "America/New_York", "2024-11-01 00:00", "2024-11-06 00:00" },
      { "*/30 1 * * *", "America/New_York", "2024-11-02 00:00", "2024-11-05 00:00" },
      { "*/15 2 * * *", "Europe/Berlin", "2024-10-26 00:00", "2024-10-29 00:00" },
      { "0-30 2 * * *", "Europe/Berlin", "2024-10-26 00:00", "2024-10-29 00:00" },
    }
  end)
end)

describe("resi.cron explain", function()
  it("marks moved, once and twice slots, and the slots a wildcard job loses", function()
    local s = assert(cron.parse("30 2 * * *", { tz = "Europe/Berlin" }))
    local e = s:explain(wall("2024-03-30 12:00", s.zone), 2)
    assert.equal("2024-03-31 03:00:00", e[1].wall)
    assert.equal("+02:00", e[1].offset)
    assert.equal("CEST", e[1].abbr)
    assert.equal("moved: skipped hour", e[1].note)
    assert.equal("2024-03-31 02:30:00", e[1].wanted)
    assert.equal("2024-03-31 03:00:00 +02:00 CEST  moved: skipped hour (2024-03-31 02:30:00 does not exist)", e[1].text)
    assert.is_nil(e[2].note)

    s = assert(cron.parse("30 1 * * *", { tz = "America/New_York" }))
    e = s:explain(wall("2024-11-02 12:00", s.zone), 2)
    assert.equal("once: repeated hour", e[1].note)
    assert.is_nil(e[2].note)

    s = assert(cron.parse("*/30 1 * * *", { tz = "America/New_York" }))
    e = s:explain(wall("2024-11-03 00:00", s.zone), 4)
    assert.same({ "twice: repeated hour (1st)", "twice: repeated hour (1st)", "twice: repeated hour (2nd)",
      "twice: repeated hour (2nd)" }, { e[1].note, e[2].note, e[3].note, e[4].note })

    s = assert(cron.parse("*/30 * * * *", { tz = "Europe/Berlin" }))
    e = s:explain(wall("2024-03-31 01:15", s.zone), 3)
    assert.same({ "2024-03-31 01:30:00", "2024-03-31 03:00:00", "2024-03-31 03:30:00" }, { e[1].wall, e[2].wall, e[3].wall })
    assert.equal("after skipped hour: its slots do not exist", e[2].note)
    assert.equal("2024-03-31 02:00:00", e[2].wanted)

    e = assert(cron.parse("0 6 * * *")):explain(0, 1)
    assert.same({ at = 6 * 3600, wall = "1970-01-01 06:00:00", offset = "+00:00", abbr = "UTC",
      text = "1970-01-01 06:00:00 +00:00 UTC" }, e[1])
  end)
end)

-- A random field text and its set (plain items only), biased to the small
-- hours where the clocks change.
local function random_field(lo, top, rnd, small)
  local kind = rnd(5)
  local hi = small and math.min(top, lo + 4) or top
  local a = lo + rnd(hi - lo + 1) - 1
  local b = a + rnd(hi - a + 1) - 1
  local n = rnd(math.max(1, (top - lo) // 3))
  local set = {}
  local function add(x, y, step) for v = x, y, step do set[v] = true end end
  if kind == 1 then add(lo, top, 1) return "*", set end
  if kind == 2 then add(lo, top, n) return "*/" .. n, set end
  if kind == 3 then add(a, a, 1) return tostring(a), set end
  if kind == 4 then add(a, b, 1) return a .. "-" .. b, set end
  add(a, b, n)
  add(b, b, 1)
  return ("%d-%d/%d,%d"):format(a, b, n, b), set
end

-- Does wall (civil) time c match the field sets? (minutes; Vixie's day rule)
local function wall_matches(f, c)
  local tm = os.date("!*t", c)
  if not (f.minute[tm.min] and f.hour[tm.hour] and f.month[tm.month]) then return false end
  local a, b = f.dom[tm.day] or false, f.dow[tm.wday - 1] or false
  if f.dom_star or f.dow_star then return a and b end
  return a or b
end

-- The fire times in [a, b) the slow way: every minute of real time, with
-- cronie's rule written out again from its statement, not from resi.cron's code.
local function brute_fires(f, wildcard, zone, a, b)
  local offsets, out = {}, {}
  for x = a - 86400, b + 86400, 1800 do offsets[zone:offset(x)] = true end
  for x = a, b - 1, 60 do
    local off = zone:offset(x)
    local c = x + off
    local fire = wall_matches(f, c)
    if not wildcard then
      for o in pairs(offsets) do -- the same wall time at an earlier instant: a repeat
        local y = c - o
        if y < x and zone:offset(y) == o then fire = false end
      end
      local before = zone:offset(x - 60)
      if before < off then -- x ends a gap: the skipped wall times run here, once
        for g = x + before, x + off - 60, 60 do
          if wall_matches(f, g) then fire = true end
        end
      end
    end
    if fire then out[#out + 1] = x end
  end
  return out
end

describe("resi.cron DST against a brute-force model of the rule", function()
  it("agrees on random 5-field expressions around every change of 2024 in three zones", function()
    local seed = 424242
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local changes = {
      { "Europe/Berlin", "2024-03-31 01:00 +00:00" }, { "Europe/Berlin", "2024-10-27 01:00 +00:00" },
      { "America/New_York", "2024-03-10 07:00 +00:00" }, { "America/New_York", "2024-11-03 06:00 +00:00" },
      { "Australia/Lord_Howe", "2024-04-06 15:00 +00:00" }, { "Australia/Lord_Howe", "2024-10-05 15:30 +00:00" },
    }
    for round = 1, 120 do
      local ch = changes[(round - 1) % #changes + 1]
      local zone = assert(cron.zone(ch[1]))
      local t0 = instant(ch[2])
      assert.is_true(zone:offset(t0 - 1) ~= zone:offset(t0), ch[2])
      local f, text = {}, {}
      for _, fd in ipairs { { "minute", 0, 59 }, { "hour", 0, 23, true }, { "dom", 1, 31 }, { "month", 1, 12 }, { "dow", 0, 6 } } do
        local tx, set = random_field(fd[2], fd[3], rnd, fd[4])
        if fd[1] == "dom" or fd[1] == "month" then if rnd(3) > 1 then tx, set = "*", nil end end
        if not set then set = {} for v = fd[2], fd[3] do set[v] = true end end
        f[fd[1]], text[#text + 1] = set, tx
      end
      f.dom_star, f.dow_star = text[3]:sub(1, 1) == "*", text[5]:sub(1, 1) == "*"
      local expr = table.concat(text, " ")
      local s = assert(cron.parse(expr, { tz = ch[1] }))
      local a, b = t0 - 26 * 3600, t0 + 26 * 3600
      local want = brute_fires(f, s.wildcard, zone, a, b)
      local got, t = {}, a - 1
      while true do
        t = s:next(t)
        if not t or t >= b then break end
        got[#got + 1] = t
      end
      assert.same(want, got, ("%s in %s (%s)"):format(expr, ch[1], s.kind))
      local back, u = {}, b
      while true do
        u = s:prev(u)
        if not u or u < a then break end
        table.insert(back, 1, u)
      end
      assert.same(want, back, ("prev: %s in %s (%s)"):format(expr, ch[1], s.kind))
    end
  end)
end)

describe("resi.cron DST against robfig/cron's spec_test.go TestNext", function()
  it("keeps robfig's rows that agree with cronie's rule, and says where it differs", function()
    -- robfig is naive on purpose: it skips a 02:00 job on the spring day and runs a
    -- 01:00 job twice on the autumn day. resi follows cronie (see the header).
    local rows = {
      { "2012-03-11T00:00:00-0500", "America/New_York", "0 30 2 11 Mar ?", "2013-03-11T02:30:00-0400",
        resi = "2012-03-11T03:00:00-0400" }, -- fixed-time: moved to the end of the gap
      { "2012-03-11T00:00:00-0500", "America/New_York", "0 0 * * * ?", "2012-03-11T01:00:00-0500" },
      { "2012-03-11T01:00:00-0500", "America/New_York", "0 0 * * * ?", "2012-03-11T03:00:00-0400" },
      { "2012-03-11T03:00:00-0400", "America/New_York", "0 0 * * * ?", "2012-03-11T04:00:00-0400" },
      { "2012-03-11T04:00:00-0400", "America/New_York", "0 0 * * * ?", "2012-03-11T05:00:00-0400" },
      { "2012-03-11T00:00:00-0500", "America/New_York", "0 0 1 * * ?", "2012-03-11T01:00:00-0500" },
      { "2012-03-11T01:00:00-0500", "America/New_York", "0 0 1 * * ?", "2012-03-12T01:00:00-0400" },
      { "2012-03-11T00:00:00-0500", "America/New_York", "0 0 2 * * ?", "2012-03-12T02:00:00-0400",
        resi = "2012-03-11T03:00:00-0400" }, -- fixed-time: moved, not skipped
      { "2012-11-04T00:00:00-0400", "America/New_York", "0 30 2 04 Nov ?", "2012-11-04T02:30:00-0500" },
      { "2012-11-04T01:45:00-0400", "America/New_York", "0 30 1 04 Nov ?", "2012-11-04T01:30:00-0500",
        resi = "2013-11-04T01:30:00-0500" }, -- fixed-time: 01:30 already ran at its first occurrence
      { "2012-11-04T00:00:00-0400", "America/New_York", "0 0 * * * ?", "2012-11-04T01:00:00-0400" },
      { "2012-11-04T01:00:00-0400", "America/New_York", "0 0 * * * ?", "2012-11-04T01:00:00-0500" },
      { "2012-11-04T01:00:00-0500", "America/New_York", "0 0 * * * ?", "2012-11-04T02:00:00-0500" },
      { "2012-11-04T00:00:00-0400", "America/New_York", "0 0 1 * * ?", "2012-11-04T01:00:00-0400" },
      { "2012-11-04T01:00:00-0400", "America/New_York", "0 0 1 * * ?", "2012-11-04T01:00:00-0500",
        resi = "2012-11-05T01:00:00-0500" }, -- fixed-time: once in the repeated hour
      { "2012-11-04T01:00:00-0500", "America/New_York", "0 0 1 * * ?", "2012-11-05T01:00:00-0500" },
      { "2012-11-04T00:00:00-0400", "America/New_York", "0 0 2 * * ?", "2012-11-04T02:00:00-0500" },
      { "2012-11-04T02:00:00-0500", "America/New_York", "0 0 2 * * ?", "2012-11-05T02:00:00-0500" },
      { "2012-11-04T00:00:00-0400", "America/New_York", "0 0 3 * * ?", "2012-11-04T03:00:00-0500" },
      { "2012-11-04T03:00:00-0500", "America/New_York", "0 0 3 * * ?", "2012-11-05T03:00:00-0500" },
      { "2012-11-04T00:00:00-0400", "America/New_York", "0 0 3 3 * ?", "2012-12-03T03:00:00-0500" },
      -- robfig #157: DST making midnight invalid in Sao Paulo
      { "2018-10-17T05:00:00-0400", "America/Sao_Paulo", "0 0 9 10 * ?", "2018-11-10T06:00:00-0500" },
      { "2018-02-14T05:00:00-0500", "America/Sao_Paulo", "0 0 9 22 * ?", "2018-02-22T07:00:00-0500" },
      -- TestNextWithTz: the +0530 of the "from" time is the zone; Asia/Kolkata has it all year
      { "2016-01-03T13:09:03+0530", "Asia/Kolkata", "14 14 * * *", "2016-01-03T14:14:00+0530" },
      { "2016-01-03T04:09:03+0530", "Asia/Kolkata", "14 14 * * ?", "2016-01-03T14:14:00+0530" },
      { "2016-01-03T14:09:03+0530", "Asia/Kolkata", "14 14 * * *", "2016-01-03T14:14:00+0530" },
      { "2016-01-03T14:00:00+0530", "Asia/Kolkata", "14 14 * * ?", "2016-01-03T14:14:00+0530" },
    }
    local function iso(v)
      local y, mo, d, h, mi, sec, sign, oh, om = v:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)([+-])(%d%d)(%d%d)$")
      local off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
      return civil.epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)) - off
    end
    for _, r in ipairs(rows) do
      local s = assert(cron.parse(r[3], { tz = r[2] }))
      assert.equal(show(s, iso(r.resi or r[4])), show(s, s:next(iso(r[1]))), r[3] .. " after " .. r[1])
    end
  end)
end)

describe("resi.cron DST against Cronos' CronExpressionFacts.cs", function()
  it("agrees on every DST row, except where cronie's rule says otherwise", function()
    -- why = "gap": a wildcard job (minute or hour starting with *) has no slot in
    --   a skipped hour; Cronos moves every job's skipped slots to the gap's end.
    -- why = "fold": Cronos repeats any job with a range or step in the second,
    --   minute or hour field; cronie repeats only wildcard jobs.
    -- why = "end": Cronos returns the moved slot only when the search starts
    --   before the gap; resi's fire times are one set, whatever the start.
    for _, r in ipairs(V.DST) do
      local s = assert(cron.parse(r[2], { tz = r[1] }))
      local from, frac = instant(r[3])
      local got = (r[5] and not frac) and s:next(from - 1) or s:next(from) -- r[5]: inclusive
      local want = instant(r.resi or r[4])
      assert.equal(show(s, want), show(s, got), ("%q in %s from %s"):format(r[2], r[1], r[3]))
    end
  end)
end)

describe("resi.cron.tz", function()
  -- The offsets GNU date gives for instants ts in zone name (nil if date is not GNU date).
  local function date_offsets(name, ts)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    for _, t in ipairs(ts) do f:write("@", t, "\n") end
    f:close()
    local p = io.popen(("TZ=%q date -f %q '+%%s %%z' 2>/dev/null"):format(":" .. name, path))
    local out = {}
    for line in p:lines() do
      local t, sign, hh, mm = line:match("^(%-?%d+) ([+-])(%d%d)(%d%d)$")
      if t then out[tonumber(t)] = (tonumber(hh) * 3600 + tonumber(mm) * 60) * (sign == "-" and -1 or 1) end
    end
    p:close()
    os.remove(path)
    return next(out) and out or nil
  end

  it("gives the offsets GNU date gives, 1900-2200, explicit transitions and footer rule", function()
    local ts = {}
    local t = civil.epoch(1900, 1, 1, 0, 0, 0)
    local stop = civil.epoch(2200, 1, 1, 0, 0, 0)
    local step = 86400 * 7 + 3607
    while t < stop do ts[#ts + 1] = t; t = t + step end
    for _, name in ipairs { "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
      "America/Sao_Paulo", "Asia/Amman", "Asia/Kolkata", "Pacific/Apia", "Europe/Dublin", "UTC" } do
      local want = date_offsets(name, ts)
      if not want then pending("GNU date is not available") return end
      local zone = assert(tz.load(name))
      local bad = 0
      for _, x in ipairs(ts) do
        -- GNU date prints whole minutes; LMT offsets before 1900 have seconds
        if want[x] and math.abs(zone:offset(x) - want[x]) >= 60 then
          bad = bad + 1
          assert.equal(want[x], zone:offset(x), ("%s at %s"):format(name, civil.format(x)))
        end
      end
      assert.equal(0, bad, name)
    end
  end)

  it("finds every transition instant of Berlin 2024 and 2124 (footer rule)", function()
    local z = assert(tz.load("Europe/Berlin"))
    for _, c in ipairs { { 2024, 3, 31, 10, 27 }, { 2124, 3, 26, 10, 29 } } do
      local on = civil.epoch(c[1], c[2], c[3], 1, 0, 0)
      local off = civil.epoch(c[1], c[4], c[5], 1, 0, 0)
      assert.equal(3600, z:offset(on - 1))
      assert.equal(7200, z:offset(on))
      assert.equal(7200, z:offset(off - 1))
      assert.equal(3600, z:offset(off))
      assert.same({ 7200, "CEST", true }, { z:offset(on) })
    end
  end)

  it("parses POSIX TZ strings, and refuses bad ones as values", function()
    local r = assert(tz.parse_posix("CET-1CEST,M3.5.0,M10.5.0/3"))
    assert.same({ 3600, "CET", 7200, "CEST" }, { r.std, r.std_abbr, r.dst, r.dst_abbr })
    assert.same({ kind = "M", m = 3, w = 5, d = 0, time = 7200 }, r.start)
    assert.same({ kind = "M", m = 10, w = 5, d = 0, time = 10800 }, r["end"])
    r = assert(tz.parse_posix("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"))
    assert.same({ 37800, "+1030", 39600, "+11" }, { r.std, r.std_abbr, r.dst, r.dst_abbr })
    r = assert(tz.parse_posix("<-04>4<-03>,M9.1.6/24,M4.1.6/24"))
    assert.same({ -14400, -10800, 86400 }, { r.std, r.dst, r.start.time })
    r = assert(tz.parse_posix("EST5EDT,J60/-1,100/167:59:59"))
    assert.same({ "J", 60, -3600 }, { r.start.kind, r.start.n, r.start.time })
    assert.same({ "n", 100, 167 * 3600 + 3599 }, { r["end"].kind, r["end"].n, r["end"].time })
    assert.same({ std = 0, std_abbr = "UTC" }, tz.parse_posix("UTC0"))
    checks.refuses_each(tz.parse_posix, { "", "C-1", "CET", "CET-1CEST", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0",
      "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J365", "CET-1CEST,M3.5.0,M10.5.0/200",
      "CET-25", "<AB>1", "CET-1CEST,M3.5.0,M10.5.0x", "CET-1:60" }, "bad POSIX TZ string")
  end)

  it("refuses unknown zones, bad names and bad files as values", function()
    local z, err = tz.load("Mars/Olympus_Mons")
    assert.is_nil(z)
    assert.equal('unknown time zone "Mars/Olympus_Mons" (no such zone in ' .. tz.dir .. ")", err)
    checks.refuses_each(tz.load, { "../../etc/passwd", "/etc/localtime", "Europe/../Europe/Berlin", "Europe//Berlin",
      "Europe/", "", "a b" }, "time zone")
    z, err = tz.load("Europe")
    assert.is_nil(z)
    assert.truthy(err:find('"Europe"', 1, true), err)
    assert.is_nil(tz.load(7))
    local data = assert(io.open(tz.dir .. "/Europe/Berlin", "rb")):read("a")
    for _, cut in ipairs { 0, 10, 44, 60, #data // 2, #data - 10 } do
      z, err = tz.parse_tzif(data:sub(1, cut))
      assert.is_nil(z, cut)
      assert.is_string(err)
    end
    assert.is_nil(tz.parse_tzif("TZif2" .. ("\0"):rep(100)))
    assert.is_nil(tz.parse_tzif(("x"):rep(100)))
  end)

  it("reads a version 1 file (32-bit times only)", function()
    -- one transition at 2000-01-01 from "AAA" (+1h) to "BBB" (+2h)
    local body = string.pack(">i4", 946684800) .. "\1" .. string.pack(">i4BB", 3600, 0, 0) ..
      string.pack(">i4BB", 7200, 1, 4) .. "AAA\0BBB\0"
    local data = "TZif" .. "\0" .. ("\0"):rep(15) .. string.pack(">I4I4I4I4I4I4", 0, 0, 0, 1, 2, 8) .. body
    local z = assert(tz.parse_tzif(data, "Test/V1"))
    assert.same({ 3600, "AAA", false }, { z:offset(946684799) })
    assert.same({ 7200, "BBB", true }, { z:offset(946684800) })
    assert.same({ 7200, "BBB", true }, { z:offset(4102444800) })
  end)

  it("treats UTC without a file, and Etc/UTC like it", function()
    assert.equal(0, (tz.load("UTC"):offset(1e9 // 1)))
    assert.equal(0, (assert(tz.load("Etc/UTC")):offset(0)))
    local s = assert(cron.parse("0 0 * * *", { tz = "UTC" }))
    assert.is_nil(s.zone)
    assert.equal(86400, s:next(0))
  end)
end)
