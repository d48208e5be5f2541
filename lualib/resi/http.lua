--- resi.http: the HTTP client. Requests run on libcurl's multi interface
--- inside resi's loop; a request suspends its task until the response is in.
---
--- Rules: HTTPS with certificate verification always on; plain http:// only
--- to loopback hosts (127.0.0.0/8, ::1, localhost), or to any host through a
--- proxy when the request says allow_plain_http = true; redirects are not followed
--- unless asked; a status >= 400 is a normal response; a transport failure
--- returns nil, message, code with code one of "timeout", "resolve",
--- "connect", "tls", "reset", "truncated", "proxy", "protocol", "too_large",
--- "error". Cancelling the task aborts the transfer.
local core = require "resi.http_core"
local task = require "resi.task"

--- http.get(url, opts), http.post(url, opts), ... : http.request with that
--- method; a transport failure returns nil, message, code.
---@class resi.http
---@field get async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
---@field head async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
---@field post async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
---@field put async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
---@field patch async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
---@field delete async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
---@field options async fun(url: string, opts?: table): resi.http.response|nil, string|nil, string|nil
local M = {}

--- Default timeouts in seconds (whole transfer, and connect phase).
M.default_timeout = 30
M.default_connect_timeout = 10

-- A CA bundle from the environment, read once: curl's own variables, in
-- curl's order (CURL_CA_BUNDLE first, then SSL_CERT_FILE); empty means unset.
local function env_path(name)
  local v = os.getenv(name)
  if v ~= nil and v ~= "" then return v end
end
local env_ca_file = env_path("CURL_CA_BUNDLE") or env_path("SSL_CERT_FILE")

