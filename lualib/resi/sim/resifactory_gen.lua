--- resi.sim.resifactory_gen: renders the `proxies` value of a POST /proxies
--- answer as JSON text, fast enough for 250,000 lines: each line is built by
--- plain concatenation from pre-escaped pieces (no per-line JSON encoding) and
--- the lines are joined once with table.concat (rotating types, whose lines
--- are all the same, with string.rep).
---
--- Formats (resifactory-api-v1.txt, Output Formats):
---   list      "host:port:user:pass\n..."   (one JSON string)
---   userpass  "user:pass@host:port\n..."   (one JSON string)
---   json      [{"host","port","username","password"}, ...]
--- Sticky types get one session per line: the username carries
--- `-session-<id>` where id is 4 random characters of the batch and the line
--- number in base 36 (4 digits), so ids never repeat within a batch.
local json = require "resi.json"

local M = {}

--- Lines rendered between two yields to the loop.
M.CHUNK = 25000

local B36 = {}
for i = 0, 35 do B36[i] = ("0123456789abcdefghijklmnopqrstuvwxyz"):sub(i + 1, i + 1) end

-- The text of s escaped for the inside of a JSON string (no quotes).
local function inner(s)
  return (json.encode(s):sub(2, -2))
end

-- i (0 .. 36^4-1) as 4 base-36 digits.
local function base36(i)
  return B36[i // 46656 % 36] .. B36[i // 1296 % 36] .. B36[i // 36 % 36] .. B36[i % 36]
end
M.base36 = base36

-- One line of a format from escaped pieces.
local function line(format, host, port, user, pass)
  if format == "list" then return host .. ":" .. port .. ":" .. user .. ":" .. pass end
  if format == "userpass" then return user .. ":" .. pass .. "@" .. host .. ":" .. port end
  return '{"host":"' .. host .. '","port":' .. port .. ',"username":"' .. user .. '","password":"' .. pass .. '"}'
end

--- Renders a batch as the JSON text of the `proxies` field.
--- o.user is the username (without a session part); sticky batches insert
--- `-session-<id>` followed by o.session_suffix (e.g. "-sesstime-30").
--- o.yield, when given, is called every M.CHUNK lines.
---@param o {format: string, host: string, port: integer, user: string, password: string, quantity: integer, sticky: boolean, session_prefix?: string, session_suffix?: string, yield?: fun()}
---@return string
function M.render(o)
  local host, port, pass = inner(o.host), tostring(math.tointeger(o.port) or o.port), inner(o.password)
  local sep = o.format == "json" and "," or "\\n"
  local open, close = '"', '"'
  if o.format == "json" then open, close = "[", "]" end
  local n = o.quantity
  if not o.sticky then
    return open .. string.rep(line(o.format, host, port, inner(o.user), pass), n, sep) .. close
  end
  -- The line around the session id, split at a marker.
  local marker = "\1"
  local template = line(o.format, host, port, inner(o.user .. "-session-") .. marker .. inner(o.session_suffix or ""), pass)
  local head, tail = template:match("^(.-)\1(.*)$")
  head = head .. inner(o.session_prefix or "")
  local lines = {}
  for i = 1, n do
    lines[i] = head .. base36(i - 1) .. tail
    if o.yield and i % M.CHUNK == 0 and i < n then o.yield() end
  end
  return open .. table.concat(lines, sep) .. close
end

return M
