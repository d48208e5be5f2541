--- spec/support/sockets.lua: loopback peers that misbehave on purpose, for
--- transport-failure specs: a closed port, a listener that never answers, one
--- that closes at once, one that sends a truncated response, one that keeps
--- connections alive until told to drop them; and an echo upstream.
local uv = require "luv"

local M = {}

-- Binds a TCP server on 127.0.0.1 with a free port (backlog default 128);
-- returns server, port.
local function listen(on_client, backlog)
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(backlog or 128, function(err)
    if err then return end
    local client = uv.new_tcp()
    server:accept(client)
    on_client(client)
  end))
  return server, server:getsockname().port
end

-- Closes every connection in clients that is not closing already.
local function close_all(clients)
  for _, c in ipairs(clients) do if not c:is_closing() then c:close() end end
end

--- A port on 127.0.0.1 with nothing listening.
---@return integer
function M.closed_port()
  local s = uv.new_tcp()
  assert(s:bind("127.0.0.1", 0))
  local port = s:getsockname().port
  s:close()
  return port
end

--- A listener that accepts connections and never answers.
--- Returns port and a stop function.
function M.silent()
  local clients = {}
  local server, port = listen(function(c) clients[#clients + 1] = c end)
  return port, function()
    close_all(clients)
    server:close()
  end
end

--- A listener that closes every connection as soon as it is accepted.
function M.slammer()
  local server, port = listen(function(c) c:close() end)
  return port, function() server:close() end
end

--- A listener that reads the request, then sends `response` and closes;
--- on_request, if given, is called with the request's bytes read so far.
---@param response string
---@param on_request? fun(request: string)
function M.scripted(response, on_request)
  local server, port = listen(function(c)
    c:read_start(function(err, data)
      if data and data:find("\r\n\r\n", 1, true) then
        if on_request then on_request(data) end
        c:read_stop()
        c:write(response, function() c:close() end)
      elseif not data then
        c:close()
      end
    end)
  end)
  return port, function() server:close() end
end

--- A keep-alive listener that answers every request with `response` and
--- keeps the connection open. Returns port, drop (closes the connections it
--- has accepted, as a server dropping idle ones) and a stop function.
function M.keep_alive(response)
  local clients = {}
  local server, port = listen(function(c)
    clients[#clients + 1] = c
    c:read_start(function(_, data)
      if data and data:find("\r\n\r\n", 1, true) then
        c:write(response)
      elseif not data and not c:is_closing() then
        c:close()
      end
    end)
  end)
  return port, function() close_all(clients) end, function()
    close_all(clients)
    server:close()
  end
end

--- A raw client: sends bytes to 127.0.0.1:port (then shuts its side down
--- when half_close) and returns everything read until the peer closes, and
--- the read error if any. For bytes no well-behaved client would send.
---@param port integer
---@param bytes string
---@param half_close? boolean
---@return string|nil, string|nil
function M.exchange(port, bytes, half_close)
  return resi.await(function(done)
    local sock = uv.new_tcp()
    local chunks = {}
    sock:connect("127.0.0.1", port, function(err)
      if err then sock:close() return done(nil, err) end
      sock:read_start(function(rerr, data)
        if data then
          chunks[#chunks + 1] = data
        else
          sock:close()
          done(table.concat(chunks), rerr)
        end
      end)
      sock:write(bytes)
      if half_close then sock:shutdown() end
    end)
  end)
end

--- An upstream that echoes every byte back on each connection, with room
--- for thousands of connections at once. Returns port and a stop function.
function M.echo()
  local clients = {}
  local server, port = listen(function(c)
    clients[#clients + 1] = c
    c:read_start(function(err, chunk)
      if err or not chunk then
        if not c:is_closing() then c:close() end
        return
      end
      c:write(chunk)
    end)
  end, 2048)
  return port, function()
    close_all(clients)
    server:close()
  end
end

return M
