--- resi.pg.client: a PostgreSQL handle that reconnects. It connects on first
--- use; after a "connection" failure the next call connects again, waiting
--- first 0.2 s, doubling up to 5 s while connecting keeps failing (each wait
--- jittered by +-25 %, so daemons that lost the same server do not come back
--- in step). A query that failed with "connection" is not retried: it may
--- have committed, and only the caller knows whether repeating it is safe.
--- Made through pg.client(url, opts) (lualib/resi/pg.lua).
local task = require "resi.task"
local fifo = require "resi.pg.fifo"
local uv = require "luv"

local M = {}

local FIRST_DELAY, MAX_DELAY = 0.2, 5

---@class resi.pg.client
local Client = {}
Client.__index = Client
Client.__name = "resi.pg.client"

--- A new handle (no connection yet). pg is the resi.pg module.
---@param pg table
---@param url string
---@param opts? {timeout?: number}
---@return resi.pg.client
function M.new(pg, url, opts)
  if type(url) ~= "string" then error("resi.pg: client: url must be a string, got " .. type(url), 3) end
  return setmetatable({
    pg = pg, url = url, opts = opts, conn = nil, delay = 0, next_at = 0,
    lock = fifo.new(), closed = false, where = pg.describe(url),
  }, Client)
end

-- Seconds on the monotonic clock.
local function now() return uv.hrtime() / 1e9 end

-- Records a lost or failed connection: the next connect waits the backoff.
local function lost(self)
  if self.conn then self.conn:close() end
  self.conn = nil
  self.delay = self.delay == 0 and FIRST_DELAY or math.min(MAX_DELAY, self.delay * 2)
  self.next_at = now() + self.delay * (0.75 + 0.5 * math.random())
end

-- Connects (after the backoff) unless connected; one task connects at a time.
local function connect(self)
  self.lock:acquire("resi.pg.client")
  local ok, conn, msg, code = pcall(function()
    if self.conn and self.conn:ok() then return self.conn end
    if self.conn then lost(self) end
    local wait = self.next_at - now()
    if wait > 0 then task.sleep(wait) end
    local c, m, k = self.pg.connect(self.url, self.opts)
    if not c then
      lost(self)
      return nil, m, k
    end
    self.conn = c
    return c
  end)
  self.lock:release()
  if not ok then error(conn, 0) end
  return conn, msg, code
end

-- The live connection, or nil, message, code.
local function connection(self)
  if self.closed then return nil, "resi.pg: the client is closed", "connection" end
  local c = self.conn
  if c and c:ok() then return c end
  return connect(self)
end

-- Passes the results of a call on c on, noting a lost connection and a success.
local function after(self, c, res, ...)
  if not c:ok() then lost(self)
  elseif res ~= nil then self.delay = 0 end
  return res, ...
end

--- conn:query on the current connection (see resi.pg).
---@async
---@param sql string
---@param params? any[]
---@param opts? {timeout?: number}
---@return resi.pg.result|nil result
---@return string|nil message
---@return string|nil code
function Client:query(sql, params, opts)
  local c, msg, code = connection(self)
  if not c then return nil, msg, code end
  return after(self, c, c:query(sql, params, opts))
end

--- conn:transaction on the current connection (see resi.pg); fn gets that
--- connection.
---@async
---@param fn fun(conn: resi.pg.conn, ...): ...
---@param ... any passed to fn after the connection
---@return any ...
function Client:transaction(fn, ...)
  local c, msg, code = connection(self)
  if not c then return nil, msg, code end
  local r = table.pack(pcall(c.transaction, c, fn, ...))
  if not r[1] then
    if not c:ok() then lost(self) end
    error(r[2], 0)
  end
  return after(self, c, table.unpack(r, 2, r.n))
end

--- Is there a live connection now (no round trip)?
---@return boolean
function Client:ok() return not self.closed and self.conn ~= nil and self.conn:ok() end

--- Closes the connection; later calls fail with "connection".
function Client:close()
  self.closed = true
  if self.conn then self.conn:close() end
  self.conn = nil
end

Client.__close = Client.close

function Client:__tostring()
  return ("resi.pg.client %s%s"):format(self.where, self:ok() and "" or " (not connected)")
end

return M
