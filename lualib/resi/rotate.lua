--- resi.rotate: token rotation as a library. Every token at or over a share
--- of its data limit gets a replacement with the same parameters; the live
--- credentials are published (a proxy list, a manifest, a command); the old
--- token is deleted after a grace period, on a later run.
---
---   local rotate = require "resi.rotate"
---   local s = rotate.run { threshold = 0.9, out = "/etc/squid/proxies.txt", exec = "systemctl reload squid" }
---   if not s.ok then error(s.message) end      -- e.g. in a jobs file: jobs.every("5m", "rotate", ...)
---
--- Crash-safe and idempotent through resi.intent: before creating a
--- replacement its intent (the username, and the password where the
--- provider needs one chosen) is committed in resi.store; a later run
--- that finds it unfinished looks the replacement up before creating
--- anything, so one token never gets two replacements and a credential
--- that was created is never lost. The store is shared by every run on the
--- machine (from any directory, by cron or `resi jobs`), one namespace per
--- account, and one run at a time holds each account's lock.
---
--- Publishing is never silent: with nothing to publish to, the run says
--- so; a live credential whose password resi does not know (an Oxylabs
--- sub-user made elsewhere) is named with the reason and counted apart,
--- and adopt = true gives it a new password resi knows (its old one stops
--- working). The provider knowledge (gateways, username dialects,
--- credential rules) is the account model's (resi.providers).
local log = require "resi.log"
local providers = require "resi.providers"
local intent = require "resi.intent"
local store = require "resi.store"
local fs = require "resi.fs"
local steps = require "resi.rotate.steps"
local publish = require "resi.rotate.publish"

local M = {}

---@class resi.rotate.options
---@field accounts? (resi.providers.account|resi.providers.account_spec)[]  default: every account whose credentials are in the environment
---@field accounts_file? string  an accounts file (resi.providers.accounts) instead
---@field providers? string[]  only these providers
---@field threshold? number  share of the limit that triggers a rotation (default 0.9)
---@field grace? number  minutes an old token keeps working after its replacement is published (default 60)
---@field keep_days? number  days a finished rotation stays in the store once its old token is gone (default 30)
---@field out? string  the proxy list to write every live credential to
---@field format? "list"|"userpass"|"url"|"json"|"hostport"|"proxychains"
---@field manifest? string  the JSON manifest to write
---@field exec? string  a command run after the files are in place
---@field adopt? boolean  give live credentials without a known password a new one
---@field dry_run? boolean  say what would happen; change nothing
---@field wait? number  seconds to wait for another run holding an account's lock (default 0)
---@field store? resi.store.db|string  default: resi.store's default (RESI_STORE, $XDG_STATE_HOME/resi/resi.db)
---@field journal? string  an old rotate-state.json to import into the store first
---@field timeout? number  per API call (default 30)
---@field gateways? table<string, string>  provider -> "host:port" for accounts opened here
---@field notify? table  a resi.notify notifier (default: notify.from_env() when resi.notify is there)
---@field say? fun(line: string)  progress lines (default: print)

---@class resi.rotate.summary
---@field ok boolean
---@field message string  the last line: "2 rotated, 1 retired, 0 failed"
---@field rotated integer
---@field retired integer
---@field failed integer
---@field live integer  live credentials of the accounts
---@field published integer  of those, written to the list (password known)
---@field unknown string[]  usernames of live credentials without a known password
---@field dry_run boolean

-- Raises a user error (a file that cannot be used, bad options: no traceback).
local function fail(msg) error({ user = true, message = msg }, 0) end

