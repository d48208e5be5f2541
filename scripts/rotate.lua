#!/usr/bin/env resi
--- scripts/rotate.lua: replaces every token that has used `--threshold` of
--- its data (default 0.9) with a new one with the same parameters, publishes
--- the new credentials (a proxy-list file and/or a JSON manifest, written
--- atomically), and deletes the old token after a grace period on a later run.
---
--- Crash-safe and idempotent: before creating a replacement it records its
--- intent (with the username and password it will use) in the state file;
--- a later run that finds an intent looks the replacement up by username
--- before it creates anything, so one token never gets two replacements and
--- a credential that was created is never lost. Works with any provider of
--- resi.providers that manages tokens (UnknownProxies, Oxylabs).
local argparse = require "resi.argparse"
local fs = require "resi.fs"
local json = require "resi.json"
local log = require "resi.log"
local providers = require "resi.providers"
local http = require "resi.http"

local help = [[
usage: resi run scripts/rotate.lua [OPTIONS]

Rotates every token at or above a share of its data limit: creates a
replacement with the same parameters, writes the new credentials out, and
deletes the old token after a grace period on a later run.

Options:
  --provider NAME     unknownproxies, oxylabs (repeatable or comma-separated;
                      default: every provider whose credentials are set)
  --threshold X       share of the limit that triggers a rotation (default 0.9)
  --grace MINUTES     how long an old token keeps working after its
                      replacement is published (default 60)
  --state FILE        the rotation journal (default rotate-state.json, mode 0600);
                      one run at a time holds FILE.lock
  --wait SECONDS      when another run holds the journal, wait this long for
                      it (default 0: exit 1 at once)
  --out FILE          write every live credential as a proxy list to FILE
  --format FMT        list | userpass | url | json | hostport | proxychains
                      (default list)
  --manifest FILE     write every live credential as a JSON manifest to FILE
  --gateway P=H:PORT  the proxy gateway written for provider P (defaults:
                      unknownproxies=us.reserve.unknownproxies.com:10000,
                      oxylabs=pr.oxylabs.io:7777)
  --timeout SECONDS   per API call (default 30); a create that times out is
                      looked up before it is tried again
  --dry-run           show what would happen; change nothing
Credentials and API URLs come from the environment (UNKNOWNPROXIES_USERNAME,
OXYLABS_USERNAME, ..., RESI_*_URL to use resi sim). Exit status 1 when a
step failed (the next run picks up where this one stopped).]]

local SPEC = {
  provider = { type = "list" }, threshold = { type = "number", default = 0.9 },
  grace = { type = "number", default = 60 }, state = { type = "string", default = "rotate-state.json" },
  out = { type = "string" }, manifest = { type = "string" }, gateway = { type = "list" },
  format = { type = "string", default = "list",
    choices = { list = true, userpass = true, url = true, json = true, hostport = true, proxychains = true } },
  ["dry-run"] = { type = "flag" }, timeout = { type = "number", default = 30 }, wait = { type = "number", default = 0 },
}

local GATEWAYS = { unknownproxies = "us.reserve.unknownproxies.com:10000", oxylabs = "pr.oxylabs.io:7777" }
local ENV = { unknownproxies = "UNKNOWNPROXIES_USERNAME", oxylabs = "OXYLABS_USERNAME" }
local ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

