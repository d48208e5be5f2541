--- resi.proxylist.check: which proxies of a list work. Each proxy fetches
--- opts.url through resi.http's proxy= option (HTTP, HTTPS and SOCKS proxies,
--- with their credentials), in resi tasks, at most opts.concurrency at a time,
--- each within opts.timeout seconds, and, given opts.limiter (a
--- resi.ratelimit limiter), each after taking a permit from it (a gateway
--- that limits new connections per second; a 429 the target sends is
--- observed, pausing the rest).
---
--- A result per entry, in list order: {index=, proxy= (the URL with the
--- password masked), ok=, latency= (seconds), status= (HTTP status or nil),
--- error= (nil when ok) and message=}. error is one of:
---   "auth"     the proxy refused the credentials (407, SOCKS auth rejected)
---   "connect"  nothing accepts connections at the proxy's address
---   "timeout"  no answer within the timeout
---   "tls"      a TLS failure (an https:// proxy or an https target)
---   "resolve"  the proxy's host name does not resolve
---   "status"   the target answered with a status >= 400 (not 407)
---   "proxy"    another proxy failure (SOCKS errors, CONNECT refused)
---   "ratelimit" opts.limiter gave no permit (a server-given pause too long)
---   "reset", "protocol", "error"  as resi.http reports them
--- ok means a response with a status below 400 came back through the proxy.
--- Before the proxies, the URL is fetched once directly (opts.preflight =
--- false skips it): a 401 through a proxy counts as "auth" unless the target
--- itself answers 401, because some proxies (tinyproxy 1.11) answer wrong
--- credentials with 401 instead of 407.
--- The URL may be https:// or plain http:// to any host (an IP-echo service
--- such as http://ip-api.com/json): it is fetched through the proxies, and
--- resi.http's HTTPS-only rule exists to protect resi's own API traffic,
--- which a check target never carries. The direct preflight obeys the rule,
--- so it is skipped for plain http:// off loopback.
--- Passwords never reach the results, messages or the progress bar.
local http = require "resi.http"
local task = require "resi.task"
local core = require "resi.core"
local secret = require "resi.secret"

local M = {}

-- Escapes Lua pattern magic characters.
local function plain(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

--- The entry's URL with the password masked (for output and logs).
---@param e table
---@return string
function M.masked_url(e)
  local host = e.host:find(":", 1, true) and ("[" .. e.host .. "]") or e.host
  local cred = ""
  -- resi.secret's rule for password fields: nothing of them shows (mask()
  -- would keep a key-like prefix such as "tinyPass_")
  if e.user then cred = http.escape(e.user) .. (e.pass and (":" .. secret.redact({ pass = e.pass }).pass) or "") .. "@" end
  return ("%s://%s%s:%d"):format(e.scheme, cred, host, e.port)
end

-- Removes a password (raw and percent-encoded) from a message.
local function scrub(msg, pass)
  if not msg or not pass or pass == "" then return msg end
  msg = msg:gsub(plain(pass), "…")
  return (msg:gsub(plain(http.escape(pass)), "…"))
end

-- The failure class of a transport error.
local function classify(code, msg)
  if code == "proxy" then
    local m = (msg or ""):lower()
    if m:find("response 407", 1, true) or m:find("response 401", 1, true) or m:find("auth", 1, true) or m:find("rejected", 1, true)
      or m:find("password", 1, true) then
      return "auth"
    end
    return "proxy"
  end
  return code or "error"
end

-- Checks entry i: one request through it.
local function check_one(list, i, opts)
  local e = list[i]
  local proxy = assert(list:line(i, "url"))
  local result = { index = i, proxy = M.masked_url(e), scheme = e.scheme, host = e.host, port = e.port, user = e.user }
  local permit
  if opts.limiter then
    local why
    permit, why = opts.limiter:acquire()
    if not permit then
      result.ok, result.error, result.message, result.latency = false, "ratelimit", "no permit: " .. tostring(why), 0
      return result
    end
  end
  local t0 = core.monotonic()
  local res, err, code = http.request {
    url = opts.url,
    proxy = proxy,
    allow_plain_http = true, -- through the proxy: see M.check_url
    timeout = opts.timeout,
    connect_timeout = opts.connect_timeout,
    ca_file = opts.ca_file,
    max_body = opts.max_body or 1024 * 1024,
    keep_alive = false, -- one use per proxy: a cache of them would make every new connection scan it
  }
  result.latency = core.monotonic() - t0
  if permit then
    opts.limiter:observe(res)
    permit:release()
  end
  if res then
    result.status = res.status
    if res.status == 407 or (res.status == 401 and e.user and opts.direct_status ~= 401) then
      result.ok, result.error = false, "auth"
      result.message = ("the proxy refused the credentials (%d)"):format(res.status)
    elseif res.status >= 400 then
      result.ok, result.error, result.message = false, "status", ("the target answered %d"):format(res.status)
    else
      result.ok = true
    end
  else
    result.ok = false
    result.error = classify(code, err)
    result.message = scrub(err, e.pass)
  end
  return result
end

--- One line of the progress bar (no proxy details, so no secrets).
---@param done integer
---@param total integer
---@param ok integer
---@return string
function M.progress_line(done, total, ok)
  local width = 30
  local filled = total > 0 and math.floor(width * done / total) or width
  return ("\rchecking [%s%s] %d/%d  ok %d  failed %d"):format(("#"):rep(filled), ("."):rep(width - filled), done,
    total, ok, done - ok)
end

-- Is stderr a terminal?
local function stderr_is_tty()
  local ok, uv = pcall(require, "luv")
  return ok and uv.guess_handle(2) == "tty"
end

--- Is url one that check can fetch through a proxy? Returns true, or false
--- and the reason. https:// anywhere; plain http:// anywhere too, because a
--- check target is reached through the proxy and carries no resi secret
--- (resi.http's HTTPS-only rule protects resi's own API traffic). The reason
--- names the scheme only: a URL may carry a key in its query.
---@param url any
---@return boolean ok
---@return string|nil reason
function M.check_url(url)
  if type(url) ~= "string" then return false, "url is required (the URL to fetch through each proxy)" end
  local scheme = http.split_url(url)
  if not scheme then return false, "url must be an absolute http:// or https:// URL" end
  if scheme ~= "http" and scheme ~= "https" then
    return false, ("url scheme %q is not supported (use https:// or http://)"):format(scheme)
  end
  return true
end

-- May the URL be fetched directly (the preflight)? resi.http's rule:
-- https://, or plain http:// to loopback only.
local function direct_allowed(url)
  local scheme, host = http.split_url(url)
  return scheme == "https" or http.is_loopback(host)
end

-- Raises an option error at the caller's line (outside this file).
local fail = require("resi.caller_error")("resi.proxylist.check")

-- Checks run's options; returns the per-check options.
local function check_options(list, opts)
  local proxylist = require "resi.proxylist"
  if not proxylist.is_list(list) then fail("expects a proxy list") end
  if type(opts) ~= "table" or opts.url == nil then fail("opts.url is required (the URL to fetch through each proxy)") end
  local url_ok, why = M.check_url(opts.url)
  if not url_ok then fail(why) end
  local concurrency = opts.concurrency or 20
  if math.type(concurrency) ~= "integer" or concurrency < 1 then fail("concurrency must be an integer >= 1") end
  local o = { url = opts.url, timeout = opts.timeout or 10, ca_file = opts.ca_file, max_body = opts.max_body,
    limiter = opts.limiter, concurrency = concurrency }
  if o.limiter ~= nil and (type(o.limiter) ~= "table" or not o.limiter._is_limiter) then
    fail("limiter must be a resi.ratelimit limiter")
  end
  if type(o.timeout) ~= "number" or o.timeout <= 0 then fail("timeout must be a positive number of seconds") end
  if opts.on_result ~= nil and type(opts.on_result) ~= "function" then fail("on_result must be a function") end
  o.connect_timeout = math.min(opts.connect_timeout or o.timeout, o.timeout)
  return o
end

-- What the target answers without a proxy: a 401 through a proxy then tells
-- a refused login (tinyproxy 1.11 answers bad credentials with 401, not 407)
-- from a target that wants its own login. Skipped for a plain http:// URL
-- off loopback, which resi never fetches directly.
local function preflight(o)
  if not direct_allowed(o.url) then return nil end
  local direct = http.request { url = o.url, timeout = o.timeout, ca_file = o.ca_file, max_body = 1024 * 1024 }
  return direct and direct.status
end

-- A progress bar on out: draw(false) after each completion is throttled to
-- 10 draws a second, and a draw skipped by the throttle is made up by a
-- ticker task, so the bar never lags behind the completions for long.
-- Returns draw and close (ends the ticker and the bar's line, also when
-- the check is cancelled: the bar then shows how far it got).
local function progress_bar(out, state)
  local last, dirty = -1, false
  local function draw(force)
    local now = core.monotonic()
    if force or now - last >= 0.1 then
      last, dirty = now, false
      out:write(M.progress_line(state.done, state.total, state.ok))
      out:flush()
    else
      dirty = true
    end
  end
  local ticker = task.spawn(function()
    while true do
      task.sleep(0.1)
      if dirty then draw(true) end
    end
  end)
  return draw, function()
    ticker:cancel()
    draw(true)
    out:write("\n")
    out:flush()
  end
end

--- Checks every entry of list; returns the results in list order. Checks run
--- concurrently; opts.on_result(result), when given, is called as each one
--- completes (in completion order), so a caller that cancels the task
--- running check still has every finished result (`resi proxies check` on
--- SIGINT). Cancelling aborts the checks in flight and starts no others.
---@param list resi.proxylist.list
---@param opts {url: string, concurrency?: integer, timeout?: number, connect_timeout?: number, ca_file?: string, progress?: boolean, limiter?: resi.ratelimit.limiter, on_result?: fun(r: table), preflight?: boolean}
---@return table[] results
---@async
function M.run(list, opts)
  local o = check_options(list, opts)
  if opts.preflight ~= false then o.direct_status = preflight(o) end
  local progress = opts.progress
  if progress == nil then progress = stderr_is_tty() end
  local state = { total = #list, done = 0, ok = 0 }
  local draw, close = function() end, function() end
  if progress then draw, close = progress_bar(opts.progress_stream or io.stderr, state) end
  local _ <close> = setmetatable({}, { __close = function() close() end })
  local results, next_i, on_result = {}, 0, opts.on_result
  -- takes the next unchecked entry until none is left
  local function worker()
    while next_i < state.total do
      next_i = next_i + 1
      local r = check_one(list, next_i, o)
      results[r.index] = r
      state.done = state.done + 1
      if r.ok then state.ok = state.ok + 1 end
      if on_result then on_result(r) end
      draw(false)
    end
  end
  local workers = {}
  for w = 1, math.min(o.concurrency, state.total) do workers[w] = worker end
  draw(true)
  if #workers > 0 then task.all(workers) end
  return results
end

return M
