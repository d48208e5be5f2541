--- spec/support/nginx.lua: Debian's nginx, started on free loopback ports for
--- the HTTP specs (a real server nobody here wrote), with a throw-away CA and
--- server certificate made by the openssl command line for the HTTPS specs.
---
--- Routes: /small.json, /gzip.json (compressible), /big.bin (2 MiB),
--- /echo (proxied to /ok so nginx reads the body; request facts come back in
--- X-Echo-* headers), /conn (nginx's connection serial and request count on
--- it), /status/404, /redirect (302 to /small.json), /redirect-out (302 to a
--- plain-http non-loopback host), /slow (1 KiB at 200 bytes/s), /bad.json.
local uv = require "luv"
local resi = require "resi"
local proc = require "spec.support.proc"
local sockets = require "spec.support.sockets"

local M = {}

local SMALL = '{"token":"tk_8f3a","dataLimit":5000000000,"used":123456789012345,"allowedPools":[],"ok":true}'

-- Writes a file, raising on failure.
local function write(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  f:close()
end

-- Runs a command and raises with its stderr if it fails.
local function must(argv)
  local r = proc.run(argv)
  if r.status ~= 0 then error(table.concat(argv, " ") .. " failed: " .. r.stderr) end
  return r
end

-- A CA and a server certificate for 127.0.0.1 and localhost, signed by it.
local function make_certs(dir)
  must { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    "-subj", "/CN=resi test CA", "-keyout", dir .. "/ca.key", "-out", dir .. "/ca.pem" }
  must { "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
    "-keyout", dir .. "/server.key", "-out", dir .. "/server.csr" }
  write(dir .. "/san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  must { "openssl", "x509", "-req", "-in", dir .. "/server.csr", "-CA", dir .. "/ca.pem",
    "-CAkey", dir .. "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir .. "/san.ext",
    "-out", dir .. "/server.pem" }
end

local CONF = [[
worker_processes 1;
daemon off;
pid DIR/nginx.pid;
error_log DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path DIR/tmp; proxy_temp_path DIR/tmp; fastcgi_temp_path DIR/tmp;
  uwsgi_temp_path DIR/tmp; scgi_temp_path DIR/tmp;
  keepalive_requests 100000;
  absolute_redirect off;
  keepalive_timeout 75s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:PORT;
    listen 127.0.0.1:TLSPORT ssl http2;
    ssl_certificate DIR/server.pem;
    ssl_certificate_key DIR/server.key;
    root DIR/www;
    location = /small.json { default_type application/json; }
    location = /gzip.json { default_type application/json; gzip on; gzip_min_length 1; gzip_types application/json; }
    location = /bad.json { default_type application/json; return 200 '{"truncated": [1, 2'; }
    location = /ok { return 200 "ok"; }
    location = /echo {
      client_body_buffer_size 1m;
      proxy_pass http://127.0.0.1:PORT/ok;
      add_header X-Echo-Method $request_method always;
      add_header X-Echo-Query $args always;
      add_header X-Echo-Body $request_body always;
      add_header X-Echo-Content-Type $content_type always;
      add_header X-Echo-Test $http_x_test always;
      add_header X-Echo-Authorization $http_authorization always;
      add_header X-Echo-User-Agent $http_user_agent always;
      add_header X-Echo-Accept-Encoding $http_accept_encoding always;
    }
    location = /conn { return 200 "$connection $connection_requests"; }
    location = /status/404 { default_type application/json; return 404 '{"error":"not found"}'; }
    location = /redirect { return 302 /small.json; }
    location = /redirect-out { return 302 http://example.com/; }
    location = /redirect-loop { return 302 /redirect-loop; }
    location = /post-redirect { return 302 /echo; }
    location = /slow { limit_rate 200; }
  }
}
]]

--- Starts nginx; returns {url=, https_url=, ca_file=, dir=, stop=fn}.
function M.start()
  local dir = must({ "mktemp", "-d", "/tmp/resi-nginx.XXXXXX" }).stdout:gsub("%s+$", "")
  must { "mkdir", "-p", dir .. "/www", dir .. "/tmp" }
  must { "chmod", "755", dir, dir .. "/www" } -- nginx's workers run as nobody
  make_certs(dir)
  write(dir .. "/www/small.json", SMALL)
  local items = {}
  for i = 1, 2000 do items[i] = ('{"id":%d,"name":"proxy-%d","port":%d}'):format(i, i, 10000 + i) end
  write(dir .. "/www/gzip.json", "[" .. table.concat(items, ",") .. "]")
  write(dir .. "/www/big.bin", ("0123456789abcdef"):rep(131072))
  write(dir .. "/www/slow", ("x"):rep(1024))
  local port, tls_port = sockets.closed_port(), sockets.closed_port()
  local conf = CONF:gsub("DIR", dir):gsub("TLSPORT", tostring(tls_port)):gsub("PORT", tostring(port))
  write(dir .. "/nginx.conf", conf)

  local handle
  handle = uv.spawn("nginx", { args = { "-c", dir .. "/nginx.conf", "-p", dir }, stdio = { nil, nil, 2 } },
    function() handle:close() end)
  assert(handle, "cannot start nginx (apt-get install nginx-light)")
  local server = {
    url = "http://127.0.0.1:" .. port,
    https_url = "https://127.0.0.1:" .. tls_port,
    ca_file = dir .. "/ca.pem",
    dir = dir,
    small = SMALL,
  }
  -- wait until it accepts connections
  local http = require "resi.http"
  for _ = 1, 200 do
    local res = http.get(server.url .. "/ok", { timeout = 1 })
    if res and res.status == 200 then break end
    resi.sleep(0.025)
  end
  function server.stop()
    if not handle:is_closing() then handle:kill("sigterm") end
    for _ = 1, 200 do
      if handle:is_closing() then break end
      resi.sleep(0.01)
    end
    proc.run { "rm", "-rf", dir }
  end
  return server
end

--- nginx for the enclosing describe block (spec.support.block): started
--- in its setup, stopped in its teardown. Returns the server table, whose
--- fields (url, https_url, ...) are there once setup has run.
---@return table
function M.for_block()
  return require("spec.support.block").resource(M.start, function(server) server.stop() end)
end

return M
