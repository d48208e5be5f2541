--- resi.cron.civil: proleptic Gregorian calendar arithmetic on integers,
--- shared by the cron schedule and the time zone reader. A "civil" time is
--- seconds since 1970-01-01 00:00:00 counted on a wall clock (UTC or local):
--- no zone, no leap seconds. Days are numbered from 1970-01-01 = 0.
--- The two conversions are Howard Hinnant's days_from_civil / civil_from_days
--- ("chrono-compatible low-level date algorithms"), exact for every year.
local M = {}

local DIM = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

--- True when y is a leap year (Gregorian: every 4th, not every 100th, every 400th).
---@param y integer
---@return boolean
function M.is_leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

--- The number of days in month m (1-12) of year y.
---@param y integer
---@param m integer
---@return integer
function M.days_in_month(y, m)
  if m == 2 and M.is_leap(y) then return 29 end
  return DIM[m]
end

--- The day number of y-m-d (1970-01-01 is 0; earlier days are negative).
---@param y integer
---@param m integer
---@param d integer
---@return integer
function M.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = (153 * mp + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end

--- The year, month and day of a day number.
---@param z integer
---@return integer y
---@return integer m
---@return integer d
function M.civil_from_days(z)
  z = z + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

--- The day of the week of a day number: 0 = Sunday ... 6 = Saturday.
---@param z integer
---@return integer
function M.weekday(z)
  return (z + 4) % 7 -- 1970-01-01 was a Thursday
end

--- The civil time of y-m-d h:mi:s.
---@return integer
---@param y integer
---@param m integer 1..12
---@param d integer 1..31
---@param h integer
---@param mi integer
---@param s integer
function M.epoch(y, m, d, h, mi, s)
  return M.days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s
end

--- The fields of a civil time: year, month, day, hour, minute, second.
---@param c integer
---@return integer y
---@return integer m
---@return integer d
---@return integer h
---@return integer mi
---@return integer s
function M.fields(c)
  local days, sod = c // 86400, c % 86400
  local y, m, d = M.civil_from_days(days)
  return y, m, d, sod // 3600, sod % 3600 // 60, sod % 60
end

--- A civil time written "YYYY-MM-DD HH:MM:SS".
---@param c integer
---@return string
function M.format(c)
  return ("%04d-%02d-%02d %02d:%02d:%02d"):format(M.fields(c))
end

--- A UTC offset in seconds written "+HH:MM" (or "+HH:MM:SS" when it has seconds).
---@param off integer
---@return string
function M.format_offset(off)
  local sign = off < 0 and "-" or "+"
  off = math.abs(off)
  local text = ("%s%02d:%02d"):format(sign, off // 3600, off % 3600 // 60)
  if off % 60 ~= 0 then text = text .. (":%02d"):format(off % 60) end
  return text
end

return M
