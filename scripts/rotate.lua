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
---
--- A rotation's phases, in the journal: intent (username chosen) ->
--- created (the token exists) -> ready (its parameters, allowedPools
--- included, are applied and checked) -> published (written out) ->
--- retired (the old token deleted). Only a ready replacement is published,
--- and the old token stays in the list until it is: a replacement never has
--- wider access than the token it replaces, whatever interrupted the run.
---
--- The replacement's username is derived from the account, the old token's
--- id and a counter (skipping names in use), so a --dry-run names the same
--- usernames the real run then creates.
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
OXYLABS_USERNAME, ..., RESI_*_URL to use resi sim). The directories of
--state, --out and --manifest are checked before any API call. Exit status
1 when a step failed (the next run picks up where this one stopped) or a
file cannot be used; 2 for a bad option.]]

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
local LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"

-- A user error: the run ends with this one line on stderr and exit status 1.
local UserError = {}
UserError.__tostring = function(e) return e.message end

-- Raises a user error (a file that cannot be used, not a bug: no traceback).
---@param msg string
local function fail(msg) error(setmetatable({ message = msg }, UserError), 0) end

-- FNV-1a (64-bit, wrapping) of s: a stable hash, not a secret one.
local function fnv1a(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return h
end

-- n characters from charset, derived from seed.
local function derived_string(seed, n, charset)
  local out = {}
  for i = 1, n do
    local k = fnv1a(seed .. "\0" .. i) % #charset + 1
    out[i] = charset:sub(k, k)
  end
  return table.concat(out)
end

-- The n-th candidate username for the replacement of token old_id, in the
-- provider's rules. Derived, not random, so a dry run and the real run
-- name the same one; it is no secret (the password is).
---@param acct table
---@param old_id string
---@param n integer
local function new_username(acct, old_id, n)
  local seed = table.concat({ acct.name, acct.client.username or "", old_id, tostring(n) }, "\0")
  if acct.name == "unknownproxies" then return derived_string(seed, 8, ALNUM) end -- exactly 8
  return "r" .. derived_string(seed, 11, LOWER_DIGITS) -- letters, digits, _
end

-- The first candidate username for old_id's replacement from attempt n on
-- that taken (a set) does not hold; returns it and its attempt number.
local function free_username(acct, old_id, n, taken)
  while taken[new_username(acct, old_id, n)] do n = n + 1 end
  return new_username(acct, old_id, n), n
end

-- Reads the journal; a new one when the file does not exist. A journal
-- that cannot be read is a user error naming the file.
local function load_state(path)
  local text, rerr = fs.read(path)
  if not text then
    if fs.exists(path) then fail(("--state %s: cannot read it: %s"):format(path, tostring(rerr))) end
    return { version = 1, run = 0, rotations = {} }
  end
  local st, err = json.safe_decode(text)
  local hint = " (fix or move the file; it records rotations in progress)"
  if type(st) ~= "table" then fail(("--state %s: not a journal: %s%s"):format(path, err or "not a JSON object", hint)) end
  if type(st.rotations) ~= "table" then fail(("--state %s: rotations must be an object%s"):format(path, hint)) end
  st.run = math.tointeger(st.run) or 0
  return st
end

local state_path, state, dry_run

-- Writes data to path atomically (mode 0600); a failure is a user error
-- naming the option and the file.
local function write_out(option, path, data)
  local ok, err = pcall(fs.write_atomic, path, data, 384)
  if not ok then fail(("%s %s: %s"):format(option, path, tostring(err))) end
end

-- Writes the journal atomically (mode 0600: it holds new passwords).
local function save()
  if dry_run then return end
  write_out("--state", state_path, json.encode(state, { sort_keys = true, indent = 2 }) .. "\n")
end

-- "12.3%" for a share.
local function pct(x) return ("%.1f%%"):format(x * 100) end

-- The parameters a replacement must have: those of the token it replaces.
local function wanted(r)
  return { limit_bytes = r.limit_bytes, unlimited = r.unlimited or nil, hours = r.hours, like = r.like }
end

-- Applies and checks the replacement's parameters (allowedPools included:
-- a create cannot set them, and a create whose answer was lost, or a run
-- killed between the create and the change, leaves them unset). Repeating
-- it is harmless. current: the token's record when known. Marks r ready.
local function make_ready(acct, r, current)
  acct:apply(r.new_id, wanted(r), current)
  r.phase, r.ready_at = "ready", os.time()
  save()
end

-- Records that rotation r's replacement exists (token record t), then
-- makes it ready.
local function created(acct, r, t)
  r.new_id, r.new_password = t.id, t.password or r.new_password
  r.phase, r.created_at = "created", os.time()
  save()
  make_ready(acct, r, t)
end

-- Token ids already claimed as some rotation's replacement.
local function claimed_ids()
  local ids = {}
  for _, r in pairs(state.rotations) do if r.new_id then ids[r.provider .. ":" .. r.new_id] = true end end
  return ids
