--- resi.notify.email: the event as a plain-text mail, submitted over SMTP
--- through libcurl (resi.smtp_core): Date, Message-ID, From, To, Subject
--- (RFC 2047 encoded when not ASCII), MIME-Version and a text/plain UTF-8
--- body (quoted-printable when it is not short plain ASCII), CRLF lines.
---
---   notify.new("email", {url = "smtp://mail.example.com:587", from = "resi@example.com",
---     to = {"ops@example.com"}, username = "resi", password_env = "SMTP_PASSWORD"})
---
--- Options: url (smtp://host[:port], STARTTLS, port 587 by default; or
--- smtps://host[:port], TLS from the start, 465; or url_env; default
--- credential RESI_NOTIFY_SMTP_URL), from (RESI_NOTIFY_EMAIL_FROM),
--- to (a list or "a@x, b@y"; RESI_NOTIFY_EMAIL_TO), username
--- (RESI_NOTIFY_SMTP_USERNAME), password (or password_env; default
--- RESI_NOTIFY_SMTP_PASSWORD; a secret), ca_file, subject_prefix
--- (default "[resi] "), limit/window (default 30 per minute).
--- TLS: STARTTLS is required (the send fails rather than go out in clear)
--- unless the server is a loopback address; tls = true requires it there
--- too, tls = false (loopback only) never asks for it. Certificates are
--- always verified.
local secrets = require "resi.notify.secrets"
local target = require "resi.notify.target"
local event = require "resi.notify.event"
local task = require "resi.task"

local M = {}

--- Default credential names.
M.ENV = { url = "RESI_NOTIFY_SMTP_URL", from = "RESI_NOTIFY_EMAIL_FROM", to = "RESI_NOTIFY_EMAIL_TO",
  username = "RESI_NOTIFY_SMTP_USERNAME", password = "RESI_NOTIFY_SMTP_PASSWORD" }

local ADDRESS = "^[^%s<>@,;\"]+@[^%s<>@,;\"]+$"

