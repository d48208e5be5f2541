--- resi.sim.gateway_tunnel: copies bytes both ways between a gateway
--- client and its loopback upstream (two luv TCP handles), with bounded
--- buffers: a side stops reading while the other side's write queue holds
--- more than HIGH bytes and starts again once it has drained below LOW, so
--- a slow reader holds back only its own tunnel. End of input on one side
--- half-closes the other; both ended, or an error, closes both.
local M = {}

--- Write-queue bounds in bytes.
M.HIGH = 256 * 1024
M.LOW = 64 * 1024

-- Copies src -> dst; count(n) for each chunk, ended(err) at EOF/error.
local function pump(t, src, dst, count, ended)
  local paused = false
  local reader
  -- starts reading again once dst has drained
  local function drained(err)
    if err then return t:close() end
    if paused and not t.closed and dst:get_write_queue_size() <= M.LOW then
      paused = false
      src:read_start(reader)
    end
  end
  reader = function(err, chunk)
    if t.closed then return end
    if err or not chunk then return ended(err) end
    count(#chunk)
    dst:write(chunk, drained)
    if dst:get_write_queue_size() > M.HIGH then
      paused = true
      src:read_stop()
    end
  end
  src:read_start(reader)
end

---@class resi.sim.gateway_tunnel
local T = {}
T.__index = T

--- Closes both sides (once) and calls on_close.
function T:close()
  if self.closed then return end
  self.closed = true
  for _, h in ipairs({ self.a, self.b }) do
    if not h:is_closing() then h:close() end
  end
  if self.on_close then self.on_close() end
end

-- One direction ended: half-close the other side, close when both have.
function T:ended(dst, err)
  if err then return self:close() end
  self.eof = self.eof + 1
  if self.eof >= 2 then return self:close() end
  if not dst:is_closing() then dst:shutdown(function() end) end
end

--- Pipes client a and upstream b. opts: first (bytes already read from a,
--- sent to b first), on_a (n bytes read from a), on_b (n bytes read from
--- b, i.e. written to a), on_close.
---@param a userdata  luv TCP handle (the client)
---@param b userdata  luv TCP handle (the upstream)
---@param opts table
---@return resi.sim.gateway_tunnel
function M.pipe(a, b, opts)
  local t = setmetatable({ a = a, b = b, eof = 0, on_close = opts.on_close }, T)
  a:read_stop()
  if opts.first and #opts.first > 0 then b:write(opts.first) end
  pump(t, a, b, opts.on_a or function() end, function(err) t:ended(b, err) end)
  pump(t, b, a, opts.on_b or function() end, function(err) t:ended(a, err) end)
  return t
end

return M
