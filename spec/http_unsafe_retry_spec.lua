-- resi.http never sends a POST or PATCH twice by itself: libcurl re-sends a
-- request whose reused keep-alive connection died before any answer, which
-- for a create the server committed would be a second create.
local http = require "resi.http"
local uv = require "luv"

-- A server that answers GETs with keep-alive and closes the connection,
-- without an answer, on any other request; counts requests by method.
local function dropping_server()
  local seen = { GET = 0, POST = 0, PATCH = 0 }
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(16, function()
    local c = uv.new_tcp()
    server:accept(c)
    local buf = ""
    c:read_start(function(_, data)
      if not data then return c:close() end
      buf = buf .. data
      while true do
        local head_end = buf:find("\r\n\r\n", 1, true)
        if not head_end then return end
        local method = buf:match("^(%u+) ")
        local len = tonumber(buf:sub(1, head_end):match("[Cc]ontent%-[Ll]ength: (%d+)")) or 0
        if #buf < head_end + 3 + len then return end
        buf = buf:sub(head_end + 4 + len)
        seen[method] = (seen[method] or 0) + 1
        if method ~= "GET" then return c:close() end
        c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
      end
    end)
  end))
  return "http://127.0.0.1:" .. server:getsockname().port, seen, function() server:close() end
end

describe("resi.http and unsafe methods", function()
  for _, method in ipairs { "POST", "PATCH" } do
    it(method .. " after a keep-alive GET is sent once when the connection drops without an answer", function()
      local base, seen, stop = dropping_server()
      local res = assert(http.get(base .. "/warm"))
      assert.are.equal(200, res.status)
      local again = assert(http.get(base .. "/warm"))
      assert.is_true(again.reused) -- the connection is cached and reused
      local r, _, code = http.request { method = method, url = base .. "/create", json = { name = "x" } }
      stop()
      assert.is_nil(r)
      assert.are.equal(1, seen[method]) -- libcurl's own retry would make it 2
      assert.truthy(code)
    end)
  end
end)
