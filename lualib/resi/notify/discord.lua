--- resi.notify.discord: a Discord webhook (Execute Webhook), one embed:
--- title, description (the text), colour by severity, fields (25 at most,
--- name 256 and value 1024 characters), an ISO 8601 timestamp and a footer;
--- markdown in the text is escaped and allowed_mentions is empty, so an
--- event can never ping @everyone.
---
---   notify.new("discord", {url_env = "DISCORD_WEBHOOK_URL"})
---
--- Options: url (or url_env; default credential RESI_NOTIFY_DISCORD_URL),
--- username (shown as the sender). The URL is a secret (it holds the
--- webhook token). Limits: 5 requests per 2 s per webhook and 30 messages
--- per minute per channel (one webhook posts to one channel); a 429's
--- retry_after (JSON body, seconds) or Retry-After is honoured. Discord
--- answers 204 No Content.
local json = require "resi.json"
local secrets = require "resi.notify.secrets"
local target = require "resi.notify.target"
local event = require "resi.notify.event"

local M = {}

--- Default credential name.
M.ENV = { url = "RESI_NOTIFY_DISCORD_URL" }

--- Embed colours (decimal RGB) by severity.
M.COLOR = { info = 0x3498DB, success = 0x2ECC71, warning = 0xF1C40F, error = 0xE74C3C }

--- Escapes Discord markdown (\ * _ ~ ` | > #) with backslashes.
---@param s string
---@return string
function M.escape(s)
  return (s:gsub("([\\%*_~`|>#])", "\\%1"))
end
local esc = M.escape

--- The Execute Webhook payload of an event.
---@param e table a normalised event
---@param opts? {username?: string}
---@return table
function M.payload(e, opts)
  local fields = json.array()
  for i, f in ipairs(e.fields) do
    if i > 25 then break end
    fields[i] = { name = event.cut(esc(f.name), 256), value = event.cut(esc(f.value ~= "" and f.value or "-"), 1024),
      inline = #f.value <= 40 }
  end
  local desc = e.text and esc(e.text) or ""
  if e.credentials then
    desc = desc .. "\n```\n" .. table.concat(e.credentials, "\n"):gsub("```", "'''") .. "\n```"
  elseif e.withheld then
    desc = desc .. "\n*" .. event.withheld_note(e) .. "*"
  end
  local embed = { title = event.cut(e.title, 256), color = M.COLOR[e.severity], fields = fields,
    timestamp = event.iso(e), footer = { text = event.cut("resi · " .. e.severity .. " · " .. e.kind, 2048) } }
  -- every embed text counts toward 6000 characters
  local used = #embed.title + #embed.footer.text
  for _, f in ipairs(fields) do used = used + #f.name + #f.value end
  if desc ~= "" then embed.description = event.cut(desc, math.max(100, math.min(4096, 6000 - used))) end
  return { username = opts and opts.username, embeds = json.array { embed },
    allowed_mentions = { parse = json.array() } }
end

--- A Discord target (see the top of this file).
---@param opts table
---@return table target
function M.new(opts)
  local url = target.url_option("discord", opts, M.ENV.url)
  return target.new({
    kind = "discord", name = opts.name or "discord", label = "discord " .. secrets.show_url(url),
    rules = { { limit = 5, window = 2 }, { limit = 30, window = 60 } },
    attempt = function(e, ctx)
      local res, err, code = target.post_json(url, json.encode(M.payload(e, opts)), nil, ctx)
      target.retry_after_from_body(res, function(b) return tonumber(b.retry_after) end)
      return res, err, code
    end,
    accepted = target.is_2xx,
  }, { key = url, values = { url } })
end

return M