---@class resi.http.response
---@field status integer
---@field headers table<string, string>  lower-case names (made from the header block on first read)
---@field body string
---@field url string   the URL fetched, as asked for (the last hop's when redirects were followed)
---@field time number  seconds the transfer took
---@field reused boolean  true when no new connection was opened
local Response = {}
Response.__name = "resi.http.response"

-- Methods, and res.headers made from the header block (C's _head) when it
-- is first read: most callers never read the headers of most responses.
function Response.__index(self, key)
  if key == "headers" then
    local headers = core.parse_headers(rawget(self, "_head") or "")
    rawset(self, "headers", headers)
    return headers
  end
  return Response[key]
end
core.set_response_class(Response) -- C sets it on every response table

-- The lines every request sends unless its own headers name them: gzip
-- alone (as Go's net/http asks; every provider API serves it). A request
-- with no headers of its own uses C's kept copies of these lists.
local USER_AGENT = "resi/" .. require("resi").version
local UA_LINE, GZIP_LINE = "User-Agent: " .. USER_AGENT, "Accept-Encoding: gzip"
core.set_default_headers({ UA_LINE }, { UA_LINE, GZIP_LINE }, USER_AGENT)

local json_core -- resi.json_core (its decode: value | nil, message), loaded on first use

--- Decodes the body as JSON; returns nil, err when it is not valid JSON
--- (err as resi.json.safe_decode words it). Decoded once: later calls
--- return the same value (a table the caller changes stays changed for the
--- next caller). The fields it keeps are plain sets (Response has no
--- __newindex), so a response's first decode makes no calls but the decoder's.
---@return any|nil value
---@return string|nil err
function Response:json()
  if rawget(self, "_json_done") then return self._json, self._json_err end
  json_core = json_core or require "resi.json_core"
  local value, err = json_core.decode(self.body)
  self._json, self._json_err, self._json_done = value, err, true
  return value, err
end

function Response:__tostring()
  return ("resi.http.response %d %s (%d bytes)"):format(self.status, self.url, #self.body)
end

local raise = require("resi.caller_error")("resi.http")

-- Raises an argument error that names the option, at the caller's line.
local function bad(field, msg) raise(field .. " " .. msg) end

--- Splits an absolute URL into scheme, host (IPv6 without brackets) and the rest.
---@param url string
---@return string|nil scheme
---@return string|nil host
function M.split_url(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  authority = authority:gsub("^.*@", "") -- userinfo
  local host = authority:match("^%[([^%]]+)%]") or authority:match("^[^:]*")
  return scheme:lower(), host:lower()
end

--- Is host a loopback name or address?
---@param host string
---@return boolean
function M.is_loopback(host)
  if host == "localhost" or host:match("%.localhost$") or host == "::1" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  return a == 127 and b < 256 and c < 256 and d < 256
end

-- Percent-encodes a query component (RFC 3986 unreserved characters stay).
local function escape(s)
  return (tostring(s):gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.escape = escape

--- Encodes a query table: {a=1, b={"x","y"}} -> "a=1&b=x&b=y" (keys sorted,
--- so the same table always gives the same URL).
---@param query table
---@return string
function M.encode_query(query)
  local keys = {}
  for k in pairs(query) do
    if type(k) ~= "string" then bad("query", "keys must be strings, got a " .. type(k)) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = query[k]
    if type(v) == "table" then
      for _, item in ipairs(v) do parts[#parts + 1] = escape(k) .. "=" .. escape(item) end
    elseif type(v) == "boolean" then
      parts[#parts + 1] = escape(k) .. "=" .. (v and "true" or "false")
    elseif v ~= nil then
      parts[#parts + 1] = escape(k) .. "=" .. escape(v)
    end
  end
  return table.concat(parts, "&")
end

-- URLs that passed check_url (the check depends on the URL only); wiped
-- when it grows past URL_CACHE_MAX so that varying URLs cannot grow it forever.
local checked_urls, checked_count, URL_CACHE_MAX = {}, 0, 512

-- Checks the URL's scheme and host against the transport rules. via_proxy
-- (allow_plain_http with a proxy) lets plain http:// reach any host: the
-- rule protects resi's own API traffic (credentials, tokens), and a target
-- fetched through a proxy, such as a proxy check, carries none of it. Such a
-- URL is not cached, so the same URL asked for directly is still refused.
local function check_url(url, via_proxy, asked)
  if checked_urls[url] then return end
  local scheme, host = M.split_url(url)
  if not scheme then bad("url", ("must be an absolute http(s) URL, got %q"):format(url)) end
  if scheme ~= "https" then
    if scheme ~= "http" then bad("url", ("scheme %q is not supported (use https://)"):format(scheme)) end
    if not M.is_loopback(host) then
      if via_proxy then return end
      bad("url", ("refuses plain http:// to %q: use https:// (plain HTTP is allowed only to "
        .. "loopback addresses: 127.0.0.0/8, ::1, localhost%s)"):format(host,
          asked and "; allow_plain_http applies only to requests through a proxy" or ""))
    end
  end
  if checked_count >= URL_CACHE_MAX then checked_urls, checked_count = {}, 0 end
  checked_urls[url], checked_count = true, checked_count + 1
end

-- Turns headers given as a map or as a list of "Name: value" into curl's list,
-- refusing CR/LF (header injection). Returns the list and the lower-case names.
local function header_lines(headers)
  local lines, names = {}, {}
  local function add(name, value)
    name, value = tostring(name), tostring(value)
    if not name:match("^[%w!#$%%&'*+.^_`|~-]+$") then bad("headers", ("has an invalid name %q"):format(name)) end
    if value:find("[\r\n]") then bad("headers", ("%s contains a line break"):format(name)) end
    lines[#lines + 1] = name .. ": " .. value
    names[name:lower()] = true
  end
  if headers then
    for k, v in pairs(headers) do
      if type(k) == "number" then
        local name, value = tostring(v):match("^([^:]+):%s*(.*)$")
        if not name then bad("headers", ("entry %d is not \"Name: value\""):format(k)) end
        add(name, value)
      else
        add(k, v)
      end
    end
  end
  return lines, names
end

-- Converts seconds to whole milliseconds, checking the value.
local function millis(field, seconds)
  if type(seconds) ~= "number" or seconds <= 0 then bad(field, "must be a positive number of seconds") end
  return math.max(1, math.floor(seconds * 1000 + 0.5))
end

-- The standard method names, in either case, upper-cased (no check needed).
local METHODS = {}
for _, m in ipairs { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" } do
  METHODS[m], METHODS[m:lower()] = m, m
end

-- The upper-case method name, checked.
local function method_name(given)
  local method = METHODS[given]
  if method then return method end
  method = given:upper()
  if not method:match("^[A-Z]+$") then bad("method", ("%q is not a method name"):format(given)) end
  return method
end

-- Default timeouts in milliseconds, recomputed only when M.default_* change.
local default_s, default_ms, default_connect_s, default_connect_ms

-- The timeout and connect timeout of opts in milliseconds, checked.
local function timeouts(opts)
  local timeout, connect = opts.timeout, opts.connect_timeout
  local ms, connect_ms
  if timeout == nil then
    timeout = M.default_timeout
    if timeout ~= default_s then default_s, default_ms = timeout, millis("timeout", timeout) end
    ms = default_ms
  else
    ms = millis("timeout", timeout)
  end
  if connect == nil then
    connect = M.default_connect_timeout
    if connect ~= default_connect_s then
      default_connect_s, default_connect_ms = connect, millis("connect_timeout", connect)
    end
    connect_ms = default_connect_ms
  else
    connect_ms = millis("connect_timeout", connect)
  end
  return ms, connect_ms
end

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- Runs one transfer in the current task and waits for it. The arguments go
-- to C by position (no options table), the transfer is its own on_cancel
-- (calling it cancels), and the response comes from C with its metatable
-- set: no closure or table here per request.
local function perform(opts, url, method, lines, body, timeout_ms, connect_timeout_ms)
  local t, token = task.prepare("resi.http.request")
  local transfer = core.request(t, token, url, method, lines, body, timeout_ms, connect_timeout_ms, opts.proxy,
    opts.ca_file or env_ca_file, opts.gzip ~= false, opts.max_body, opts.keep_alive == false)
  return task.suspend(t, transfer)
end

-- Drops Authorization and Cookie headers (before a redirect to another host).
local function strip_credentials(lines)
  local kept = {}
  for _, line in ipairs(lines) do
    local name = line:match("^([^:]+)"):lower()
    if name ~= "authorization" and name ~= "cookie" and name ~= "proxy-authorization" then
      kept[#kept + 1] = line
    end
  end
  return kept
end

--- Resolves a Location header against the URL it came from.
---@param base string
---@param ref string
---@return string
function M.resolve_url(base, ref)
  if ref:match("^%a[%w+.-]*://") then return ref end
  local scheme, authority, path = base:match("^(%a[%w+.-]*://)([^/?#]*)([^?#]*)")
  if ref:sub(1, 2) == "//" then return scheme .. ref:sub(3) end
  if ref:sub(1, 1) == "/" then return scheme .. authority .. ref end
  if ref:sub(1, 1) == "?" then return scheme .. authority .. path .. ref end
  local dir = path:match("^(.*/)") or "/"
  return scheme .. authority .. dir .. ref
end

-- Sends a request: opts with url and method given apart (the verb functions
-- pass their arguments without copying opts). See M.request.
local function request(opts, url, method)
  if type(url) ~= "string" then bad("url", "is required (a string)") end
  local query = opts.query
  if query ~= nil then
    if type(query) ~= "table" then bad("query", "must be a table") end
    local q = M.encode_query(query)
    if q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  end
  local via_proxy = opts.allow_plain_http == true and type(opts.proxy) == "string" and opts.proxy ~= ""
  check_url(url, via_proxy, opts.allow_plain_http)
  method = method_name(method or "GET")
  local body, headers, lines = opts.body, opts.headers, nil
  if headers ~= nil or body ~= nil or opts.json ~= nil then
    local names
    lines, names = header_lines(headers)
    if opts.json ~= nil then
      if body ~= nil then bad("json", "and body cannot both be given") end
      body = require("resi.json").encode(opts.json)
      if not names["content-type"] then lines[#lines + 1] = "Content-Type: application/json" end
    elseif body ~= nil and type(body) ~= "string" then
      bad("body", "must be a string (use json= for tables)")
    end
    if body and not names["expect"] then lines[#lines + 1] = "Expect:" end -- no 100-continue round trip
    if not names["user-agent"] then lines[#lines + 1] = UA_LINE end
    if opts.gzip ~= false and not names["accept-encoding"] then lines[#lines + 1] = GZIP_LINE end
  end
  local follow = opts.follow
  local max_redirects = follow == true and 10 or (type(follow) == "number" and follow) or 0
  local timeout_ms, connect_timeout_ms = timeouts(opts)
  if max_redirects <= 0 then return perform(opts, url, method, lines, body, timeout_ms, connect_timeout_ms) end
  local res, err, code = perform(opts, url, method, lines, body, timeout_ms, connect_timeout_ms)
  local hops = 0
  while res and REDIRECT[res.status] and res.headers.location do
    hops = hops + 1
    if hops > max_redirects then
      return nil, ("more than %d redirects (last to %s)"):format(max_redirects, res.headers.location), "protocol"
    end
    local from = url
    url = M.resolve_url(from, res.headers.location)
    check_url(url, via_proxy)
    if lines and select(2, M.split_url(url)) ~= select(2, M.split_url(from)) then
      lines = strip_credentials(lines) -- never hand credentials to another host
    end
    if res.status == 303 or ((res.status == 301 or res.status == 302) and method == "POST") then
      method, body = "GET", nil
    end
    res, err, code = perform(opts, url, method, lines, body, timeout_ms, connect_timeout_ms)
  end
  return res, err, code
end

--- Sends a request and waits for the response. Redirects are followed only
--- with follow=true (up to 10) or follow=N, and every hop obeys the same URL
--- rules (so a redirect can never downgrade to plain HTTP off loopback).
--- allow_plain_http = true, together with proxy=, allows http:// to any host
--- (a target fetched through a proxy, e.g. a proxy check, carries no resi
--- secret); without proxy= it changes nothing. keep_alive = false closes the
--- connection after the response instead of keeping it for the next request:
--- for one-off connections (a proxy check: each proxy and its credentials are
--- used once, and a cache full of connections no later request can use costs
--- every new one a scan). Responses may come gzip-compressed: the request
--- says `Accept-Encoding: gzip` (gzip alone, as Go's net/http does) and the
--- body is handed back decoded; gzip = false sends no Accept-Encoding.
---@param opts {method?: string, url: string, headers?: table, query?: table, body?: string, json?: any, timeout?: number, connect_timeout?: number, proxy?: string, allow_plain_http?: boolean, follow?: boolean|integer, max_body?: integer, gzip?: boolean, ca_file?: string, keep_alive?: boolean}
---@return resi.http.response|nil res
---@return string|nil err
---@return string|nil code
---@async
function M.request(opts)
  if type(opts) ~= "table" then bad("request", "expects a table of options") end
  return request(opts, opts.url, opts.method)
end

local NO_OPTIONS = setmetatable({}, { __newindex = function() error("resi.http: internal: NO_OPTIONS is read-only") end })

-- http.get(url, opts), http.post(url, opts), ...: request with a method.
for _, method in ipairs { "get", "head", "post", "put", "patch", "delete", "options" } do
  local upper = method:upper()
  M[method] = function(url, opts)
    if opts == nil then
      opts = NO_OPTIONS
    elseif type(opts) ~= "table" then
      bad(method, "options must be a table")
    end
    return request(opts, url, upper)
  end
end

--- Counters for tests and debugging: transfers in flight, sockets opened,
--- transfers started since the start.
---@return {in_flight: integer, sockets_opened: integer, transfers_started: integer}
function M.stats() return core.stats() end

M.curl_version = core.curl_version

return M