end

-- Usernames no new replacement may take: every token's and every rotation's.
local function taken_usernames(tokens)
  local taken = {}
  for _, r in pairs(state.rotations) do taken[r.new_username] = true end
  for _, t in ipairs(tokens) do taken[t.username] = true end
  return taken
end

-- The token with r's username when it is this account's and no other
-- rotation's: the replacement an earlier attempt made. Otherwise nil, and
-- r moves on to the next free username (saved), since the name belongs to
-- a deleted token, another account, or another rotation.
local function own_or_next(acct, r, found)
  found = found or acct:find(r.new_username)
  if found and not claimed_ids()[acct.name .. ":" .. found.id] then return found end
  log.warn("rotate: replacement username already taken; choosing another", { provider = r.provider, old = r.old_id })
  r.new_username, r.name_attempt = free_username(acct, r.old_id, (r.name_attempt or 0) + 1, taken_usernames(acct:tokens()))
  save()
  return nil
end

-- Creates the replacement recorded in rotation r (intent already saved).
-- A create refused as a conflict (the username is taken) is looked up, and
-- tried once more under the next username when the name is not ours.
local function create_replacement(acct, r)
  for try = 1, 2 do
    local w = wanted(r)
    w.username, w.password = r.new_username, r.new_password
    local ok, t = pcall(acct.create_token, acct, w)
    if not ok and (try == 2 or type(t) ~= "table" or t.kind ~= "conflict") then error(t, 0) end
    if not ok then t = own_or_next(acct, r) end
    if t then
      created(acct, r, t)
      log.info("rotate: created replacement", { provider = r.provider, old = r.old_id, new = r.new_id, username = r.new_username })
      return
    end
  end
end

-- Finishes a rotation whose create may or may not have happened.
local function reconcile_intent(acct, r)
  local found = acct:find(r.new_username)
  -- a name that belongs to another rotation's replacement is never taken over
  if found then found = own_or_next(acct, r, found) end
  if dry_run then
    print(("would %s: %s %s -> new token %s"):format(found and "finish" or "retry", r.provider, r.old_id, r.new_username))
  elseif found then
    log.info("rotate: found the replacement an earlier run created", { provider = r.provider, old = r.old_id, new = found.id })
    created(acct, r, found)
  else
    create_replacement(acct, r)
  end
end

-- Finishes rotations a run left before their replacement was ready: an
-- intent (the create may or may not have happened) or a created token
-- whose parameters may not be applied.
local function reconcile(acct, counts)
  for _, r in pairs(state.rotations) do
    if r.provider == acct.name and r.phase == "intent" then
      reconcile_intent(acct, r)
      counts.rotated = counts.rotated + 1
    elseif r.provider == acct.name and r.phase == "created" then
      if dry_run then
        print(("would finish: %s %s -> token %s (apply its parameters)"):format(r.provider, r.old_id, r.new_id))
      else
        make_ready(acct, r, nil)
      end
      counts.rotated = counts.rotated + 1
    end
  end
end

-- Starts a rotation for every token over the threshold.
local function rotate_over(acct, tokens, threshold, counts)
  local rotating, taken = {}, taken_usernames(tokens)
  for _, r in pairs(state.rotations) do rotating[r.provider .. ":" .. r.old_id] = true end
  for _, t in ipairs(tokens) do
    local share = providers.used_share(t)
    if share and share >= threshold and t.status ~= "deleted" and not rotating[acct.name .. ":" .. t.id] then
      local username, attempt = free_username(acct, t.id, 0, taken)
      taken[username] = true
      local r = { provider = acct.name, old_id = t.id, old_username = t.username, share = share,
        limit_bytes = t.limit_bytes, unlimited = t.unlimited, hours = t.hours,
        like = { allowedPools = t.raw.allowedPools, auto_disable = t.raw.auto_disable, lifetime = t.raw.lifetime },
        new_username = username, name_attempt = attempt, phase = "intent", intent_at = os.time() }
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

-- Phases in which a replacement may be published (its parameters applied).
local READY = { ready = true, published = true, retired = true }

-- Every live credential of an account: tokens not being retired, with the
-- passwords the API returns or the journal knows. A replacement that is not
-- ready yet is left out (it may have wider access than the token it
-- replaces), and the token it replaces stays in.
local function live_credentials(acct, gateway)
  local known, retiring, unready = {}, {}, {}
  for _, r in pairs(state.rotations) do
    if r.provider == acct.name then
      if r.new_id then known[r.new_id] = r end
      if READY[r.phase] then retiring[r.old_id] = true else unready[r.new_username] = true end
    end
  end
  local host, port = gateway:match("^(.+):(%d+)$")
  local out = {}
  for _, t in ipairs(acct:tokens()) do
    local r = known[t.id]
    if t.status == "active" and not retiring[t.id] and not unready[t.username] and not (r and not READY[r.phase]) then
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
    write_out("--out", opts.out, text)
  end
  if opts.manifest then
    write_out("--manifest", opts.manifest, json.encode({ generated_at = os.time(), credentials = json.array(creds) },
      { sort_keys = true, indent = 2 }) .. "\n")
  end
