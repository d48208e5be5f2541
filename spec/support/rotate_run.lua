--- spec/support/rotate_run.lua: scripts/rotate.lua as the rotate specs run
--- it (on UnknownProxies, publishing a URL list and a manifest into a
--- directory) and what a run recorded in its store (resi.intent's "rotate"
--- book).
---
---   local rr = require "spec.support.rotate_run"
---   proc.resi(rr.args(dir .. "/store.db", dir, { "--grace", "0" }), { env = env })
---   rr.intents(dir .. "/store.db", "unknownproxies:reseller")["tok_1"].plan.phase
local store = require "resi.store"
local intent = require "resi.intent"

local M = {}

--- The script's absolute path: some runs start in other directories.
M.SCRIPT = require("luv").cwd() .. "/scripts/rotate.lua"

--- The arguments of `resi run scripts/rotate.lua` for UnknownProxies with
--- the store at store_ref (a path or a postgresql:// URL), writing
--- out_dir/proxies.txt (format url) and out_dir/manifest.json, then extra.
---@param store_ref string
---@param out_dir string
---@param extra? string[]
---@return string[]
function M.args(store_ref, out_dir, extra)
  local args = { "run", M.SCRIPT, "--provider", "unknownproxies", "--store", store_ref, "--out", out_dir .. "/proxies.txt",
    "--format", "url", "--manifest", out_dir .. "/manifest.json" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return args
end

--- The rotate intents the store at store_ref holds for account
--- ("provider:name"), by key (the old token's id).
---@param store_ref string
---@param account string
---@return table<string, table>
function M.intents(store_ref, account)
  local db = store.open(store_ref)
  local out = {}
  for _, it in ipairs(intent.open("rotate", { account = account, store = db }):list()) do out[it.key] = it end
  db:close()
  return out
end

return M
