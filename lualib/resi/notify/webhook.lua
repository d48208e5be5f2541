--- resi.notify.webhook: POST the event as JSON to any HTTPS URL, signed
--- (resi.notify.sign): X-Resi-Timestamp and X-Resi-Signature per attempt,
--- Idempotency-Key and X-Resi-Delivery (the event id, the same on every
--- attempt) so a receiver drops retries, X-Resi-Event (the kind).
---
---   notify.new("webhook", {url = "https://example.com/hook", secret_env = "HOOK_SECRET"})
---
--- Options: url (or url_env; default credential RESI_NOTIFY_WEBHOOK_URL),
--- secret (or secret_env; default RESI_NOTIFY_WEBHOOK_SECRET; required),
--- limit/window (default 10 per second: the receiver is yours; a 429 with
--- Retry-After is honoured whatever the limit).
---
--- Body: {id, kind, title, text, severity, time (RFC 3339), fields:
--- [{name, value}], source: "resi", credentials?: [...], withheld?: n}.
local json = require "resi.json"
local secrets = require "resi.notify.secrets"
local target = require "resi.notify.target"
local event = require "resi.notify.event"
local sign = require "resi.notify.sign"

local M = {}

--- Default credential names.
M.ENV = { url = "RESI_NOTIFY_WEBHOOK_URL", secret = "RESI_NOTIFY_WEBHOOK_SECRET" }

--- The JSON body of an event.
---@param e table a normalised event
---@return string
function M.body(e)
  local fields = json.array()
  for i, f in ipairs(e.fields) do fields[i] = { name = f.name, value = f.value } end
  return json.encode({ id = e.id, kind = e.kind, title = e.title, text = e.text, severity = e.severity,
    time = event.iso(e), fields = fields, source = "resi",
    credentials = e.credentials and json.array(e.credentials) or nil, withheld = e.withheld }, { sort_keys = true })
end

--- A webhook target (see the top of this file).
---@param opts table
---@return table target
function M.new(opts)
  local url = target.url_option("webhook", opts, M.ENV.url)
  local key = secrets.option(opts, "secret", M.ENV.secret)
  if not key then error("webhook: secret is required (or secret_env, or " .. M.ENV.secret .. ")", 0) end
  local limit, window = opts.limit or 10, opts.window or 1
  return target.new({
    kind = "webhook", name = opts.name or "webhook", label = "webhook " .. secrets.show_url(url),
    rules = { { limit = limit, window = window } },
    idempotent = true,
    attempt = function(e, ctx)
      local body = M.body(e)
      local h = sign.headers(key, body)
      h["Idempotency-Key"], h["X-Resi-Delivery"], h["X-Resi-Event"] = e.id, e.id, e.kind
      return target.post_json(url, body, h, ctx)
    end,
    accepted = target.is_2xx,
  }, { key = url, values = { url, key } })
end

return M
