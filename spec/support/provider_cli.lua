--- spec/support/provider_cli.lua: runs the provider commands (resi up,
--- resi oxy, resi rf) as a user runs them: a separate process, from a
--- scratch working directory, stdin a pipe, with one provider's sandbox
--- account in the environment (the others' variables removed).
---
---   local cli = require("spec.support.provider_cli").start { tool = "up", provider = "unknownproxies", seed = 61 }
---   local r = cli:run({ "tokens", "--json" }, { "UNKNOWNPROXIES_PASSWORD=" })  -- extra env last
---   cli:assert_prints_twice({ "tokens" }, { "ID\tUSERNAME\t...", ... }, { password })
---   cli.sim:state()   cli:stop()
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local M = {}

---@class spec.provider_cli
---@field sim spec.sim   the sandbox (spec.support.sim)
---@field env string[]   the subprocess environment ("K=V")
---@field dir string     the working directory commands run in
---@field tool string    "up" | "oxy" | "rf"
local H = {}
H.__index = H

--- Starts the sandbox (seed, provider) and a scratch directory for `resi TOOL`.
---@param opts {tool: string, provider: string, seed: integer}
---@return spec.provider_cli
function M.start(opts)
  local sim = require("spec.support.sim").start { seed = opts.seed, provider = opts.provider }
  return setmetatable({ sim = sim, env = sim:env { opts.provider }, dir = files.dir("resi-cli-" .. opts.tool),
    tool = opts.tool }, H)
end

--- Runs `resi TOOL ARGS`; extra env entries ("K=V", "K=" removes) come last.
---@param args string[]
---@param extra? string[]
---@return {status: integer, stdout: string, stderr: string}
function H:run(args, extra)
  local argv = { self.tool }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local e = {}
  for _, kv in ipairs(self.env) do e[#e + 1] = kv end
  for _, kv in ipairs(extra or {}) do e[#e + 1] = kv end
  return proc.resi(argv, { env = e, cwd = self.dir, stdin = "" })
end

--- The environment as spec.support.pty wants it (a map; false removes).
---@return table<string, string|false>
function H:pty_env()
  local env = { TERM = "vt100" }
  for _, kv in ipairs(self.env) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    env[k] = v ~= "" and v or false
  end
  return env
end

--- Asserts that `resi TOOL CMD --help` exits 0 with CMD's usage line first
--- and the exit statuses, for every CMD of commands, and `resi TOOL` with
--- none exits 2.
---@param commands string[]
function H:assert_help(commands)
  local assert = require "luassert"
  for _, cmd in ipairs(commands) do
    local r = self:run { cmd, "--help" }
    local usage = ("usage: resi %s %s"):format(self.tool, cmd)
    assert.are.equal(0, r.status, cmd)
    assert.are.equal(usage, r.stdout:sub(1, #usage), cmd)
    assert.truthy(r.stdout:find("Exit status: 0 success", 1, true), cmd)
  end
  assert.are.equal(2, self:run({}).status)
end

--- Asserts that `resi TOOL ARGS`, run twice in a row, exits 0 both times
--- printing exactly the lines of want (each ended by a newline), nothing on
--- stderr, and none of the secrets (as M.assert_no_secret).
---@param args string[]
---@param want string[]
---@param secrets (string|nil)[]
function H:assert_prints_twice(args, want, secrets)
  local assert = require "luassert"
  for _ = 1, 2 do
    local r = self:run(args)
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(table.concat(want, "\n") .. "\n", r.stdout)
    assert.are.equal("", r.stderr)
    M.assert_no_secret(r, secrets)
  end
end

--- Stops the sandbox and removes the scratch directory.
function H:stop()
  self.sim:stop()
  files.remove_dir(self.dir)
end

--- Asserts that none of the secrets (strings; nils skipped) shows on a
--- result's stdout or stderr.
---@param r {stdout: string, stderr: string}
---@param secrets (string|nil)[]
function M.assert_no_secret(r, secrets)
  local assert = require "luassert"
  for i = 1, #secrets do
    local s = secrets[i]
    if s then
      assert.is_nil(r.stdout:find(s, 1, true), "a secret on stdout")
      assert.is_nil(r.stderr:find(s, 1, true), "a secret on stderr")
    end
  end
end

return M
