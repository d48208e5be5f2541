--- resi.cron.tz: IANA time zones read straight from the system's TZif files
--- (Debian's tzdata, /usr/share/zoneinfo; $TZDIR overrides).
---
--- Why our own reader: Debian ships no Lua binding that converts between
--- zones (lua-tz and luatz are not packaged; os.date only knows the
--- process's own zone through TZ, which is global state). The format is
--- small and stable (RFC 8536): we read the 64-bit (version 2+) section, or
--- the 32-bit one of a version 1 file, and, for times after the last
--- transition, the POSIX TZ string in the footer ("CET-1CEST,M3.5.0,M10.5.0/3"),
--- from which further transitions are generated year by year on demand.
---
--- A zone is a list of transitions: at[i] is the UTC instant from which
--- off[i] (seconds east of UTC), abbr[i] and isdst[i] hold; index 0 holds
--- before the first transition. zone:interval(t) finds i with
--- at[i] <= t < at[i+1], remembering the last answer (schedules ask about
--- nearby instants over and over).
local civil = require "resi.cron.civil"

local M = {}

--- Where zone files are read from.
M.dir = os.getenv("TZDIR") or "/usr/share/zoneinfo"

local MAX_FILE = 256 * 1024 -- the largest real TZif file is under 4 KiB
local LAST_YEAR = 10000     -- transitions are generated up to here
local MAX_COUNT = 100000    -- sanity bound on counts in a file

local Zone = {}
Zone.__index = Zone

local cache = {}

-- A new zone with the time type that holds before any transition.
local function new_zone(name, off, isdst, abbr)
  return setmetatable({ name = name, at = {}, off = { [0] = off }, isdst = { [0] = isdst },
    abbr = { [0] = abbr }, n = 0, last = 0 }, Zone)
end

-- Appends a transition at instant t. A transition before the last one is
-- ignored, one at the same instant replaces it, and one that changes
-- nothing is dropped, so gaps and folds are never spurious.
local function push(z, t, off, isdst, abbr)
  local n = z.n
  if n > 0 then
    if t < z.at[n] then return end
    if t == z.at[n] then z.at[n], n = nil, n - 1 end
  end
  if z.off[n] ~= off or z.isdst[n] ~= isdst or z.abbr[n] ~= abbr then
    n = n + 1
    z.at[n], z.off[n], z.isdst[n], z.abbr[n] = t, off, isdst, abbr
  end
  z.n = n
end

------------------------------------------------------------------------
-- POSIX TZ strings (the TZif footer)

-- Reads a zone abbreviation at pos: 3+ letters, or <...> quoted.
local function read_abbr(s, pos)
  if s:sub(pos, pos) == "<" then
    local name, after = s:match("^<([%w+-]+)>()", pos)
    if not name or #name < 3 then return nil end
    return name, after
  end
  local name = s:match("^%a+", pos)
  if not name or #name < 3 then return nil end
  return name, pos + #name
end

-- Reads [+-]hh[:mm[:ss]] at pos as seconds (hours up to max_h).
local function read_hms(s, pos, max_h)
  local sign, h, after = s:match("^([+-]?)(%d+)()", pos)
  if not h or #h > 3 or tonumber(h) > max_h then return nil end
  local secs = tonumber(h) * 3600
  pos = after
  for mult = 60, 1, -59 do
    local part = s:match("^:(%d%d)", pos)
    if not part then break end
    if tonumber(part) > 59 then return nil end
    secs, pos = secs + tonumber(part) * mult, pos + 3
  end
  return sign == "-" and -secs or secs, pos
end

-- Reads one rule date ("Mm.w.d", "Jn" or "n") with its optional "/time".
local function read_date(s, pos)
  local r = {}
  local m, w, d, after = s:match("^M(%d+)%.(%d)%.(%d)()", pos)
  if m then
    r.kind, r.m, r.w, r.d = "M", tonumber(m), tonumber(w), tonumber(d)
    if r.m < 1 or r.m > 12 or r.w < 1 or r.w > 5 or r.d > 6 then return nil end
  else
    local j, n
    j, n, after = s:match("^(J?)(%d+)()", pos)
    if not n or #n > 3 then return nil end
    r.kind, r.n = j == "J" and "J" or "n", tonumber(n)
    if (r.kind == "J" and (r.n < 1 or r.n > 365)) or r.n > 365 then return nil end
  end
  r.time, pos = 7200, after
  if s:sub(pos, pos) == "/" then
    r.time, pos = read_hms(s, pos + 1, 167)
    if not r.time then return nil end
  end
  return r, pos
end

--- Parses a POSIX TZ string as found in a TZif footer. Returns the rule
--- {std=, std_abbr=, dst=, dst_abbr=, start=, ["end"]=} (offsets in seconds
--- east of UTC; dst is nil for a zone without daylight saving time), or nil
--- and a message.
---@param s string
---@return table|nil rule
---@return string|nil err
function M.parse_posix(s)
  local bad = ("bad POSIX TZ string %q"):format(s)
  local r, pos = {}, 1
  local off
  r.std_abbr, pos = read_abbr(s, pos)
  if not r.std_abbr then return nil, bad end
  off, pos = read_hms(s, pos, 24)
  if not off then return nil, bad end
  r.std = -off -- POSIX counts hours west of Greenwich
  if pos > #s then return r end
  r.dst_abbr, pos = read_abbr(s, pos)
  if not r.dst_abbr then return nil, bad end
  r.dst = r.std + 3600
  if s:sub(pos, pos) ~= "," and pos <= #s then
    off, pos = read_hms(s, pos, 24)
    if not off then return nil, bad end
    r.dst = -off
  end
  if s:sub(pos, pos) ~= "," then return nil, bad .. " (daylight saving time without a rule)" end
  r.start, pos = read_date(s, pos + 1)
  if not r.start or s:sub(pos, pos) ~= "," then return nil, bad end
  r["end"], pos = read_date(s, pos + 1)
  if not r["end"] or pos <= #s then return nil, bad end
  return r
end

-- The day number on which a rule date falls in year y.
local function rule_day(d, y)
  if d.kind == "M" then
    local first = civil.days_from_civil(y, d.m, 1)
    local day = first + (d.d - civil.weekday(first)) % 7 + 7 * (d.w - 1)
    local dim = civil.days_in_month(y, d.m)
    while day - first >= dim do day = day - 7 end -- w = 5: the last such weekday
    return day
  end
  local jan1 = civil.days_from_civil(y, 1, 1)
  if d.kind == "J" then -- 1-365, February 29th never counted
    return jan1 + d.n - 1 + ((civil.is_leap(y) and d.n >= 60) and 1 or 0)
  end
  return jan1 + d.n -- 0-365, February 29th counted
end

-- Appends the footer rule's two transitions of year y, in time order.
local function push_rule_year(z, r, y)
  local on = rule_day(r.start, y) * 86400 + r.start.time - r.std -- given in standard time
  local off = rule_day(r["end"], y) * 86400 + r["end"].time - r.dst -- given in daylight time
  local a = { on, r.dst, 1, r.dst_abbr }
  local b = { off, r.std, 0, r.std_abbr }
  if off < on then a, b = b, a end -- southern hemisphere
  push(z, a[1], a[2], a[3], a[4])
  push(z, b[1], b[2], b[3], b[4])
end

-- Generates transitions from the footer rule until one lies after t (or
-- the last year we go to is reached).
local function extend(z, t)
  local r = z.rule
  while (z.n == 0 or z.at[z.n] <= t) and z.year < LAST_YEAR do
    z.year = z.year + 1
    push_rule_year(z, r, z.year)
  end
  if z.year >= LAST_YEAR then z.rule = nil end -- final from here on
end

------------------------------------------------------------------------
-- TZif

-- Reads the counts of a TZif header at pos. Returns them in a table and the
-- position after the header, or nil and a message.
local function header(data, pos)
  if #data < pos + 43 or data:sub(pos, pos + 3) ~= "TZif" then return nil, "not a TZif file" end
  local h = { version = data:byte(pos + 4) }
  h.isut, h.isstd, h.leap, h.time, h.type, h.char = string.unpack(">I4I4I4I4I4I4", data, pos + 20)
  if h.type < 1 or h.char < 1 or h.time > MAX_COUNT or h.type > 256 or h.char > MAX_COUNT
    or h.leap > MAX_COUNT or (h.isut ~= 0 and h.isut ~= h.type) or (h.isstd ~= 0 and h.isstd ~= h.type) then
    return nil, "bad TZif header"
  end
  return h, pos + 44
end

-- The size in bytes of a data block with these counts and time size.
local function block_size(h, tsize)
  return h.time * tsize + h.time + h.type * 6 + h.char + h.leap * (tsize + 4) + h.isstd + h.isut
end

-- Reads the time types of a data block (its ttinfo records and names).
local function read_types(data, h, pos)
  local types, chars = {}, pos + h.type * 6
  for k = 1, h.type do
    local off, isdst, idx = string.unpack(">i4BB", data, pos + (k - 1) * 6)
    if off < -89999 or off > 93599 or isdst > 1 or idx >= h.char then return nil end
    types[k] = { off = off, isdst = isdst, abbr = data:match("^[^\0]*", chars + idx) }
  end
  return types
end

-- Reads a data block into a zone. Returns the zone, or nil and a message.
local function read_block(data, h, pos, tsize, name)
  if h.leap > 0 then return nil, "zone counts leap seconds (a right/ zone); use the plain one" end
  local tfmt = tsize == 8 and ">i8" or ">i4"
  local idx_pos = pos + h.time * tsize
  local types = read_types(data, h, idx_pos + h.time)
  if not types then return nil, "bad TZif time type" end
  local z = new_zone(name, types[1].off, types[1].isdst, types[1].abbr)
  local prev = math.mininteger
  for k = 1, h.time do
    local t = string.unpack(tfmt, data, pos + (k - 1) * tsize)
    local ty = types[data:byte(idx_pos + k - 1) + 1]
    if not ty or t <= prev then return nil, "bad TZif transition" end
    prev = t
    push(z, t, ty.off, ty.isdst, ty.abbr)
  end
  return z
end

-- Adds the footer's rule to a zone read from a version 2+ file.
local function add_footer(z, data, pos)
  local footer = data:match("^\n([^\n]*)\n", pos)
  if not footer then return nil, "bad TZif footer" end
  if footer == "" then return z end
  local r, err = M.parse_posix(footer)
  if not r then return nil, err end
  if r.dst then
    z.rule = r
    z.year = z.n > 0 and civil.fields(z.at[z.n]) - 1 or 1899
  elseif z.n == 0 then
    z.off[0], z.isdst[0], z.abbr[0] = r.std, 0, r.std_abbr
  end
  return z
end

--- Parses the bytes of a TZif file. Returns a zone, or nil and a message.
---@param data string
---@param name string|nil
---@return table|nil zone
---@return string|nil err
function M.parse_tzif(data, name)
  local h, pos = header(data, 1)
  if not h then return nil, pos end
  local size1 = block_size(h, 4)
  if #data < pos + size1 - 1 then return nil, "truncated TZif file" end
  if h.version < 0x32 then return read_block(data, h, pos, 4, name) end -- version 1: 32-bit only
  local h2, pos2 = header(data, pos + size1)
  if not h2 then return nil, pos2 end
  local size2 = block_size(h2, 8)
  if #data < pos2 + size2 - 1 then return nil, "truncated TZif file" end
  local z, err = read_block(data, h2, pos2, 8, name)
  if not z then return nil, err end
  return add_footer(z, data, pos2 + size2)
end

------------------------------------------------------------------------
-- zones

--- The index i of the interval holding instant t: at[i] <= t < at[i+1]
--- (0 before the first transition). Generates footer transitions as needed.
---@param t integer
---@return integer
function Zone:interval(t)
  local at, i = self.at, self.last
  local nxt = at[i + 1]
  if (i == 0 or at[i] <= t) and ((nxt and t < nxt) or (not nxt and not self.rule)) then return i end
  if self.rule and (self.n == 0 or t >= at[self.n]) then extend(self, t) end
  local lo, hi = 0, self.n -- invariant: at[lo] <= t (lo 0 = minus infinity), t < at[hi + 1]
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if at[mid] <= t then lo = mid else hi = mid - 1 end
  end
  self.last = lo
  return lo
end

--- The UTC offset in seconds east, the abbreviation and the DST flag at t.
---@param t integer
---@return integer off
---@return string abbr
---@return boolean isdst
function Zone:offset(t)
  local i = self:interval(t)
  return self.off[i], self.abbr[i], self.isdst[i] == 1
end

--- The wall-clock (civil) time at instant t.
---@param t integer
---@return integer
function Zone:civil(t)
  return t + self.off[self:interval(t)]
end

-- Zone names are paths below M.dir: letters, digits, _ + - and /, no "..".
local function valid_name(name)
  return name:find("^[%w_+-][%w_+/-]*$") and not name:find("//", 1, true) and name:sub(-1) ~= "/"
end

-- Reads a whole small file, or returns nil and a message.
local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read(MAX_FILE + 1)
  f:close()
  if data and #data > MAX_FILE then return nil, "file too large" end
  return data
end

--- A UTC zone (no file needed).
M.UTC = new_zone("UTC", 0, 0, "UTC")

--- Loads an IANA zone by name ("Europe/Berlin"), once per process. Returns
--- the zone, or nil and a message naming the zone. The file read is small
--- and blocking; schedules load their zone when they are parsed.
---@param name string
---@return table|nil zone
---@return string|nil err
function M.load(name)
  if type(name) ~= "string" then return nil, "time zone name must be a string" end
  if name == "UTC" then return M.UTC end
  if cache[name] then return cache[name] end
  if not valid_name(name) then return nil, ("bad time zone name %q"):format(name) end
  local data, why = read_file(M.dir .. "/" .. name)
  if not data then
    if name == "Etc/UTC" then return M.UTC end
    return nil, ("unknown time zone %q (%s)"):format(name, why or ("no such zone in " .. M.dir))
  end
  local z, err = M.parse_tzif(data, name)
  if not z then return nil, ("time zone %q: %s"):format(name, err) end
  cache[name] = z
  return z
end

return M
