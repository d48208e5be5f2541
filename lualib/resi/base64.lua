--- resi.base64: base64 and base64url (RFC 4648), for Basic auth headers and
--- JWT segments.
local M = {}

local CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local INDEX = {}
for i = 1, #CHARS do INDEX[CHARS:byte(i)] = i - 1 end

--- Encodes bytes as standard base64 with padding.
---@param s string
---@return string
function M.encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local k1, k2, k3, k4 = (n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63
    out[#out + 1] = CHARS:sub(k1 + 1, k1 + 1) .. CHARS:sub(k2 + 1, k2 + 1)
      .. (b and CHARS:sub(k3 + 1, k3 + 1) or "=") .. (c and CHARS:sub(k4 + 1, k4 + 1) or "=")
  end
  return table.concat(out)
end

--- Encodes bytes as base64url without padding (JWT segments).
---@param s string
---@return string
function M.encode_url(s)
  return (M.encode(s):gsub("=+$", ""):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

--- Decodes standard base64 (padding optional); nil when it is not base64.
---@param s string
---@return string|nil
function M.decode(s)
  s = s:gsub("=+$", "")
  if #s % 4 == 1 or s:find("[^%w+/]") then return nil end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    bits = ((bits << 6) | INDEX[s:byte(i)]) & 0xFFFFFF
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xFF)
    end
  end
  return table.concat(out)
end

return M
