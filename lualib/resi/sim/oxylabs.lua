--- resi.sim.oxylabs: the sandbox's oxylabs API. (Being written: answers 404 for now.)
local M = {}
local P = {}
P.__index = P
function P:error(status, code, message) return { status = status, json = { error = { code = code, message = message } } } end
function P:handle(req, path) return self:error(404, "not_found", "not implemented yet: " .. path) end
function P:tick(now, dt) end
function P:set_usage(body) return false, { message = "not implemented yet" } end
function P:snapshot() return {} end
function M.new(world, accounts) return setmetatable({ world = world }, P) end
return M
