-- resi.cron: the syntax, the Vixie day rule, L/W/#, next/prev/matches, and
-- table tests from published vectors:
--   * HangfireIO/Cronos tests/Cronos.Tests/CronExpressionFacts.cs (MIT) at
--     aeb3bff2048c551018cdd16ac11951d0d4bc20d5, extracted row for row into
--     spec/vectors/cronos.tsv (DST rows: cronos_dst.tsv). Rows are
--     left out by rule, never by result: a row whose day-of-month and
--     day-of-week are both restricted (Cronos ANDs them, Vixie cron ORs),
--     one with a range that runs backwards (Cronos wraps 55-5, we reject
--     it), one with `?` outside the day fields, one with Cronos' `H` hash.
--     The counts are in its section lines. Cronos searches inclusively ("from"
--     itself may be returned), so its rows run as next(from - 1).
--   * robfig/cron spec_test.go and parser_test.go (MIT) at
--     bc59245fe10efaed9d51b56900192527ed733435, transcribed below; rows
--     where robfig differs from Vixie cron or from cronie's DST rule carry
--     resi's value and the reason.
local cron = require "resi.cron"
local civil = require "resi.cron.civil"
local checks = require "spec.support.checks"

local V = require("spec.support.vectors").load("cronos") -- the Cronos vectors, by theory

-- Epoch seconds of "YYYY-MM-DD[ HH:MM[:SS]]" or "HH:MM[:SS]" (on the day
-- given, Cronos' 2016-12-09 by default) read as a wall time in zone (UTC
-- when nil); an ambiguous wall time gives the later instant (.NET's
-- standard-offset choice in Cronos' helper).
local function at(s, zone, day)
  s = s:match("^%s*(.-)%s*$")
  local date, rest = s:match("^(%d+%-%d+%-%d+)%s*(.*)$")
  if not date then date, rest = day or "2016-12-09", s end
  local y, mo, d = date:match("^(%d+)-(%d+)-(%d+)$")
  local h, mi, sec = rest:match("^(%d*):?(%d*):?(%d*)$")
  local c = civil.epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h) or 0, tonumber(mi) or 0, tonumber(sec) or 0)
  if not zone then return c end
  local best
  for _, probe in ipairs { c - 86400, c + 86400 } do
    local x = c - zone:offset(probe)
    if zone:civil(x) == c and (not best or x > best) then best = x end
  end
  return assert(best, "no such wall time " .. s)
end

-- Epoch seconds of robfig's "2012-03-11T00:00:00-0500".
local function iso(s)
  local y, mo, d, h, mi, sec, sign, oh, om = s:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)([+-])(%d%d)(%d%d)$")
  local off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  return civil.epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)) - off
end

-- A UTC epoch as "YYYY-MM-DD HH:MM:SS" (nil stays nil), for readable failures.
local function utc(t) return t and civil.format(t) end

-- Parses or fails the test with the message.
local function sched(expr, tz)
  local s, err = cron.parse(expr, tz and { tz = tz } or nil)
  assert(s, ("%q: %s"):format(expr, tostring(err)))
  return s
end

-- The UTC fire times after from (a "YYYY-MM-DD HH:MM" string), formatted.
local function fires(expr, from, n)
  local out = {}
  for i, t in ipairs(sched(expr):next_n(at(from), n)) do out[i] = civil.format(t):sub(1, 16) end
  return out
end

-- The set of values {lo..hi by step} as a lookup table.
local function range(lo, hi, step)
  local out = {}
  for v = lo, hi, step or 1 do out[v] = true end
  return out
end

