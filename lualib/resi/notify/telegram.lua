--- resi.notify.telegram: the Bot API's sendMessage, formatted as HTML
--- (parse_mode "HTML": <b>title</b>, the text, <b>name</b>: value lines,
--- <pre> credentials, an <i> footer), every &, < and > of the event's own
--- text escaped as the Bot API asks, link previews off, 4096 characters at
--- most.
---
---   notify.new("telegram", {token_env = "TELEGRAM_BOT_TOKEN", chat_id = "-1001234567890"})
---
--- Options: token (or token_env; default credential
--- RESI_NOTIFY_TELEGRAM_TOKEN; a secret), chat_id (or default
--- RESI_NOTIFY_TELEGRAM_CHAT_ID), api_url (default https://api.telegram.org,
--- or RESI_NOTIFY_TELEGRAM_API_URL). Limits (Telegram's bot FAQ): 1
--- message per second per chat, 20 per minute in a group (a negative chat
--- id), 30 per second per bot; a 429's parameters.retry_after is honoured.
local json = require "resi.json"
local secrets = require "resi.notify.secrets"
local target = require "resi.notify.target"
local event = require "resi.notify.event"

local M = {}

--- Default credential names.
M.ENV = { token = "RESI_NOTIFY_TELEGRAM_TOKEN", chat_id = "RESI_NOTIFY_TELEGRAM_CHAT_ID",
  api_url = "RESI_NOTIFY_TELEGRAM_API_URL" }

--- Escapes text for parse_mode HTML (&, <, >).
---@param s string
---@return string
function M.escape(s)
  return (s:gsub("[&<>]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" }))
end
local esc = M.escape

--- The message text (HTML) of an event.
---@param e table a normalised event
---@return string
function M.html(e)
  local parts = { "<b>" .. esc(event.cut(e.title, 256)) .. "</b>" }
  if e.text then parts[#parts + 1] = esc(event.cut(e.text, 2500)) end
  local lines = {}
  for i, f in ipairs(e.fields) do
    if i > 30 then break end
    lines[#lines + 1] = "<b>" .. esc(event.cut(f.name, 64)) .. "</b>: " .. esc(event.cut(f.value, 200))
  end
  if #lines > 0 then parts[#parts + 1] = table.concat(lines, "\n") end
  if e.credentials then
    parts[#parts + 1] = "<pre>" .. esc(event.cut(table.concat(e.credentials, "\n"), 1500)) .. "</pre>"
  elseif e.withheld then
    parts[#parts + 1] = "<i>" .. esc(event.withheld_note(e)) .. "</i>"
  end
  parts[#parts + 1] = "<i>" .. esc(("%s · %s · %s"):format(e.severity, e.kind, event.iso(e))) .. "</i>"
  return table.concat(parts, "\n\n")
end

-- A chat id as the API takes it: a number when it is one, else "@channel".
local function chat_value(id)
  local n = math.tointeger(tonumber(id))
  if n and tostring(id):match("^%-?%d+$") then return n end
  return tostring(id)
end

--- A Telegram target (see the top of this file).
---@param opts table
---@return table target
function M.new(opts)
  local token = secrets.option(opts, "token", M.ENV.token)
  if not token then error("telegram: token is required (or token_env, or " .. M.ENV.token .. ")", 0) end
  if not token:match("^[%w:_-]+$") then error("telegram: token must be a bot token (digits:letters)", 0) end
  local chat = opts.chat_id or secrets.option({}, "chat_id", M.ENV.chat_id)
  if chat == nil or tostring(chat) == "" then error("telegram: chat_id is required (or " .. M.ENV.chat_id .. ")", 0) end
  chat = tostring(chat)
  local api = opts.api_url or os.getenv(M.ENV.api_url) or "https://api.telegram.org"
  target.check_url("telegram: api_url", api)
  local url = api:gsub("/+$", "") .. "/bot" .. token .. "/sendMessage"
  local rules = { { limit = 1, window = 1 } }
  if chat:sub(1, 1) == "-" then rules[2] = { limit = 20, window = 60 } end -- a group or channel
  return target.new({
    kind = "telegram", name = opts.name or "telegram", label = "telegram chat " .. chat .. " (bot …)",
    rules = rules, parent_rules = { { limit = 30, window = 1 } },
    attempt = function(e, ctx)
      local body = json.encode { chat_id = chat_value(chat), text = M.html(e), parse_mode = "HTML",
        link_preview_options = { is_disabled = true } }
      local res, err, code = target.post_json(url, body, nil, ctx)
      target.retry_after_from_body(res, function(b) return type(b.parameters) == "table" and tonumber(b.parameters.retry_after) end)
      return res, err, code
    end,
    accepted = function(res)
      if res.status ~= 200 then return false end
      local ok, b = pcall(json.decode, res.body or "")
      return ok and type(b) == "table" and b.ok == true
    end,
  }, { key = token .. "\0" .. chat, parent_key = token, values = { token, url } })
end

return M
