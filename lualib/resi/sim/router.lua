--- resi.sim.router: maps "METHOD /path/:param" to handlers for one provider.
--- A path that exists with another method answers 405; no match is 404 (the
--- provider module shapes both through its own error envelope).
local M = {}

---@class resi.sim.router
local Router = {}
Router.__index = Router

--- An empty router.
function M.new() return setmetatable({ routes = {}, static = {}, nstatic = 0 }, Router) end

--- Adds a route: pattern segments starting with ':' capture one segment.
---@param method string
---@param pattern string e.g. "/users/:user_id/sub-users/:id"
---@param fn fun(req: table, params: table): table
function Router:add(method, pattern, fn)
  local segs = {}
  for s in pattern:gmatch("[^/]+") do segs[#segs + 1] = s end
  local static = true
  for _, s in ipairs(segs) do
    if s:sub(1, 1) == ":" then static = false end
  end
  self.routes[#self.routes + 1] = { method = method, segs = segs, fn = fn, name = method .. " " .. pattern,
    static = static, index = #self.routes + 1 }
  self.static, self.nstatic = {}, 0 -- what a path resolves to may have changed
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
  local by_method = self.static[path]
  if by_method then
    local r = by_method[method]
    if method == "HEAD" then
      local get = by_method.GET
      if get and (not r or get.index < r.index) then r = get end
    end
    if r then return r.fn, {}, r.name end
    return nil, "method_not_allowed"
  end
  local segs = {}
  for s in path:gmatch("[^/]+") do segs[#segs + 1] = s end
  local other_method = false
  for _, r in ipairs(self.routes) do
    local params = match(r, segs)
    if params then
      if r.method == method or (method == "HEAD" and r.method == "GET") then
        if r.static then self:_remember(path, segs) end
        return r.fn, params, r.name
      end
      other_method = true
    end
  end
  if other_method then
    self:_remember(path, segs)
    return nil, "method_not_allowed"
  end
  return nil, "not_found"
end

--- How many paths a router remembers (then it starts over): a client may
--- spell one route many ways ("/a/b", "//a/b/").
M.REMEMBER_MAX = 64

-- Remembers what a path resolves to when only routes without parameters
-- match it: the first such route per method, so find answers the next
-- request for it without splitting the path and trying every route. A
-- path a parameter route matches is not remembered (its params are per
-- request), nor one no route matches.
function Router:_remember(path, segs)
  local by_method = {}
  for _, r in ipairs(self.routes) do
    if match(r, segs) then
      if not r.static then return end
      by_method[r.method] = by_method[r.method] or r
    end
  end
  if self.nstatic >= M.REMEMBER_MAX then self.static, self.nstatic = {}, 0 end
  self.static[path], self.nstatic = by_method, self.nstatic + 1
end

return M
