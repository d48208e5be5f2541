--- resi.random: random bytes, hex strings, strings over a character set and
--- v4 UUIDs, all from the kernel's generator (getrandom, through
--- resi.core.random_bytes), never from math.random: passwords, usernames,
--- session ids and idempotency keys come from here.
local core = require "resi.core"

local random_bytes = core.random_bytes
local byte, concat = string.byte, table.concat

local M = {}

--- The characters random.string draws from when no charset is given.
M.ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

-- Raises unless n is a non-negative integer; returns it as an integer.
local function check_count(fname, n)
  local i = math.tointeger(n)
  if i == nil or i < 0 then
    error(("resi.random.%s: expected a count >= 0, got %s"):format(fname, tostring(n)), 3)
  end
  return i
end

--- n random bytes.
---@param n integer
---@return string
function M.bytes(n) return random_bytes(check_count("bytes", n)) end

--- n random bytes written as 2n lower-case hex digits.
---@param n integer
---@return string
function M.hex(n)
  local s = random_bytes(check_count("hex", n))
  return (s:gsub(".", function(c) return ("%02x"):format(byte(c)) end))
end

-- Appends to out, up to n in all, the characters of charset picked by the
-- bytes of raw that fall below limit (a multiple of #charset): rejection
-- sampling, so every character is equally likely.
local function take(out, n, raw, charset, limit)
  local k = #charset
  for i = 1, #raw do
    if #out == n then return end
    local b = byte(raw, i)
    if b < limit then
      local j = b % k + 1
      out[#out + 1] = charset:sub(j, j)
    end
  end
end

--- A string of n characters drawn uniformly from charset (bytes; 1 to 256
--- of them, default random.ALNUM). A repeated character is drawn that much
--- more often.
---@param n integer
---@param charset string|nil
---@return string
function M.string(n, charset)
  n = check_count("string", n)
  charset = charset or M.ALNUM
  local k = type(charset) == "string" and #charset or 0
  if k < 1 or k > 256 then
    error("resi.random.string: charset must be a string of 1 to 256 bytes", 2)
  end
  local limit = 256 - 256 % k -- bytes at or above it would favour the first characters
  local out = {}
  while #out < n do
    local want = n - #out -- a byte is kept with probability limit/256 (> 1/2)
    take(out, n, random_bytes(want * 256 // limit + 8), charset, limit)
  end
  return concat(out)
end

--- A random (version 4) UUID: "xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx", lower
--- case, N one of 8, 9, a, b.
---@return string
function M.uuid()
  local b = { byte(random_bytes(16), 1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40 -- version 4
  b[9] = (b[9] & 0x3f) | 0x80 -- variant 10xx (RFC 9562)
  local h = ("%02x"):rep(16):format(table.unpack(b))
  return ("%s-%s-%s-%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

return M
