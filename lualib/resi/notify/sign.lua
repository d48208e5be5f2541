--- resi.notify.sign: the webhook signature, as Stripe signs (GitHub's
--- header spelling):
---
---   X-Resi-Timestamp: 1774764000                      (Unix seconds, per attempt)
---   X-Resi-Signature: sha256=<hex HMAC-SHA256(secret, timestamp .. "." .. body)>
---
--- The timestamp is inside what is signed, so a receiver that refuses
--- timestamps older than a few minutes (300 s here) refuses replays, and
--- one that remembers the Idempotency-Key drops retries of an event it
--- has. HMAC is OpenSSL's (resi.crypto_core, libcrypto), never hand-written.
local M = {}

local core -- resi.crypto_core, loaded on first use

-- The C module.
local function crypto()
  core = core or require "resi.crypto_core"
  return core
end

--- Lower-case hex of a byte string.
---@param s string
---@return string
function M.hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- HMAC-SHA256 of message with key, in hex.
---@param key string
---@param message string
---@return string
function M.hmac_sha256(key, message)
  return M.hex(crypto().hmac("sha256", key, message))
end

--- The header value for a body sent at `timestamp`: "sha256=<hex>".
---@param secret string
---@param timestamp integer
---@param body string
---@return string
function M.signature(secret, timestamp, body)
  return "sha256=" .. M.hmac_sha256(secret, tostring(timestamp) .. "." .. body)
end

--- The signing headers of a request: X-Resi-Timestamp and X-Resi-Signature.
---@param secret string
---@param body string
---@param now? number  epoch seconds (default: now)
---@return table<string, string>
function M.headers(secret, body, now)
  local ts = math.floor(now or require("resi.core").now())
  return { ["X-Resi-Timestamp"] = tostring(ts), ["X-Resi-Signature"] = M.signature(secret, ts, body) }
end

--- Checks a received request (headers with lower-case names, as resi.server
--- gives them): true, or false and why ("missing", "stale", "bad signature").
--- The comparison takes the same time wherever the signatures differ.
---@param secret string
---@param headers table<string, string>
---@param body string
---@param opts? {tolerance?: number, now?: number}
---@return boolean ok
---@return string|nil why
function M.verify(secret, headers, body, opts)
  opts = opts or {}
  local ts, sig = headers["x-resi-timestamp"], headers["x-resi-signature"]
  if not ts or not sig or not ts:match("^%d+$") then return false, "missing" end
  local now = opts.now or require("resi.core").now()
  if math.abs(now - tonumber(ts)) > (opts.tolerance or 300) then return false, "stale" end
  if not crypto().equal(M.signature(secret, ts, body), sig) then return false, "bad signature" end
  return true
end

return M