end

-- Takes the journal's lock, waiting up to wait seconds: one run at a time
-- per journal, since two (overlapping cron runs) would act on the same
-- intents. The kernel drops the lock if this run is killed. nil when
-- another run holds it (said on stderr); a lock file that cannot be made or
-- opened is a user error naming it and the cause.
local function lock_journal(path, wait)
  local lock, err, code = fs.lock(path .. ".lock", { wait = wait })
  if not lock and code ~= "busy" then fail(("--state %s: %s (the journal's lock)"):format(path, err)) end
  if not lock then
    io.stderr:write(("rotate.lua: %s: another run is using the journal %s (--wait SECONDS waits for it)\n")
      :format(err, path))
  end
  return lock
end

-- Removes the temp files (with passwords in them) that killed runs left
-- next to the journal, the list and the manifest.
local function remove_stale_temps(opts)
  for _, path in ipairs({ opts.state, opts.out or false, opts.manifest or false }) do
    if path then fs.remove_stale_temps(path) end
  end
end

-- Checks, before any API call, that every file the run writes can be
-- written (its directory exists and is writable): a user error otherwise.
local function check_paths(opts)
  for _, o in ipairs({ { "--state", opts.state }, { "--out", opts.out }, { "--manifest", opts.manifest } }) do
    local ok, why = true, nil
    if o[2] then ok, why = fs.check_writable(o[2]) end
    if not ok then fail(("%s %s: %s"):format(o[1], o[2], why)) end
  end
end

-- Runs fn(acct, name) on each named provider's account in turn: one that
-- fails is logged ("rotate: " .. what, %s the name) and counted, and the
-- others go on. Returns how many failed.
local function each_account(names, opts, what, fn)
  local failed = 0
  for _, name in ipairs(names) do
    local ok, err = pcall(function() fn(providers.open(name, { timeout = opts.timeout }), name) end)
    if not ok then
      failed = failed + 1
      log.error("rotate: " .. what:format(name), { error = tostring(err) })
    end
  end
  return failed
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
    for name, env in pairs(ENV) do if require("resi.credentials").get(env) then names[#names + 1] = name end end
    table.sort(names)
    if #names == 0 then argparse.usage_error("no provider: pass --provider or set UNKNOWNPROXIES_USERNAME / OXYLABS_USERNAME") end
  end
  dry_run, state_path = opts.dry_run, opts.state
  check_paths(opts)
  local lock <close> = not dry_run and lock_journal(state_path, opts.wait) or nil
  if not dry_run and not lock then return require("resi.task").set_exit_status(1) end
  if not dry_run then remove_stale_temps(opts) end
  state = load_state(state_path)
  state.run = state.run + 1
  save()
  local counts, creds = { rotated = 0, retired = 0 }, {}
  local failed = each_account(names, opts, "%s failed; the next run continues from the journal", function(acct, name)
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
  if not dry_run and failed == 0 then
    publish(creds, opts)
    for _, r in pairs(state.rotations) do
      if r.phase == "ready" then
        r.phase, r.published_run, r.retire_after = "published", state.run, os.time() + math.floor(opts.grace * 60)
      end
    end
    save()
    if opts.out or opts.manifest then
      print(("published: %d credentials%s%s"):format(#creds, opts.out and (" to " .. opts.out .. " (" .. opts.format .. ")") or "",
        opts.manifest and (" and " .. opts.manifest) or ""))
    end
  end
  failed = failed + each_account(names, opts, "retiring %s tokens failed", function(acct)
    if acct.capabilities.tokens then retire(acct, counts) end
  end)
  print(("%s%d rotated, %d retired, %d failed"):format(dry_run and "dry run: " or "", counts.rotated, counts.retired, failed))
  if failed > 0 then require("resi.task").set_exit_status(1) end
end

-- Runs main: a user error (fail) becomes one line on stderr and exit
-- status 1; a usage error goes on to argparse (exit status 2); anything
-- else is a bug and keeps its traceback.
local function run(opts, rest)
  local ok, err = xpcall(main, function(e)
    if getmetatable(e) == UserError or (type(e) == "table" and e.usage) then return e end
    return debug.traceback(tostring(e), 2)
  end, opts, rest)
  if ok then return end
  if getmetatable(err) ~= UserError then
    if type(err) == "table" then error(err, 0) end
    io.stderr:write("resi: error: ", err, "\n")
  else
    io.stderr:write("rotate.lua: ", err.message, "\n")
  end
  require("resi.task").set_exit_status(1)
end

argparse.run(resi.args, SPEC, help, run)