-- The recipients: a list or a comma-separated string, each checked.
local function recipients(to)
  local list = {}
  if type(to) == "string" then
    for a in to:gmatch("[^,%s]+") do list[#list + 1] = a end
  elseif type(to) == "table" then
    for i, a in ipairs(to) do list[i] = tostring(a) end
  end
  if #list == 0 then error("email: to is required (an address, a list, or " .. M.ENV.to .. ")", 0) end
  for _, a in ipairs(list) do
    if not a:match(ADDRESS) then error(("email: to: %q is not an address (name@domain)"):format(a), 0) end
  end
  return list
end

--- An RFC 5322 date for epoch seconds t (UTC): "Sun, 29 Mar 2026 06:00:00 +0000".
---@param t number
---@return string
function M.date(t) return os.date("!%a, %d %b %Y %H:%M:%S +0000", math.floor(t)) end

--- A header value: as is when printable ASCII, else an RFC 2047
--- encoded-word (=?UTF-8?B?...?=). Line breaks never pass.
---@param s string
---@return string
function M.header_text(s)
  s = s:gsub("[\r\n]+", " ")
  if not s:find("[^\32-\126]") then return s end
  local b64 = require("resi.base64").encode
  local words, i = {}, 1
  while i <= #s do -- 45 bytes a word (60 of base64), cut on UTF-8 boundaries
    local j = math.min(#s, i + 44)
    while j < #s and j > i and (s:byte(j + 1) or 0) >= 0x80 and (s:byte(j + 1) or 0) < 0xC0 do j = j - 1 end
    words[#words + 1] = "=?UTF-8?B?" .. b64(s:sub(i, j)) .. "?="
    i = j + 1
  end
  return table.concat(words, "\r\n ")
end

--- Quoted-printable (RFC 2045) of text with LF or CRLF lines; CRLF out.
---@param s string
---@return string
function M.quoted_printable(s)
  local out = {}
  for line in (s:gsub("\r\n", "\n") .. "\n"):gmatch("(.-)\n") do
    local enc = line:gsub("[^\33-\60\62-\126 \t]", function(c) return ("=%02X"):format(c:byte()) end)
    enc = enc:gsub("([ \t])$", function(c) return ("=%02X"):format(c:byte()) end)
    local pieces = {}
    while #enc > 75 do -- soft breaks, never inside an =XX
      local cut = 75
      if enc:sub(cut - 1, cut - 1) == "=" then cut = cut - 2 elseif enc:sub(cut, cut) == "=" then cut = cut - 1 end
      pieces[#pieces + 1] = enc:sub(1, cut) .. "="
      enc = enc:sub(cut + 1)
    end
    pieces[#pieces + 1] = enc
    out[#out + 1] = table.concat(pieces, "\r\n")
  end
  return table.concat(out, "\r\n")
end

--- The whole message (headers and body, CRLF) of an event.
---@param e table a normalised event
---@param o {from: string, to: string[], subject_prefix?: string, now?: number}
---@return string message
---@return string message_id
function M.message(e, o)
  local domain = o.from:match("@(.+)$")
  local id = ("<%s.%d@%s>"):format(e.id:gsub("[^%w.-]", "-"), math.floor(e.time), domain)
  local body = event.plain(e)
  local plain = not body:find("[^\9\10\13\32-\126]") and not body:find("[^\n]" .. ("[^\n]"):rep(900))
  local headers = {
    "Date: " .. M.date(o.now or require("resi.core").now()),
    "From: " .. o.from,
    "To: " .. table.concat(o.to, ", "),
    "Subject: " .. M.header_text((o.subject_prefix or "[resi] ") .. e.title),
    "Message-ID: " .. id,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: " .. (plain and "7bit" or "quoted-printable"),
    "X-Resi-Event: " .. e.kind,
    "X-Resi-Severity: " .. e.severity,
  }
  local text = plain and (body:gsub("\r?\n", "\r\n")) or M.quoted_printable(body)
  return table.concat(headers, "\r\n") .. "\r\n\r\n" .. text .. "\r\n", id
end

-- Sends one message through the C module and waits (cancellable).
local function submit(spec)
  local core = require "resi.smtp_core"
  local t, token = task.prepare("resi.notify email")
  local handle = core.send(spec, t, token)
  local reply, err, code = task.suspend(t, function() handle:cancel() end)
  if reply then return { reply = reply } end
  return nil, err, code
end

-- The host of an smtp(s):// URL, its scheme and the URL with a default port.
local function smtp_url(url)
  local scheme, authority, rest = url:match("^(smtps?)://([^/?#]+)(.*)$")
  if not scheme then error("email: url must be smtp://host[:port] or smtps://host[:port]", 0) end
  if authority:find("@", 1, true) then error("email: url must not carry credentials (use username and password)", 0) end
  local host = authority:match("^%[([^%]]+)%]") or authority:match("^[^:]+")
  if not authority:match(":%d+$") then
    authority = authority .. (scheme == "smtps" and ":465" or ":587")
  end
  return scheme, host, scheme .. "://" .. authority .. rest
end

--- An email target (see the top of this file).
---@param opts table
---@return table target
function M.new(opts)
  local url = secrets.option(opts, "url", M.ENV.url)
  if not url then error("email: url is required (or url_env, or " .. M.ENV.url .. ")", 0) end
  local scheme, host, full = smtp_url(url)
  local loopback = require("resi.http").is_loopback(host:lower())
  if opts.tls == false and not loopback then
    error("email: tls = false is allowed for a loopback server only (STARTTLS is required elsewhere)", 0)
  end
  local require_tls = scheme == "smtp" and (opts.tls == true or (opts.tls == nil and not loopback))
  local from = opts.from or secrets.option({}, "from", M.ENV.from) or ("resi@" .. require("luv").os_gethostname())
  if not from:match(ADDRESS) then error(("email: from: %q is not an address (name@domain)"):format(from), 0) end
  local to = recipients(opts.to or secrets.option({}, "to", M.ENV.to))
  local username = opts.username or secrets.option({}, "username", M.ENV.username)
  local password = secrets.option(opts, "password", M.ENV.password)
  if password and not username then error("email: password given without username", 0) end
  local limit, window = opts.limit or 30, opts.window or 60
  local t = target.new({
    kind = "email", name = opts.name or "email",
    label = ("email %s://%s to %s"):format(scheme, host, table.concat(to, ",")),
    require_tls = require_tls or scheme == "smtps",
    rules = { { limit = limit, window = window } },
    transient = { connect = true, timeout = true, reset = true, resolve = true, transient = true },
    attempt = function(e, ctx)
      local msg = M.message(e, { from = from, to = to, subject_prefix = opts.subject_prefix })
      local rcpt = {}
      for i, a in ipairs(to) do rcpt[i] = "<" .. a .. ">" end
      local res, err, code = submit { url = full, from = "<" .. from .. ">", rcpt = rcpt, message = msg,
        username = username, password = password, require_tls = require_tls, ca_file = opts.ca_file,
        timeout_ms = math.floor(ctx.timeout * 1000), connect_timeout_ms = math.floor(math.min(ctx.timeout, 10) * 1000) }
      if code == "rejected" and err and err:match("SMTP reply 4%d%d") then code = "transient" end
      return res, err, code
    end,
    accepted = function(res) return type(res) == "table" and res.reply ~= nil end,
  }, { key = full .. "\0" .. from, values = { password, url } })
  return t
end

return M