-- A random string of n characters from charset.
local function random_string(n, charset)
  local out = {}
  for i = 1, n do
    local k = math.random(#charset)
    out[i] = charset:sub(k, k)
  end
  return table.concat(out)
end

-- The username a replacement will get, in the provider's rules.
local function new_username(provider)
  if provider == "unknownproxies" then return random_string(8, ALNUM) end -- exactly 8
  return "r" .. random_string(11, "abcdefghijklmnopqrstuvwxyz0123456789") -- letters, digits, _
end

-- Reads the journal; a new one when the file does not exist.
local function load_state(path)
  local text = fs.read(path)
  if not text then return { version = 1, run = 0, rotations = {} } end
  local st, err = json.safe_decode(text)
  if not st then error(("%s: %s (fix or move the file; it records rotations in progress)"):format(path, err), 0) end
  if type(st.rotations) ~= "table" then error(path .. ": rotations must be an object", 0) end
  st.run = math.tointeger(st.run) or 0
  return st
end

local state_path, state, dry_run

-- Writes the journal atomically (mode 0600: it holds new passwords).
local function save()
  if dry_run then return end
  fs.write_atomic(state_path, json.encode(state, { sort_keys = true, indent = 2 }) .. "\n", 384)
end

-- "12.3%" for a share.
local function pct(x) return ("%.1f%%"):format(x * 100) end

-- Creates the replacement recorded in rotation r (intent already saved).
local function create_replacement(acct, r)
  local new = acct:create_token { limit_bytes = r.limit_bytes, unlimited = r.unlimited or nil, hours = r.hours,
    username = r.new_username, password = r.new_password, like = r.like }
  r.new_id, r.new_password = new.id, new.password or r.new_password
  r.phase, r.created_at = "created", os.time()
  save()
  log.info("rotate: created replacement", { provider = r.provider, old = r.old_id, new = r.new_id, username = r.new_username })
end

-- Token ids already claimed as some rotation's replacement.
local function claimed_ids()
  local ids = {}
  for _, r in pairs(state.rotations) do if r.new_id then ids[r.provider .. ":" .. r.new_id] = true end end
  return ids
end

-- Finishes rotations whose create may or may not have happened.
local function reconcile(acct, counts)
  for _, r in pairs(state.rotations) do
    if r.provider == acct.name and r.phase == "intent" then
      local found = acct:find(r.new_username)
      if found and claimed_ids()[acct.name .. ":" .. found.id] then
        -- the name belongs to another rotation's replacement: never take it over
        log.warn("rotate: replacement username already taken; choosing another", { provider = r.provider, old = r.old_id })
        r.new_username = new_username(acct.name)
        save()
        found = nil
      end
      if found then
        r.new_id, r.new_password = found.id, found.password or r.new_password
        r.phase, r.created_at = "created", os.time()
        save()
        log.info("rotate: found the replacement an earlier run created", { provider = r.provider, old = r.old_id, new = r.new_id })
      elseif dry_run then
        print(("would retry: %s %s -> new token %s"):format(r.provider, r.old_id, r.new_username))
      else
        create_replacement(acct, r)
      end
      counts.rotated = counts.rotated + 1
    end
  end
end

-- Starts a rotation for every token over the threshold.
local function rotate_over(acct, tokens, threshold, counts)
  local rotating, taken = {}, {}
  for _, r in pairs(state.rotations) do
    rotating[r.provider .. ":" .. r.old_id] = true
    taken[r.new_username] = true
  end
  for _, t in ipairs(tokens) do taken[t.username] = true end
  -- a fresh username no token or rotation uses
  local function fresh()
    local u
    repeat u = new_username(acct.name) until not taken[u]
    taken[u] = true
    return u
  end
  for _, t in ipairs(tokens) do
    local share = providers.used_share(t)
    if share and share >= threshold and t.status ~= "deleted" and not rotating[acct.name .. ":" .. t.id] then
      local r = { provider = acct.name, old_id = t.id, old_username = t.username, share = share,
        limit_bytes = t.limit_bytes, unlimited = t.unlimited, hours = t.hours,
        like = { allowedPools = t.raw.allowedPools, auto_disable = t.raw.auto_disable, lifetime = t.raw.lifetime },
        new_username = fresh(), phase = "intent", intent_at = os.time() }
      if acct.name == "oxylabs" then r.new_password = providers.oxylabs_password() end
      print(("%s%s token %s (%s) at %s of %d bytes -> replacement %s"):format(dry_run and "would rotate: " or "rotate: ",
        acct.name, t.id, t.username, pct(share), t.limit_bytes, r.new_username))
      if not dry_run then
        state.rotations[acct.name .. ":" .. t.id] = r
        save()
        create_replacement(acct, r)
      end
      counts.rotated = counts.rotated + 1
    end
  end
end

-- Deletes old tokens whose grace period has passed (on a later run).
local function retire(acct, counts)
  for _, r in pairs(state.rotations) do
    if r.provider == acct.name and r.phase == "published" and r.published_run < state.run and os.time() >= r.retire_after then
      if dry_run then
        print(("would delete: %s token %s (replaced by %s)"):format(r.provider, r.old_id, r.new_id))
      else
        local ok, err = pcall(acct.delete_token, acct, r.old_id)
        if ok then
          r.note = "deleted"
        elseif type(err) == "table" and (err.kind == "conflict" or err.kind == "not_found") then
          r.note = "could not be deleted (" .. tostring(err.message) .. "); it no longer works"
        else
          error(err, 0)
        end
        r.phase, r.retired_at = "retired", os.time()
        save()
        print(("retired: %s token %s (%s)"):format(r.provider, r.old_id, r.note))
      end
      counts.retired = counts.retired + 1
    end
  end
end

-- Every live credential of an account: tokens not being retired, with the
-- passwords the API returns or the journal knows.
local function live_credentials(acct, gateway)
  local known, retiring = {}, {}
  for _, r in pairs(state.rotations) do
    if r.provider == acct.name then
      if r.new_id then known[r.new_id] = r end
      if r.phase ~= "intent" then retiring[r.old_id] = true end
    end
  end
  local host, port = gateway:match("^(.+):(%d+)$")
  local out = {}
  for _, t in ipairs(acct:tokens()) do
    if t.status == "active" and not retiring[t.id] then
      local r = known[t.id]
      local user = t.username
      if acct.name == "oxylabs" then user = "customer-" .. user end
      out[#out + 1] = { provider = acct.name, id = t.id, username = user, password = t.password or (r and r.new_password),
        host = host, port = math.tointeger(tonumber(port)), replaces = r and r.old_id or nil,
        limit_bytes = t.limit_bytes, used_bytes = t.used_bytes, expires_at = t.expires_at }
    end
  end
  return out
end

-- Writes the proxy list and the manifest atomically.
local function publish(creds, opts)
  if opts.out then
    local lines = {}
    for _, c in ipairs(creds) do
      if c.password then
        lines[#lines + 1] = ("http://%s:%s@%s:%d"):format(http.escape(c.username), http.escape(c.password), c.host, c.port)
      end
    end
    local ok, proxylist = pcall(require, "resi.proxylist")
    local text = table.concat(lines, "\n") .. (#lines > 0 and "\n" or "")
    if ok and proxylist.parse then
      local list = proxylist.parse(text, { format = "url" })
      text = list:format(opts.format)
    elseif opts.format ~= "url" then
      error("--format " .. opts.format .. " needs resi.proxylist", 0)
    end
    fs.write_atomic(opts.out, text, 384)
  end
  if opts.manifest then
    fs.write_atomic(opts.manifest, json.encode({ generated_at = os.time(), credentials = json.array(creds) },
      { sort_keys = true, indent = 2 }) .. "\n", 384)
  end
end

-- Takes the journal's lock, waiting up to wait seconds: one run at a time
-- per journal, since two (overlapping cron runs) would act on the same
-- intents. The kernel drops the lock if this run is killed. nil when
-- another run holds it (said on stderr).
local function lock_journal(path, wait)
  local lock, err = fs.lock(path .. ".lock", { wait = wait })
  if not lock then
    io.stderr:write(("rotate.lua: %s: another run is using the journal %s (--wait SECONDS waits for it)\n")
      :format(err, path))
  end
  return lock
end

-- The whole run.
local function main(opts)
  if opts.threshold <= 0 or opts.threshold > 1 then argparse.usage_error("--threshold must be in (0, 1]") end
  if opts.grace < 0 then argparse.usage_error("--grace must be >= 0 minutes") end
  local gateways = {}
  for k, v in pairs(GATEWAYS) do gateways[k] = v end
  for _, g in ipairs(opts.gateway) do
    local p, hp = g:match("^(%w+)=(.+:%d+)$")
    if not p then argparse.usage_error(("--gateway %q: expected PROVIDER=HOST:PORT"):format(g)) end
    gateways[p] = hp
  end
  local names = opts.provider
  if #names == 0 then
    for name, env in pairs(ENV) do if os.getenv(env) then names[#names + 1] = name end end
    table.sort(names)
    if #names == 0 then argparse.usage_error("no provider: pass --provider or set UNKNOWNPROXIES_USERNAME / OXYLABS_USERNAME") end
  end
  dry_run, state_path = opts.dry_run, opts.state
  local lock <close> = not dry_run and lock_journal(state_path, opts.wait) or nil
  if not dry_run and not lock then return require("resi.task").set_exit_status(1) end
  state = load_state(state_path)
  state.run = state.run + 1
  save()
  local counts, creds, failed = { rotated = 0, retired = 0 }, {}, 0
  for _, name in ipairs(names) do
    local ok, err = pcall(function()
      local acct = providers.open(name, { timeout = opts.timeout })
      if not acct.capabilities.tokens then
        print(("skipped: %s has no tokens to rotate"):format(name))
        return
      end
      reconcile(acct, counts)
      rotate_over(acct, acct:tokens(), opts.threshold, counts)
      if not dry_run then
        for _, c in ipairs(live_credentials(acct, gateways[name] or "localhost:8080")) do creds[#creds + 1] = c end
      end
    end)
    if not ok then
      failed = failed + 1
      log.error("rotate: " .. name .. " failed; the next run continues from the journal", { error = tostring(err) })
    end
  end
  if not dry_run and failed == 0 then
    publish(creds, opts)
    for _, r in pairs(state.rotations) do
      if r.phase == "created" then
        r.phase, r.published_run, r.retire_after = "published", state.run, os.time() + math.floor(opts.grace * 60)
      end
    end
    save()
    if opts.out or opts.manifest then
      print(("published: %d credentials%s%s"):format(#creds, opts.out and (" to " .. opts.out .. " (" .. opts.format .. ")") or "",
        opts.manifest and (" and " .. opts.manifest) or ""))
    end
  end
  for _, name in ipairs(names) do
    local ok, err = pcall(function()
      local acct = providers.open(name, { timeout = opts.timeout })
      if acct.capabilities.tokens then retire(acct, counts) end
    end)
    if not ok then
      failed = failed + 1
      log.error("rotate: retiring " .. name .. " tokens failed", { error = tostring(err) })
    end
  end
  print(("%s%d rotated, %d retired, %d failed"):format(dry_run and "dry run: " or "", counts.rotated, counts.retired, failed))
  if failed > 0 then require("resi.task").set_exit_status(1) end
end

argparse.run(resi.args, SPEC, help, main)