-- A random field for the brute-force comparison: its text and its set.
local function random_field(lo, hi, top, rnd)
  local kind = rnd(6)
  local a = rnd(top - lo + 1) + lo - 1
  local b = a + rnd(top - a + 1) - 1
  local n = rnd(math.max(1, (top - lo) // 2))
  if kind == 1 then return "*", range(lo, top) end
  if kind == 2 then return "*/" .. n, range(lo, top, n) end
  if kind == 3 then return tostring(a), range(a, a) end
  if kind == 4 then return a .. "-" .. b, range(a, b) end
  if kind == 5 then return a .. "-" .. b .. "/" .. n, range(a, b, n) end
  local t1, s1 = random_field(lo, hi, top, rnd)
  s1[b] = true
  return t1 .. "," .. b, s1
end

-- The members of a set from lo to hi, in order (dir 1) or backwards (dir -1).
local function members(set, lo, hi, dir)
  local out = {}
  if dir < 0 then lo, hi = hi, lo end
  for v = lo, hi, dir do if set[v] then out[#out + 1] = v end end
  return out
end

-- Does day number `day` pass the month and day fields (Vixie's rule again)?
local function brute_day(f, day)
  local tm = os.date("!*t", day * 86400)
  local dom_ok, dow_ok = f.dom[tm.day] or false, f.dow[tm.wday - 1] or false
  local day_ok
  if f.dom_star or f.dow_star then day_ok = dom_ok and dow_ok else day_ok = dom_ok or dow_ok end
  return f.month[tm.month] and day_ok
end

-- The first fire time after t (dir 1), or the last before t (dir -1),
-- found the slow way: day by day through the calendar (os.date), then
-- every hour, minute and second of the sets, with Vixie's day rule written
-- out again. nil if none within `days` days.
local function brute_search(f, t, days, dir)
  local hours, mins, secs = members(f.hour, 0, 23, dir), members(f.minute, 0, 59, dir), members(f.second, 0, 59, dir)
  local d0 = t // 86400
  for day = d0, d0 + dir * days, dir do
    if brute_day(f, day) then
      for _, h in ipairs(hours) do
        for _, mi in ipairs(mins) do
          local base = day * 86400 + h * 3600 + mi * 60
          local reach = base + (dir > 0 and 59 or 0) -- its last second going forward, its first going back
          if (reach - t) * dir > 0 then
            for _, s in ipairs(secs) do
              if (base + s - t) * dir > 0 then return base + s end
            end
          end
        end
      end
    end
  end
  return nil
end

describe("resi.cron syntax", function()
  it("reads 5 fields, or 6 with seconds first", function()
    assert.same({ "2024-01-01 00:05", "2024-01-01 01:05" }, fires("5 * * * *", "2024-01-01 00:00", 2))
    local s = sched("30 5 * * * *")
    assert.equal(at("2024-01-01 00:05:30"), s:next(at("2024-01-01 00:00")))
    assert.equal(at("2024-01-01 01:05:30"), s:next(at("2024-01-01 00:05:30")))
  end)

  it("reads names in any case, and 0 or 7 for Sunday", function()
    for _, dow in ipairs { "SUN", "sun", "Sun", "0", "7" } do
      assert.equal(at("2024-01-07 00:00"), sched("0 0 * * " .. dow):next(at("2024-01-01 00:00")), dow)
    end
    assert.equal(at("2024-03-01 00:00"), sched("0 0 1 mar *"):next(at("2024-01-01 00:00")))
    assert.same({ "2024-01-05 00:00", "2024-01-06 00:00", "2024-01-07 00:00", "2024-01-12 00:00" },
      fires("0 0 * * FRI-SUN", "2024-01-01 00:00", 4))
    assert.same(fires("0 0 * * 5-0", "2024-01-01 00:00", 4), fires("0 0 * * 5-7", "2024-01-01 00:00", 4))
  end)

  it("expands lists, ranges and steps, a/n running to the field's end", function()
    assert.same({ "2024-01-01 00:10", "2024-01-01 00:25", "2024-01-01 00:40", "2024-01-01 00:55", "2024-01-01 01:10" },
      fires("10/15 * * * *", "2024-01-01 00:00", 5))
    assert.same({ "2024-01-01 00:20", "2024-01-01 00:27", "2024-01-01 00:34", "2024-01-01 01:20" },
      fires("20-34/7 * * * *", "2024-01-01 00:00", 4))
    assert.same({ "2024-01-01 00:01", "2024-01-01 00:07", "2024-01-01 00:08", "2024-01-01 00:09", "2024-01-01 00:30" },
      fires("1,7-9,*/30 * * * *", "2024-01-01 00:00:30", 5))
    -- day-of-week a/n stops at Saturday: MON/2 is Mon, Wed, Fri (robfig's 0-6 too)
    assert.same({ "2024-01-01 00:00", "2024-01-03 00:00", "2024-01-05 00:00", "2024-01-08 00:00" },
      fires("0 0 * * MON/2", "2023-12-31 12:00", 4))
  end)

  it("takes ? as * in the day fields", function()
    assert.same(fires("0 12 * * *", "2024-01-01 00:00", 3), fires("0 12 ? * *", "2024-01-01 00:00", 3))
    assert.same(fires("0 12 * * *", "2024-01-01 00:00", 3), fires("0 12 * * ?", "2024-01-01 00:00", 3))
    assert.same(fires("0 12 * * MON", "2024-01-01 00:00", 3), fires("0 12 ? * MON", "2024-01-01 00:00", 3))
  end)

  it("knows the macros, in any case, with blanks around", function()
    local from = at("2024-05-15 10:30")
    local want = { ["@yearly"] = "2025-01-01 00:00", ["@annually"] = "2025-01-01 00:00",
      ["@monthly"] = "2024-06-01 00:00", ["@weekly"] = "2024-05-19 00:00", ["@daily"] = "2024-05-16 00:00",
      ["@midnight"] = "2024-05-16 00:00", ["@hourly"] = "2024-05-15 11:00" }
    for m, w in pairs(want) do
      assert.equal(at(w), sched(m):next(from), m)
      assert.equal(at(w), sched("  " .. m:upper() .. "\t"):next(from), m)
    end
    assert.equal("wildcard", sched("@hourly").kind)
    assert.equal("fixed", sched("@daily").kind)
  end)

  it("accepts tabs and blanks between and around fields (Cronos HandleWhiteSpaces)", function()
    local from = at("2016-03-18 12:00")
    for _, e in ipairs { "*\t*\t* * * *", " \t*\t*\t* * * *    ", "  @every_second " } do
      assert.equal(from, sched(e):next(from - 1), e)
    end
  end)

  it("says which field is wrong and which token", function()
    local cases = {
      { "61 * * * *", "minute", '"61"' }, { "* 24 * * *", "hour", '"24"' },
      { "* * 0 * *", "day-of-month", '"0"' }, { "* * 32 * *", "day-of-month", '"32"' },
      { "* * * 13 *", "month", '"13"' }, { "* * * FOO *", "month", '"FOO"' },
      { "* * * * 8", "day-of-week", '"8"' }, { "* * * * XYZ", "day-of-week", '"XYZ"' },
      { "60 * * * * *", "second", '"60"' }, { "*/0 * * * *", "minute", '"*/0"' },
      { "1,,2 * * * *", "minute", '"1,,2"' }, { "5-3 * * * *", "minute", '"5-3"' },
      { "* ? * * *", "hour", '"?"' }, { "* * 1-2W * *", "day-of-month", '"1-2W"' },
      { "* * * * 1#6", "day-of-week", '"1#6"' }, { "* * L-31 * *", "day-of-month", '"L-31"' },
      { "* * * * L", "day-of-week", '"L"' }, { "* * * * 1-5,x", "day-of-week", '"x"' },
    }
    for _, c in ipairs(cases) do
      local s, err = cron.parse(c[1])
      assert.is_nil(s, c[1])
      assert.truthy(err:find(c[2] .. ":", 1, true), c[1] .. " -> " .. err)
      assert.truthy(err:find(c[3], 1, true), c[1] .. " -> " .. err)
    end
    assert.equal('minute: bad token "61" (out of range 0-59)', select(2, cron.parse("61 * * * *")))
    assert.truthy(select(2, cron.parse("* * *")):find("expected 5 fields", 1, true))
    assert.truthy(select(2, cron.parse("@fortnightly")):find('unknown macro "@fortnightly"', 1, true))
    assert.truthy(select(2, cron.parse("")):find("empty", 1, true))
    assert.truthy(select(2, cron.parse(42)):find("string", 1, true))
    assert.truthy(select(2, cron.parse("* * * * *", { tz = "Mars/Olympus_Mons" })):find('"Mars/Olympus_Mons"', 1, true))
  end)

  it("rejects backward ranges rather than wrapping them (cronie, OCPS)", function()
    checks.refuses_each(cron.parse, { "55-5 * * * *", "* 23-3/2 * * *", "* * 20-5 * *", "* * * 12-2 *", "* * * * sat-tue" },
      "backwards")
  end)

  it("is wildcard when the minute or hour field starts with *, and fixed otherwise", function()
    for _, e in ipairs { "* * * * *", "*/15 * * * *", "0 * * * *", "0 */2 * * *", "*,5 3 * * *", "0 * * * * *" } do
      assert.equal("wildcard", sched(e).kind, e)
    end
    for _, e in ipairs { "0 3 * * *", "0-30 3 * * *", "0,30 3 * * *", "0 0-23 * * *", "0/5 3 * * *", "* 0 3 * * *" } do
      assert.equal("fixed", sched(e).kind, e)
    end
  end)
end)

describe("resi.cron day-of-month and day-of-week (Vixie cron)", function()
  it("fires on either day when both fields are restricted", function()
    assert.same({ "2024-01-01 00:00", "2024-01-08 00:00", "2024-01-15 00:00", "2024-01-22 00:00",
      "2024-01-29 00:00", "2024-02-01 00:00", "2024-02-05 00:00" }, fires("0 0 1,15 * MON", "2023-12-31 00:00", 7))
    -- the classic: 1-7 with MON is "the first week, and every Monday", not "the first Monday"
    assert.equal(14, #sched("0 0 1-7 * MON"):next_n(at("2024-01-01 00:00") - 1, 14))
    assert.same({ "2024-01-01 00:00", "2024-01-02 00:00" }, fires("0 0 1-7 * MON", "2023-12-31 00:00", 2))
  end)

  it("needs both when either field starts with * or is ?", function()
    assert.same({ "2024-01-01 00:00", "2024-01-08 00:00" }, fires("0 0 * * MON", "2023-12-31 00:00", 2))
    assert.same({ "2024-01-01 00:00", "2024-01-15 00:00", "2024-01-29 00:00", "2024-02-05 00:00" },
      fires("0 0 */2 * MON", "2023-12-31 00:00", 4)) -- odd days that are Mondays
    assert.same({ "2024-01-15 00:00", "2024-02-15 00:00" }, fires("0 0 15 * *", "2024-01-01 00:00", 2))
    assert.same({ "2024-01-15 00:00", "2024-02-15 00:00" }, fires("0 0 15 * ?", "2024-01-01 00:00", 2))
    assert.same({ "2024-01-01 00:00", "2024-01-08 00:00" }, fires("0 0 ? * MON", "2023-12-31 00:00", 2))
    assert.same({ "2024-01-06 00:00", "2024-01-07 00:00" }, fires("0 0 * * */6", "2024-01-01 00:00", 2))
  end)
end)

describe("resi.cron calendar", function()
  it("finds February 29th only in leap years (not 1900 or 2100, but 2000)", function()
    local s = sched("0 0 29 2 *")
    assert.same({ "2024-02-29 00:00:00", "2028-02-29 00:00:00", "2032-02-29 00:00:00" },
      { utc(s:next(at("2021-03-01"))), utc(s:next(at("2024-03-01"))), utc(s:next(at("2028-03-01"))) })
    assert.equal("2104-02-29 00:00:00", utc(s:next(at("2096-03-01"))))
    assert.equal("2000-02-29 00:00:00", utc(s:next(at("1996-03-01"))))
    assert.equal("1904-02-29 00:00:00", utc(s:next(at("1896-03-01"))))
    assert.equal("2096-02-29 00:00:00", utc(s:prev(at("2104-02-28"))))
    assert.is_true(s:matches(at("2024-02-29")))
    assert.equal("2024-03-01 00:00:00", utc(sched("0 0 1 3 *"):next(at("2024-02-28"))))
    assert.equal("2023-02-28 00:00:00", utc(sched("0 0 L 2 *"):next(at("2023-01-01"))))
    assert.equal("2024-02-29 00:00:00", utc(sched("0 0 L 2 *"):next(at("2024-01-01"))))
  end)

  it("returns nil for dates that never come, quickly", function()
    for _, e in ipairs { "0 0 30 2 *", "0 0 31 4 *", "0 0 31 6,9,11 *", "0 0 30,31 2 *", "0 0 L-29 2 *", "0 0 31W 4 *" } do
      local s = sched(e)
      local t0 = os.clock()
      assert.is_nil(s:next(0), e)
      assert.is_nil(s:prev(2000000000), e)
      assert.is_false(s:matches(0), e)
      assert.truthy(os.clock() - t0 < 0.5, e)
    end
  end)

  it("crosses month, year and century ends", function()
    assert.equal("2013-01-01 00:00:00", utc(sched("0 * * * * *"):next(at("2012-12-31 23:59:45"))))
    assert.equal("2100-03-01 00:00:00", utc(sched("0 0 1 3 *"):next(at("2100-02-28 12:00"))))
    assert.equal("2099-12-31 23:59:00", utc(sched("59 23 31 12 *"):prev(at("2100-01-01"))))
    assert.equal("9999-12-31 23:59:59", utc(sched("* * * * * *"):next(at("9999-12-31 23:59:58"))))
    assert.is_nil(sched("* * * * * *"):next(at("9999-12-31 23:59:59")))
    assert.equal("0001-01-01 00:00:00", utc(sched("* * * * * *"):prev(at("0001-01-01 00:00:01"))))
  end)
end)

describe("resi.cron L, W and #", function()
  it("L is the last day, L-n n days before it, LW and L-nW the nearest weekday", function()
    assert.same({ "2024-01-31 00:00", "2024-02-29 00:00", "2024-03-31 00:00" }, fires("0 0 L * *", "2024-01-01 00:00", 3))
    assert.same({ "2024-01-28 00:00", "2024-02-26 00:00" }, fires("0 0 L-3 * *", "2024-01-01 00:00", 2))
    -- 2024-03-31 is a Sunday, 2024-08-31 a Saturday
    assert.same({ "2024-03-29 00:00", "2024-04-30 00:00" }, fires("0 0 LW * *", "2024-03-01 00:00", 2))
    assert.same({ "2024-08-30 00:00" }, fires("0 0 LW 8 *", "2024-08-01 00:00", 1))
    assert.same({ "2024-03-29 00:00" }, fires("0 0 L-2W 3 *", "2024-03-01 00:00", 1)) -- 29th is a Friday
  end)

  it("nW never leaves the month", function()
    -- 2024-06-01 is a Saturday: 1W is Monday the 3rd, not Friday May 31st
    assert.same({ "2024-06-03 00:00" }, fires("0 0 1W 6 *", "2024-05-01 00:00", 1))
    -- 2024-03-31 is a Sunday: 31W is Friday the 29th, not Monday April 1st
    assert.same({ "2024-03-29 00:00" }, fires("0 0 31W 3 *", "2024-03-01 00:00", 1))
    -- 2024-06-15 is a Saturday, 2024-09-15 a Sunday
    assert.same({ "2024-06-14 00:00" }, fires("0 0 15W 6 *", "2024-06-01 00:00", 1))
    assert.same({ "2024-09-16 00:00" }, fires("0 0 15W 9 *", "2024-09-01 00:00", 1))
    -- no 31st in April: 31W never fires in April
    assert.same({ "2024-05-31 00:00" }, fires("0 0 31W 4,5 *", "2024-04-01 00:00", 1))
  end)

  it("5L is the last Friday and 1#2 the second Monday", function()
    assert.same({ "2024-01-26 00:00", "2024-02-23 00:00", "2024-03-29 00:00" }, fires("0 0 * * 5L", "2024-01-01 00:00", 3))
    assert.same(fires("0 0 * * 5L", "2024-01-01 00:00", 3), fires("0 0 ? * FRIL", "2024-01-01 00:00", 3))
    assert.same({ "2024-01-08 00:00", "2024-02-12 00:00" }, fires("0 0 * * 1#2", "2024-01-01 00:00", 2))
    assert.same({ "2024-01-08 00:00", "2024-02-12 00:00" }, fires("0 0 ? * mon#2", "2024-01-01 00:00", 2))
    assert.same({ "2024-01-29 00:00", "2024-04-29 00:00" }, fires("0 0 * * MON#5", "2024-01-01 00:00", 2))
    -- the fifth Monday of February: only in a leap year whose February starts on a Monday
    assert.equal("2016-02-29 00:00:00", utc(sched("0 0 ? 2 1#5"):next(at("2000-01-01"))))
    assert.equal("2044-02-29 00:00:00", utc(sched("0 0 ? 2 1#5"):next(at("2016-03-01"))))
    assert.same({ "2024-01-07 00:00", "2024-01-26 00:00" }, fires("0 0 * * 0#1,5L", "2024-01-01 00:00", 2))
  end)

  it("counts as a restricted field for the Vixie rule", function()
    -- the last day of the month, or any Friday
    assert.same({ "2024-01-05 00:00", "2024-01-12 00:00", "2024-01-19 00:00", "2024-01-26 00:00", "2024-01-31 00:00" },
      fires("0 0 L * 5", "2024-01-01 00:00", 5))
    assert.same({ "2024-01-15 00:00", "2024-01-31 00:00" }, fires("0 0 15,L * *", "2024-01-01 00:00", 2))
  end)
end)

describe("resi.cron next, prev, matches, next_n", function()
  it("next is strictly after t, prev strictly before, matches exactly at fire times", function()
    local s = sched("*/5 * * * *")
    local t = at("2024-01-01 00:05")
    assert.equal(at("2024-01-01 00:10"), s:next(t))
    assert.equal(at("2024-01-01 00:00"), s:prev(t))
    assert.equal(at("2024-01-01 00:05"), s:next(t - 1))
    assert.equal(at("2024-01-01 00:05"), s:prev(t + 1))
    assert.is_true(s:matches(t))
    assert.is_false(s:matches(t + 1))
    assert.is_false(s:matches(t + 0.5))
    assert.equal(at("2024-01-01 00:10"), s:next(t + 0.25))
    assert.equal(at("2024-01-01 00:05"), s:prev(t + 0.25))
    assert.equal("integer", math.type(s:next(1.5)))
  end)

  it("prev resets the lower fields to their last value when it steps back", function()
    local s = sched("0,30 5,30 8,10 10,20 * *")
    assert.equal("2024-01-10 10:05:30", utc(s:prev(at("2024-01-10 10:17:05"))))
    assert.equal("2024-01-10 08:30:30", utc(s:prev(at("2024-01-10 09:59:00"))))
    assert.equal("2023-12-20 10:30:30", utc(s:prev(at("2024-01-05 12:00:00"))))
    assert.equal("2024-01-10 10:30:00", utc(s:next(at("2024-01-10 10:17:05"))))
    assert.equal("2024-01-20 08:05:00", utc(s:next(at("2024-01-10 10:30:30"))))
  end)

  it("next_n gives n times in order and stops at the end", function()
    local s = sched("0 0 * * *")
    local list = s:next_n(at("2024-01-01 00:00"), 3)
    assert.same({ at("2024-01-02"), at("2024-01-03"), at("2024-01-04") }, list)
    assert.same({}, s:next_n(0, 0))
    assert.same({}, sched("0 0 31 2 *"):next_n(0, 5))
    assert.equal(1, #sched("59 59 23 31 12 *"):next_n(at("9999-01-01"), 5))
  end)

  it("raises on a time that is not a number (a programming error)", function()
    local s = sched("* * * * *")
    assert.has_error(function() s:next("soon") end)
    assert.has_error(function() s:prev(nil) end)
    assert.has_error(function() s:matches({}) end)
  end)

  it("agrees with a brute-force search on random expressions", function()
    local seed = 20240601
    local function rnd(n) -- a small deterministic generator, so failures replay
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    for _ = 1, 400 do
      local f, text = {}, {}
      for _, fd in ipairs { { "second", 0, 59, 59 }, { "minute", 0, 59, 59 }, { "hour", 0, 23, 23 },
        { "dom", 1, 31, 31 }, { "month", 1, 12, 12 }, { "dow", 0, 6, 6 } } do
        local tx, set = random_field(fd[2], fd[3], fd[4], rnd)
        if fd[1] == "second" and rnd(3) == 1 then tx, set = "0", range(0, 0) end
        f[fd[1]], text[#text + 1] = set, tx
      end
      f.dom_star, f.dow_star = text[4]:sub(1, 1) == "*", text[6]:sub(1, 1) == "*"
      local expr = table.concat(text, " ")
      local s = sched(expr)
      local t = at("2024-01-01") + rnd(3 * 365 * 86400)
      local want = brute_search(f, t, 3 * 366, 1)
      local got = s:next(t)
      if want then
        assert.equal(utc(want), utc(got), expr .. " after " .. utc(t))
        assert.is_true(s:prev(want) == nil or s:prev(want) <= t, expr)
        assert.is_true(s:matches(want), expr)
        assert.equal(want, s:next(s:prev(want) or (want - 1)), expr)
      else
        assert.is_true(got == nil or got > t + 3 * 366 * 86400, expr)
      end
      local back = brute_search(f, t, 3 * 366, -1)
      if back then
        assert.equal(utc(back), utc(s:prev(t)), expr .. " before " .. utc(t))
      else
        assert.is_true(s:prev(t) == nil or s:prev(t) < t - 3 * 366 * 86400, expr)
      end
    end
  end)
end)

describe("resi.cron against robfig/cron's spec_test.go", function()
  it("TestActivation (UTC here; robfig uses the local zone)", function()
    local rows = {
      { "2012-07-09 15:00", "0/15 * * * *", true }, { "2012-07-09 15:45", "0/15 * * * *", true },
      { "2012-07-09 15:40", "0/15 * * * *", false },
      { "2012-07-09 15:05", "5/15 * * * *", true }, { "2012-07-09 15:20", "5/15 * * * *", true },
      { "2012-07-09 15:50", "5/15 * * * *", true },
      { "2012-07-15 15:00", "0/15 * * Jul *", true }, { "2012-07-15 15:00", "0/15 * * Jun *", false },
      { "2012-07-15 08:30", "30 08 ? Jul Sun", true }, { "2012-07-15 08:30", "30 08 15 Jul ?", true },
      { "2012-07-16 08:30", "30 08 ? Jul Sun", false }, { "2012-07-16 08:30", "30 08 15 Jul ?", false },
      { "2012-07-09 15:00", "@hourly", true }, { "2012-07-09 15:04", "@hourly", false },
      { "2012-07-09 15:00", "@daily", false }, { "2012-07-09 00:00", "@daily", true },
      { "2012-07-09 00:00", "@weekly", false }, { "2012-07-08 00:00", "@weekly", true },
      { "2012-07-08 01:00", "@weekly", false }, { "2012-07-08 00:00", "@monthly", false },
      { "2012-07-01 00:00", "@monthly", true },
      { "2012-07-15 00:00", "* * 1,15 * Sun", true }, { "2012-06-15 00:00", "* * 1,15 * Sun", true },
      { "2012-08-01 00:00", "* * 1,15 * Sun", true },
      -- robfig: true ("verifies #70"); it drops the star flag of */10, but
      -- Vixie cron ANDs a field starting with *: the 15th is not in 1,11,21,31
      { "2012-07-15 00:00", "* * */10 * Sun", false },
      { "2012-07-15 00:00", "* * * * Mon", false }, { "2012-07-09 00:00", "* * 1,15 * *", false },
      { "2012-07-15 00:00", "* * 1,15 * *", true }, { "2012-07-15 00:00", "* * */2 * Sun", true },
    }
    for _, r in ipairs(rows) do
      assert.equal(r[3], sched(r[2]):matches(at(r[1])), r[2] .. " at " .. r[1])
    end
  end)

  it("TestNext", function()
    local rows = {
      { "2012-07-09T14:45:00+0000", "0 0/15 * * * *", "2012-07-09T15:00:00+0000" },
      { "2012-07-09T14:59:00+0000", "0 0/15 * * * *", "2012-07-09T15:00:00+0000" },
      { "2012-07-09T14:59:59+0000", "0 0/15 * * * *", "2012-07-09T15:00:00+0000" },
      { "2012-07-09T15:45:00+0000", "0 20-35/15 * * * *", "2012-07-09T16:20:00+0000" },
      { "2012-07-09T23:46:00+0000", "0 */15 * * * *", "2012-07-10T00:00:00+0000" },
      { "2012-07-09T23:45:00+0000", "0 20-35/15 * * * *", "2012-07-10T00:20:00+0000" },
      { "2012-07-09T23:35:51+0000", "15/35 20-35/15 * * * *", "2012-07-10T00:20:15+0000" },
      { "2012-07-09T23:35:51+0000", "15/35 20-35/15 1/2 * * *", "2012-07-10T01:20:15+0000" },
      { "2012-07-09T23:35:51+0000", "15/35 20-35/15 10-12 * * *", "2012-07-10T10:20:15+0000" },
      { "2012-07-09T23:35:51+0000", "15/35 20-35/15 1/2 */2 * *", "2012-07-11T01:20:15+0000" },
      { "2012-07-09T23:35:51+0000", "15/35 20-35/15 * 9-20 * *", "2012-07-10T00:20:15+0000" },
      { "2012-07-09T23:35:51+0000", "15/35 20-35/15 * 9-20 Jul *", "2012-07-10T00:20:15+0000" },
      { "2012-07-09T23:35:00+0000", "0 0 0 9 Apr-Oct ?", "2012-08-09T00:00:00+0000" },
      -- robfig: Aug 1st (it ORs */5 with Mon); Vixie ANDs: the first of 1,6,...,31 that is a Monday
      { "2012-07-09T23:35:00+0000", "0 0 0 */5 Apr,Aug,Oct Mon", "2012-08-06T00:00:00+0000" },
      { "2012-07-09T23:35:00+0000", "0 0 0 */5 Oct Mon", "2012-10-01T00:00:00+0000" },
      { "2012-07-09T23:35:00+0000", "0 0 0 * Feb Mon", "2013-02-04T00:00:00+0000" },
      { "2012-07-09T23:35:00+0000", "0 0 0 * Feb Mon/2", "2013-02-01T00:00:00+0000" },
      { "2012-12-31T23:59:45+0000", "0 * * * * *", "2013-01-01T00:00:00+0000" },
      { "2012-07-09T23:35:00+0000", "0 0 0 29 Feb ?", "2016-02-29T00:00:00+0000" },
      { "2012-07-09T23:35:00+0000", "0 0 0 30 Feb ?", nil },
      { "2012-07-09T23:35:00+0000", "0 0 0 31 Apr ?", nil },
    }
    for _, r in ipairs(rows) do
      assert.equal(r[3] and utc(iso(r[3])), utc(sched(r[2]):next(iso(r[1]))), r[2] .. " after " .. r[1])
    end
  end)

  it("TestErrors, TestSlash0NoHang and parser_test.go's TestRange errors", function()
    for _, e in ipairs { "xyz", "60 0 * * *", "0 60 * * *", "0 0 * * XYZ", "15/0 * * * *",
      "5--5 * * * *", "jan-x * * * *", "2-x * * * *", "*/-12 * * * *", "*//2 * * * *", "5-3 * * * *",
      "* 5 j * * *", "@unrecognized", "* * * *", "" } do
      assert.is_nil(cron.parse(e), e)
    end
  end)

  it("parser_test.go's TestRange and TestField sets, as day-of-week (0-7)", function()
    local mon = at("2024-01-01") -- a Monday: weekday w is mon + (w - 1) days, Sunday 0/7 is mon + 6
    local function days(expr)
      local s, out = sched("0 0 * * " .. expr), {}
      for w = 1, 7 do if s:matches(mon + (w - 1) * 86400) then out[#out + 1] = w % 7 end end
      table.sort(out)
      return table.concat(out, ",")
    end
    assert.equal("5", days("5"))
    assert.equal("0", days("0"))
    assert.equal("0", days("7"))
    assert.equal("5,6", days("5-6"))
    assert.equal("0,5,6", days("5-7"))
    assert.equal("5", days("5-6/2"))
    assert.equal("0,5", days("5-7/2"))
    assert.equal("0,5,6", days("5-7/1"))
    assert.equal("5,6", days("5,6"))
    assert.equal("0,5,6", days("5,6,7"))
    assert.equal("0,1,3,5", days("1,5-7/2,3"))
  end)
end)

describe("resi.cron against Cronos' CronExpressionFacts.cs", function()
  local ny = cron.zone("America/New_York")

  -- Runs rows {expr, from, expected} (wall times in New York), inclusive or not.
  local function run(rows, inclusive)
    for _, r in ipairs(rows) do
      local s = sched(r[1], "America/New_York")
      local from = at(r[2], ny)
      local got = s:next(inclusive and from - 1 or from)
      assert.equal(utc(at(r[3], ny)), utc(got), ("%q from %s"):format(r[1], r[2]))
    end
  end

  it("GetNextOccurrence_ReturnsCorrectDate (6 fields)", function() run(V.NEXT6, true) end)
  it("..._WhenExpressionContains5FieldsAndInclusiveIsTrue", function() run(V.NEXT5, true) end)
  it("..._WhenExpressionIsMacros", function() run(V.MACROS, true) end)
  it("..._WhenFromIsDateTimeOffsetAndInclusiveIsFalse", function() run(V.EXCL5, false) end)
  it("..._When6fieldsExpressionIsUsedAndInclusiveIsFalse", function() run(V.EXCL6, false) end)

  it("GetNextOccurrence_ReturnsNull_WhenCronExpressionIsUnreachable", function()
    for _, r in ipairs(V.NEVER) do
      assert.is_nil(sched(r[1], "America/New_York"):next(at(r[2], ny)), r[1])
    end
  end)

  it("Parse_ThrowsCronFormatException_WhenCronExpressionIsInvalid (each message names the field)", function()
    -- left out: "1,2W" (4 rows); resi takes W items in a list, each exact
    for _, r in ipairs(V.INVALID) do
      local s, err = cron.parse(r[1])
      assert.is_nil(s, r[1])
      if r[2] then assert.truthy(err:find(r[2] .. ":", 1, true), ("%q -> %s"):format(r[1], err)) end
    end
  end)

  it("Parse_DoesNotThrowAnException_WhenExpressionIsMacro", function()
    for _, r in ipairs(V.MACROS_OK) do sched(r[1]) end
  end)
end)
