--- resi.notify.target: what every notification target shares. A target is
--- a table
---   {kind=, name=, label=, rules={{limit=, window=}...}, parent_rules=?,
---    attempt = fn(event, ctx) -> result | nil, message, code,
---    accepted = fn(result) -> boolean, detail = fn(result) -> string}
--- whose secrets (URL, token, password) live only in the closures of its
--- functions and in a private table (secrets_of), never in a field: a
--- REPL print or a log of the table shows its label ("slack
--- https://hooks.slack.com/…"), not the secret.
local secrets = require "resi.notify.secrets"

local M = {}

-- target -> {key=, parent_key=, values={...}}; weak keys: gone with the target.
local private = setmetatable({}, { __mode = "k" })

local Target = {}
Target.__index = Target
Target.__name = "resi.notify.target"
function Target:__tostring() return "resi.notify.target " .. self.label end

--- Makes a target from its public fields and its secrets: `key` (what
--- identifies it for rate limiting: a webhook URL, bot token and chat),
--- `parent_key` (a limit shared by several targets, e.g. one bot) and
--- `values` (every secret, for hide()).
---@param fields table
---@param hidden {key: string, parent_key?: string, values: string[]}
---@return table
function M.new(fields, hidden)
  local t = setmetatable(fields, Target)
  private[t] = hidden
  return t
end

--- The secrets of a target ({key=, parent_key=, values=}).
---@param t table
---@return table
function M.secrets_of(t) return private[t] or { values = {} } end

--- Text with the target's secrets masked.
---@param t table
---@param text any
---@return string
function M.hide(t, text) return secrets.hide(text, M.secrets_of(t).values) end

--- One HTTP POST of a JSON body (a string) with the target's timeout;
--- returns resi.http.request's results.
---@param url string
---@param body string
---@param headers? table
---@param ctx {timeout: number}
---@return table|nil res
---@return string|nil err
---@return string|nil code
function M.post_json(url, body, headers, ctx)
  local h = { ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return require("resi.http").request { method = "POST", url = url, body = body, headers = h,
    timeout = ctx.timeout, connect_timeout = math.min(ctx.timeout, 10), max_body = 64 * 1024 }
end

--- Checks that a URL option is an http(s) URL (resi.http then allows plain
--- http:// to loopback only). The message never includes the URL.
---@param what string  "slack: url"
---@param url string
function M.check_url(what, url)
  local scheme, host = require("resi.http").split_url(url)
  if scheme ~= "https" and scheme ~= "http" then error(what .. " must be an https:// URL", 0) end
  if scheme == "http" and not require("resi.http").is_loopback(host) then
    error(what .. " must be https:// (plain http:// is allowed to loopback addresses only)", 0)
  end
end

--- A target's URL: opts.url, else the credential opts.url_env names, else
--- the credential default_env; required, and checked with check_url. A
--- message names the option, never the value.
---@param kind string  "slack"
---@param opts table
---@param default_env string
---@return string url
function M.url_option(kind, opts, default_env)
  local url = secrets.option(opts, "url", default_env)
  if not url then error(("%s: url is required (or url_env, or %s)"):format(kind, default_env), 0) end
  M.check_url(kind .. ": url", url)
  return url
end

--- A 2xx status?
---@param res table
---@return boolean
function M.is_2xx(res) return type(res) == "table" and type(res.status) == "number" and res.status >= 200 and res.status < 300 end

--- "status 400: <start of the body>" for a refused request.
---@param res table
---@return string
function M.status_detail(res)
  local body = (res.body or ""):gsub("%s+", " ")
  return ("status %d%s"):format(res.status, body ~= "" and (": " .. body:sub(1, 200)) or "")
end

--- When a 429's JSON body says how long to wait (Discord's and Telegram's
--- retry_after) and no Retry-After header does, writes it as one, so the
--- limiter's observe pauses for it.
---@param res table|nil
---@param seconds_of fun(body: table): number|nil
function M.retry_after_from_body(res, seconds_of)
  if type(res) ~= "table" or res.status ~= 429 or not res.headers or res.headers["retry-after"] then return end
  local ok, body = pcall(require("resi.json").decode, res.body or "")
  local s = ok and type(body) == "table" and seconds_of(body)
  if type(s) == "number" and s >= 0 then res.headers["retry-after"] = tostring(math.ceil(s)) end
end

return M
