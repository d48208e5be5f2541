--- resi.notify.slack: a Slack incoming webhook, in Block Kit: a header
--- block (the title), a section (the text, mrkdwn), sections of fields (10
--- per section, "*name*\nvalue"), the credentials or the withheld note, and
--- a context line (severity, kind, time); `text` carries the same as a
--- fallback for notifications. &, < and > are escaped as Slack asks.
---
---   notify.new("slack", {url_env = "SLACK_WEBHOOK_URL"})
---
--- Options: url (or url_env; default credential RESI_NOTIFY_SLACK_URL).
--- The URL is a secret (whoever has it can post). Limit: 1 message per
--- second per webhook (Slack's documented limit for incoming webhooks);
--- Slack answers 200 "ok", or 429 with Retry-After.
local json = require "resi.json"
local secrets = require "resi.notify.secrets"
local target = require "resi.notify.target"
local event = require "resi.notify.event"

local M = {}

--- Default credential name.
M.ENV = { url = "RESI_NOTIFY_SLACK_URL" }

local ICON = { info = ":information_source:", success = ":white_check_mark:", warning = ":warning:", error = ":rotating_light:" }

--- Escapes text for mrkdwn (Slack: &, <, > only).
---@param s string
---@return string
function M.escape(s)
  return (s:gsub("[&<>]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" }))
end
local esc = M.escape

--- The message payload of an event.
---@param e table a normalised event
---@return table
function M.payload(e)
  local blocks = json.array()
  blocks[#blocks + 1] = { type = "header", text = { type = "plain_text", text = event.cut(e.title, 150), emoji = true } }
  if e.text then
    blocks[#blocks + 1] = { type = "section", text = { type = "mrkdwn", text = event.cut(esc(e.text), 3000) } }
  end
  local section
  for i, f in ipairs(e.fields) do
    if i > 40 then break end -- 4 sections: Slack allows 50 blocks in all
    if (i - 1) % 10 == 0 then
      section = { type = "section", fields = json.array() }
      blocks[#blocks + 1] = section
    end
    section.fields[#section.fields + 1] = { type = "mrkdwn",
      text = event.cut("*" .. esc(f.name) .. "*\n" .. esc(f.value), 2000) }
  end
  if e.credentials then
    blocks[#blocks + 1] = { type = "section", text = { type = "mrkdwn",
      text = event.cut("```" .. esc(table.concat(e.credentials, "\n")) .. "```", 3000) } }
  elseif e.withheld then
    blocks[#blocks + 1] = { type = "context", elements = { { type = "mrkdwn", text = esc(event.withheld_note(e)) } } }
  end
  blocks[#blocks + 1] = { type = "context", elements = { { type = "mrkdwn",
    text = ("%s %s · %s · %s"):format(ICON[e.severity], e.severity, esc(e.kind), event.iso(e)) } } }
  return { text = event.cut(esc(e.title .. (e.text and (": " .. e.text) or "")), 3000), blocks = blocks }
end

--- A Slack target (see the top of this file).
---@param opts table
---@return table target
function M.new(opts)
  local url = target.url_option("slack", opts, M.ENV.url)
  return target.new({
    kind = "slack", name = opts.name or "slack", label = "slack " .. secrets.show_url(url),
    rules = { { limit = 1, window = 1 } },
    attempt = function(e, ctx) return target.post_json(url, json.encode(M.payload(e)), nil, ctx) end,
    accepted = function(res) return res.status == 200 end,
  }, { key = url, values = { url } })
end

return M