-- The accounts of a run, as entries {acct = an open account} or {spec,
-- opts} (opened by prepare): the given ones, or the accounts file's, or the
-- environment's. A run keeps its own state in the entries, never in the
-- caller's account objects, so they can be given to the next run as they are.
local function accounts_of(opts)
  local list = opts.accounts
  if not list then
    local err
    list, err = providers.select_accounts(opts.accounts_file, opts.providers)
    if not list then fail(err) end
  end
  local out = {}
  for _, a in ipairs(list) do
    if getmetatable(a) and a.client then
      out[#out + 1] = { acct = a }
    else
      local o = {}
      for k, v in pairs(a.opts or {}) do o[k] = v end
      o.timeout = o.timeout or opts.timeout
      o.gateway = o.gateway or (opts.gateways or {})[a.name]
      out[#out + 1] = { spec = a, opts = o }
    end
  end
  if #out == 0 then
    fail("no accounts: give an accounts file or set UNKNOWNPROXIES_USERNAME / OXYLABS_USERNAME (and their passwords)")
  end
  return out
end

-- Checks, before any API call, that every file the run writes can be.
local function check_paths(opts)
  for _, o in ipairs({ { "--out", opts.out }, { "--manifest", opts.manifest } }) do
    if o[2] then
      local ok, why = fs.check_writable(o[2])
      if not ok then fail(("%s %s: %s"):format(o[1], o[2], why)) end
      if not opts.dry_run then fs.remove_stale_temps(o[2]) end
    end
  end
end

-- The run number of an account (a later run retires what this one published).
local function next_run(db, acct, dry_run)
  local n = (math.tointeger(db:get(steps.runs_ns(acct), "run")) or 0) + 1
  if not dry_run then db:set(steps.runs_ns(acct), "run", n) end
  return n
end

-- Logs and counts one account's failure (the others go on).
local function account_failed(a, counts, what, err)
  a.failed = true
  counts.failed = counts.failed + 1
  local text = type(err) == "table" and err.user and err.message or tostring(err)
  log.error(("rotate: %s: %s failed"):format(a.acct and a.acct.id or a.spec.label, what), { error = text })
  counts.errors[#counts.errors + 1] = text
end

-- Opens every account, its intents and (not in a dry run) its lock, and
-- gives it its run number. An account that cannot be opened, or whose lock
-- another run holds, fails alone; a lock file that cannot be made at all
-- is a user error for the whole run.
local function prepare(accts, opts, db, counts)
  for _, a in ipairs(accts) do
    local ok, err = pcall(function()
      a.acct = a.acct or providers.open(a.spec.name, a.opts)
      if not a.acct.capabilities.tokens then
        opts.say(("skipped: %s has no tokens to rotate"):format(a.acct.id))
        return -- no context: the steps pass it by
      end
      local book = intent.open("rotate", { account = a.acct, store = db })
      local lock
      if not opts.dry_run then
        local lerr, code
        lock, lerr, code = book:lock { wait = opts.wait }
        if not lock and code ~= "busy" then error({ user = true, fatal = true, message = lerr }, 0) end
        if not lock then error({ user = true, message = lerr .. " (--wait SECONDS waits for it)" }, 0) end
      end
      a.ctx = { acct = a.acct, book = book, db = db, dry_run = opts.dry_run, say = opts.say, counts = counts, lock = lock }
      a.run = next_run(db, a.acct, opts.dry_run)
    end)
    if not ok and type(err) == "table" and err.fatal then error(err, 0) end
    if not ok then account_failed(a, counts, "opening it", err) end
  end
end

-- Runs fn(ctx, a) for each prepared account that has not failed; a
-- failure is logged and counted, and the others go on.
local function each(accts, counts, what, fn)
  for _, a in ipairs(accts) do
    if a.ctx and not a.failed then
      local ok, err = pcall(fn, a.ctx, a)
      if not ok then account_failed(a, counts, what, err) end
    end
  end
end

-- Releases every account's lock.
local function unlock_all(accts)
  for _, a in ipairs(accts) do
    if a.ctx and a.ctx.lock then a.ctx.lock:unlock() end
  end
end

-- "6 live, 4 published, 2 without a known password: a, b".
local function publish_line(live, published, unknown)
  local s = ("%d live, %d published"):format(live, published)
  if #unknown > 0 then
    s = s .. (", %d without a known password: %s"):format(#unknown, table.concat(unknown, ", "))
  end
  return s
end

-- Publishes the live credentials of every account and says what went where.
local function publish_all(accts, opts, counts)
  local creds, unknown = {}, {}
  for _, a in ipairs(accts) do
    if a.ctx and not a.failed then
      for _, c in ipairs(steps.live(a.ctx)) do
        if not c.entry and opts.adopt and a.acct.capabilities.set_password then steps.adopt(a.ctx, c) end
        creds[#creds + 1] = c
        if not c.entry then unknown[#unknown + 1] = c.token.username end
      end
    end
  end
  table.sort(unknown)
  counts.live, counts.unknown = #creds, unknown
  if not (opts.out or opts.manifest or opts.exec) then
    counts.published = 0
    opts.say(("not published: no --out, --manifest or --exec given (%s)"):format(publish_line(#creds, 0, unknown)))
    return false
  end
  local r = publish.write(creds, opts)
  counts.published = r.published
  opts.say(("published: %s%s%s"):format(publish_line(#creds, r.published, unknown),
    opts.out and (" to " .. opts.out .. " (" .. (opts.format or "list") .. ")") or "",
    opts.manifest and ((opts.out and " and " or " to ") .. opts.manifest) or ""))
  if #unknown > 0 and not opts.adopt then
    opts.say("  (their passwords are not known to resi: --adopt gives them new ones, and their old ones stop working)")
  end
  if r.exec then
    if r.exec.ok then
      opts.say(("ran: %s"):format(opts.exec))
    else
      counts.failed = counts.failed + 1
      local why = r.exec.timed_out and "timed out" or ("exit status " .. tostring(r.exec.status))
      counts.errors[#counts.errors + 1] = ("--exec %s: %s"):format(opts.exec, why)
      log.error("rotate: the post-publish command failed", { command = opts.exec, status = r.exec.status,
        output = r.exec.output })
      opts.say(("--exec failed (%s): %s"):format(why, r.exec.output:gsub("%s+$", "")))
    end
  end
  return true
end

-- The notifier of a run: the given one, or resi.notify's from the
-- environment when that module is there (nil when none is configured).
local function notifier(opts)
  if opts.notify ~= nil then return opts.notify or nil end
  local ok, notify = pcall(require, "resi.notify")
  if not ok or type(notify.from_env) ~= "function" then return nil end
  local okn, n = pcall(notify.from_env)
  return okn and n or nil
end

-- One event for a run that changed something (never one per token).
local function notify_run(opts, accts, counts, summary)
  if opts.dry_run or (counts.rotated == 0 and counts.retired == 0 and counts.failed == 0) then return end
  local n = notifier(opts)
  if not n then return end
  local fields = { rotated = counts.rotated, retired = counts.retired, failed = counts.failed,
    live = counts.live, published = counts.published }
  if #counts.rotated_ids > 0 then fields.replaced = table.concat(counts.rotated_ids, ", ") end
  if #counts.retired_ids > 0 then fields.retired_tokens = table.concat(counts.retired_ids, ", ") end
  if opts.out then fields.list = opts.out end
  -- one id per run of these accounts: a receiver drops a retried event
  local id = {}
  for _, a in ipairs(accts) do if a.run then id[#id + 1] = a.acct.id .. "#" .. a.run end end
  n:send { kind = "rotation", title = "resi rotate: " .. summary.message, text = summary.message, fields = fields,
    severity = counts.failed > 0 and "error" or "info", id = "rotate:" .. table.concat(id, ",") }
end

--- Runs one rotation over the accounts (see resi.rotate.options) and
--- returns its summary. A file or option that cannot be used raises
--- {user = true, message}; an account that fails is logged, counted, and
--- picked up where it stopped by the next run.
---@param opts? resi.rotate.options
---@return resi.rotate.summary
---@async
function M.run(opts)
  opts = setmetatable({}, { __index = opts or {} })
  opts.threshold, opts.grace = opts.threshold or 0.9, opts.grace or 60
  opts.say = opts.say or print
  if type(opts.threshold) ~= "number" or opts.threshold <= 0 or opts.threshold > 1 then fail("threshold must be in (0, 1]") end
  if type(opts.grace) ~= "number" or opts.grace < 0 then fail("grace must be >= 0 minutes") end
  opts.keep_days = opts.keep_days or steps.KEEP_FINISHED / 86400
  if type(opts.keep_days) ~= "number" or opts.keep_days < 0 then fail("keep_days must be >= 0 days") end
  local accts = accounts_of(opts)
  check_paths(opts)
  local db = opts.store
  if type(db) ~= "table" then
    local ok, opened = pcall(store.open, db)
    if not ok then fail("--store: " .. tostring(opened)) end
    db = opened
  end
  local counts = { rotated = 0, retired = 0, failed = 0, errors = {}, rotated_ids = {}, retired_ids = {}, live = 0,
    published = 0, unknown = {} }
  if opts.journal and not opts.dry_run then
    require("resi.rotate.journal").import(opts.journal, accts, db, opts.say)
  end
  prepare(accts, opts, db, counts)
  local ok, err = pcall(function()
    each(accts, counts, "rotating", function(ctx)
      steps.resume(ctx)
      local tokens = ctx.acct:tokens()
      steps.rotate_over(ctx, tokens, opts.threshold)
      if not opts.dry_run then steps.prune(ctx, tokens, opts.keep_days * 86400) end
    end)
    if not opts.dry_run and counts.failed == 0 then
      local published = publish_all(accts, opts, counts)
      if published and counts.failed == 0 then
        each(accts, counts, "publishing", function(ctx, a) steps.mark_published(ctx, a.run, opts.grace * 60) end)
      end
    end
    each(accts, counts, "retiring", function(ctx, a) steps.retire(ctx, a.run) end)
  end)
  unlock_all(accts)
  if not ok then error(err, 0) end
  local summary = { ok = counts.failed == 0, rotated = counts.rotated, retired = counts.retired, failed = counts.failed,
    live = counts.live, published = counts.published, unknown = counts.unknown, dry_run = opts.dry_run == true,
    errors = counts.errors }
  summary.message = ("%s%d rotated, %d retired, %d failed"):format(opts.dry_run and "dry run: " or "", counts.rotated,
    counts.retired, counts.failed)
  notify_run(opts, accts, counts, summary)
  return summary
end

return M
