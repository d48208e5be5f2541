--- resi.sim.gateway_http: the HTTP proxy side of a sandbox gateway:
--- CONNECT host:port and absolute-form requests (GET http://host/path),
--- authenticated by Proxy-Authorization: Basic in the provider's dialect
--- (407 with Proxy-Authenticate when missing or refused). An absolute-form
--- request to a loopback upstream is sent on in origin form without the
--- proxy headers and with Connection: close (one request per proxied
--- connection); a request in origin form (GET /) is a direct request to the
--- echo target. Heads are parsed by runtime/http_request.c (http-parser).
local pp = require "resi.proxy_proto_core"
local base64 = require "resi.base64"
local json = require "resi.json"

local M = {}

--- Limits: request line + headers, and a proxied request's body.
M.MAX_HEAD = 16384
M.MAX_BODY = 1024 * 1024

local REASONS = { [400] = "Bad Request", [407] = "Proxy Authentication Required", [413] = "Payload Too Large",
  [431] = "Request Header Fields Too Large", [502] = "Bad Gateway", [505] = "HTTP Version Not Supported" }

-- A whole error response (JSON body naming the reason) that closes.
local function error_response(status, message, provider)
  local body = json.encode { error = message }
  local extra = status == 407 and ('Proxy-Authenticate: Basic realm="resi sim %s"\r\n'):format(provider) or ""
  return ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n%s")
    :format(status, REASONS[status] or "Error", #body, extra, body)
end

--- The user and password of a Proxy-Authorization: Basic value, or nil.
---@param value string|nil
---@return string|nil user
---@return string|nil pass
function M.basic(value)
  local b64 = type(value) == "string" and value:match("^[Bb][Aa][Ss][Ii][Cc]%s+(%S+)%s*$")
  local ok, text = pcall(base64.decode, b64 or "")
  if not b64 or not ok or type(text) ~= "string" then return nil end
  return text:match("^([^:]*):(.*)$")
end

-- The head sent upstream for an absolute-form request: origin form, no
-- proxy headers, the body (de-chunked) with its length, Connection: close.
local function upstream_head(head, path)
  local lines = { ("%s %s HTTP/1.1"):format(head.method, path) }
  local skip = { ["proxy-authorization"] = true, ["proxy-connection"] = true, connection = true,
    ["keep-alive"] = true, ["transfer-encoding"] = true, ["content-length"] = true }
  for name, value in pairs(head.headers) do
    if not skip[name] then lines[#lines + 1] = name .. ": " .. value end
  end
  if #head.body > 0 or head.headers["content-length"] then lines[#lines + 1] = "content-length: " .. #head.body end
  lines[#lines + 1] = "connection: close"
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. head.body
end

-- Refuses with an HTTP error and closes.
local function refuse(c, status, message)
  c:send_close(error_response(status, message, c.gw.provider.name))
end

--- Handles what the client has sent so far (c.buf): waits for a whole head,
--- then authenticates and routes it.
---@param c table  a resi.sim.gateway connection
function M.handle(c)
  local head, used, status = pp.http_head(c.buf, M.MAX_HEAD, M.MAX_BODY)
  if head == nil then
    if #c.buf > M.MAX_HEAD + M.MAX_BODY then refuse(c, 413, "request too large") end
    return
  end
  if head == false then return refuse(c, status or 400, used) end
  c:consume(used)
  c.handler = function() end -- nothing more is parsed here: the route takes over
  if head.url:sub(1, 1) == "/" then return c:echo_direct(head) end
  local connect = head.method == "CONNECT"
  local host, port, path = pp.http_target(head.url, connect)
  if not host then return refuse(c, 400, port) end
  c.target = host
  local user, pass = M.basic(head.headers["proxy-authorization"])
  if not user then return refuse(c, 407, "proxy credentials required (Proxy-Authorization: Basic)") end
  local cred, why = c:authenticate(user, pass, used)
  if not cred then return refuse(c, 407, why) end
  if connect then
    return c:open(host, port, function(ok)
      if not ok then return refuse(c, 502, "cannot connect to " .. host .. ":" .. port) end
      c:send("HTTP/1.1 200 Connection established\r\n\r\n")
      return true
    end)
  end
  if c:is_echo(host, port) then return c:echo_once(head, host, path) end
  c:open(host, port, function(ok)
    if not ok then return refuse(c, 502, "cannot connect to " .. host .. ":" .. port) end
    return true, upstream_head(head, path)
  end)
end

--- The error response a gateway sends for status and message (tests and
--- the echo use it too).
M.error_response = error_response

return M
