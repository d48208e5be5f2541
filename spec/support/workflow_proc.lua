--- spec/support/workflow_proc.lua: a resi subprocess started in the
--- background, so a spec can watch the sandbox while it runs and kill it
--- (kill -9 by its own pid), plus scratch directories and polling.
---
---   local wp = require "spec.support.workflow_proc"
---   local p = wp.start({ "run", "examples/topup.lua" }, { env = sim:env(), cwd = dir })
---   assert(wp.eventually(function() return effect_seen() end))
---   p:kill("sigkill")
---   local r = p:wait()                  -- {status=, signal=, stdout=, stderr=}
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local M = {}

--- Starts the resi under test with args (opts.env: "K=V" list added to the
--- current environment; opts.cwd) in the background: spec.support.proc's
--- process (p.pid, p:kill(sig), p:wait()). Paths in args are the caller's:
--- make them absolute when cwd is given.
---@param args string[]
---@param opts? {env?: string[], cwd?: string}
---@return spec.proc
function M.start(args, opts)
  return proc.start({ proc.resi_path(), table.unpack(args) }, opts)
end

--- Runs the resi under test to its end (spec.support.proc.resi).
M.run = proc.resi

--- Waits until fn() is true (spec.support.proc's).
M.eventually = proc.eventually

--- A new scratch directory (0700); the caller removes it (M.remove).
---@return string
function M.scratch_dir() return files.dir("resi-workflow") end

--- Removes a scratch directory and everything in it.
M.remove = files.remove_dir

return M
