#!/usr/bin/env resi
--- scripts/rotate.lua: the command line of resi.rotate (token rotation:
--- replace every token at a share of its data limit, publish the live
--- credentials, retire the old tokens after a grace period). Everything
--- it does is the library's; this file reads options and prints.
local argparse = require "resi.argparse"
local rotate = require "resi.rotate"

local help = [[
usage: resi run rotate [OPTIONS]     (the bundled scripts/rotate.lua)

Rotates every token at or above a share of its data limit: creates a
replacement with the same parameters, writes the live credentials out, and
deletes the old token after a grace period on a later run. Crash-safe: what
a run is about to do is recorded in resi's store first, and the next run
(from any directory, by cron or resi jobs) finishes it without repeating it.

Options:
  --accounts FILE     accounts as JSON (the shape usage_report.lua and resi sim
                      --accounts read); default: one account per provider whose
                      credentials are in the environment (see the README)
  --provider NAME     only these providers (repeatable or comma-separated)
  --threshold X       share of the limit that triggers a rotation (default 0.9)
  --grace MINUTES     how long an old token keeps working after its
                      replacement is published (default 60)
  --keep-days DAYS    how long a finished rotation stays in the store once its
                      old token is gone (default 30)
  --out FILE          write every live credential as a proxy list to FILE (0600)
  --format FMT        list | userpass | url | json | hostport | proxychains
                      (default list)
  --manifest FILE     write every live credential as a JSON manifest to FILE
  --exec CMD          run CMD (with /bin/sh) once the files are in place, e.g.
                      'systemctl reload squid'; its failure fails the run
  --adopt             give live sub-users whose password resi does not know a
                      new one (their old password stops working)
  --gateway P=H:PORT  the proxy gateway written for provider P (default: the
                      provider's own, from resi.providers.gateways)
  --store PATH        resi's store (default $RESI_STORE, else
                      $XDG_STATE_HOME/resi/resi.db); one run at a time per account
  --state FILE        an old rotation journal to import into the store (default:
                      ./rotate-state.json when it exists); it is renamed FILE.imported
  --wait SECONDS      when another run holds an account, wait this long (default 0)
  --timeout SECONDS   per API call (default 30)
  --dry-run           show what would happen, with the usernames a real run
                      would create; change nothing
Exit status 1 when a step failed (the next run picks up where this one
stopped) or a file cannot be used; 2 for a bad option.]]

local SPEC = {
  provider = { type = "list" }, accounts = { type = "string" }, threshold = { type = "number", default = 0.9 },
  grace = { type = "number", default = 60 }, state = { type = "string" }, store = { type = "string" },
  out = { type = "string" }, manifest = { type = "string" }, gateway = { type = "list" }, exec = { type = "string" },
  format = { type = "string", default = "list",
    choices = { list = true, userpass = true, url = true, json = true, hostport = true, proxychains = true } },
  ["dry-run"] = { type = "flag" }, adopt = { type = "flag" }, timeout = { type = "number", default = 30 },
  wait = { type = "number", default = 0 }, ["keep-days"] = { type = "number" },
}

-- The --gateway options as {provider = "host:port"}.
local function gateways(list)
  local out = {}
  for _, g in ipairs(list) do
    local p, hp = g:match("^(%w+)=(.+:%d+)$")
    if not p then argparse.usage_error(("--gateway %q: expected PROVIDER=HOST:PORT"):format(g)) end
    out[p] = hp
  end
  return out
end

-- The whole run: a user error (a file that cannot be used, a held lock)
-- is one line on stderr and exit status 1.
local function main(opts)
  if opts.threshold <= 0 or opts.threshold > 1 then argparse.usage_error("--threshold must be in (0, 1]") end
  if opts.grace < 0 then argparse.usage_error("--grace must be >= 0 minutes") end
  if opts.keep_days and opts.keep_days < 0 then argparse.usage_error("--keep-days must be >= 0 days") end
  local journal = opts.state
  if not journal and require("resi.fs").exists("rotate-state.json") then journal = "rotate-state.json" end
  local ok, s = pcall(rotate.run, {
    accounts_file = opts.accounts, providers = #opts.provider > 0 and opts.provider or nil,
    threshold = opts.threshold, grace = opts.grace, keep_days = opts.keep_days, out = opts.out, format = opts.format,
    manifest = opts.manifest, exec = opts.exec, adopt = opts.adopt, dry_run = opts.dry_run, wait = opts.wait, store = opts.store,
    journal = journal, timeout = opts.timeout, gateways = gateways(opts.gateway),
  })
  if not ok then
    if type(s) == "table" and s.user then
      io.stderr:write("rotate.lua: ", s.message, "\n")
      return require("resi.task").set_exit_status(1)
    end
    error(s, 0)
  end
  print(s.message)
  if not s.ok then require("resi.task").set_exit_status(1) end
end

argparse.run(resi.args, SPEC, help, main)
