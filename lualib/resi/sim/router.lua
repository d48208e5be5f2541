--- resi.sim.router: maps "METHOD /path/:param" to handlers for one provider.
--- A path that exists with another method answers 405; no match is 404 (the
--- provider module shapes both through its own error envelope).
local M = {}

---@class resi.sim.router
local Router = {}
Router.__index = Router

--- An empty router.
function M.new() return setmetatable({ routes = {} }, Router) end

--- Adds a route: pattern segments starting with ':' capture one segment.
---@param method string
---@param pattern string e.g. "/users/:user_id/sub-users/:id"
---@param fn fun(req: table, params: table): table
function Router:add(method, pattern, fn)
  local segs = {}
  for s in pattern:gmatch("[^/]+") do segs[#segs + 1] = s end
  self.routes[#self.routes + 1] = { method = method, segs = segs, fn = fn, name = method .. " " .. pattern }
end

-- Matches path segments against a route; the captured params or nil.
local function match(route, segs)
  if #route.segs ~= #segs then return nil end
  local params = {}
  for i, s in ipairs(route.segs) do
    if s:sub(1, 1) == ":" then params[s:sub(2)] = segs[i]
    elseif s ~= segs[i] then return nil end
  end
  return params
end

--- Finds the route for a method and path (relative to the provider's base).
--- Returns fn, params, route name; or nil, "not_found" | "method_not_allowed".
---@param method string
---@param path string
---@return function|nil fn
---@return table|string params  or "not_found" | "method_not_allowed"
---@return string|nil route
function Router:find(method, path)
  local segs = {}
  for s in path:gmatch("[^/]+") do segs[#segs + 1] = s end
  local other_method = false
  for _, r in ipairs(self.routes) do
    local params = match(r, segs)
    if params then
      if r.method == method or (method == "HEAD" and r.method == "GET") then return r.fn, params, r.name end
      other_method = true
    end
  end
  return nil, other_method and "method_not_allowed" or "not_found"
end

return M
