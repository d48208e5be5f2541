--- resi.rotate.steps: one account's rotation, on durable intents
--- (resi.intent, book "rotate" per account). A rotation's phases, kept in
--- its intent's plan: intent (username chosen, password chosen where the
--- provider needs one) -> created (the token exists) -> ready (its
--- parameters, allowedPools included, are applied and checked) ->
--- published (written out) -> finished when the old token is retired.
--- Only a ready replacement is published, and the old token stays in the
--- list until it is: a replacement never has wider access than the token
--- it replaces, whatever interrupted the run.
---
--- The replacement's username is derived from the account, the old token's
--- id and a counter (acct:new_credentials{seed=}), skipping names in use,
--- so a dry run names the usernames the real run then creates.
local log = require "resi.log"
local providers = require "resi.providers"
local intent = require "resi.intent"

local M = {}

--- Known passwords of an account's proxy users (Oxylabs never returns
--- them): the store namespace "credentials/ACCOUNT", token id -> password.
---@param acct resi.providers.account
---@return string
function M.passwords_ns(acct) return "credentials/" .. acct.id end

--- The store namespace of an account's rotation bookkeeping (its run
--- number under the key "run").
---@param acct resi.providers.account
---@return string
function M.runs_ns(acct) return "rotate/" .. acct.id end

-- The parameters a replacement must have: those of the token it replaces.
local function wanted(p)
  return { limit_bytes = p.limit_bytes, unlimited = p.unlimited or nil, hours = p.hours, like = p.like }
end

-- Token ids already claimed as some rotation's replacement.
local function claimed_ids(ctx)
  local ids = {}
  for _, it in ipairs(ctx.book:list()) do if it.plan.new_id then ids[it.plan.new_id] = true end end
  return ids
end

-- Usernames no new replacement may take: every token's and every rotation's.
local function taken_usernames(ctx, tokens)
  local taken = {}
  for _, it in ipairs(ctx.book:list()) do if it.plan.new_username then taken[it.plan.new_username] = true end end
  for _, t in ipairs(tokens) do taken[t.username] = true end
  return taken
end

-- The first candidate username for old_id's replacement from attempt n on
-- that taken (a set) does not hold; returns it and its attempt number.
local function free_username(acct, old_id, n, taken)
  local function name(k) return acct:new_credentials { seed = old_id .. "\0" .. k }.username end
  local last = n + 1000 -- a bound, not a limit: 62^8 names, a taken one is rare
  while taken[name(n)] do
    n = n + 1
    if n > last then error(("no free username derived from %s after 1000 tries"):format(old_id), 0) end
  end
  return name(n), n
end

-- Applies and checks the replacement's parameters (allowedPools included:
-- a create cannot set them, and a create whose answer was lost, or a run
-- killed between the create and the change, leaves them unset). Repeating
-- it is harmless. current: the token's record when known. Marks it ready.
local function make_ready(ctx, it, current)
  ctx.acct:apply(it.plan.new_id, wanted(it.plan), current)
  it:update { phase = "ready", ready_at = os.time() }
end

-- Records that rotation it's replacement exists (token record t), then
-- makes it ready.
local function created(ctx, it, t)
  local password = t.password or it.plan.new_password
  if password then ctx.db:set(M.passwords_ns(ctx.acct), t.id, password) end
  it:update { new_id = t.id, phase = "created", created_at = os.time() }
  make_ready(ctx, it, t)
end

-- The token with it's username when it is this account's and no other
-- rotation's: the replacement an earlier attempt made. Otherwise nil, and
-- it moves on to the next free username (saved), since the name belongs to
-- a deleted token, another account, or another rotation.
local function own_or_next(ctx, it, found)
  found = found or ctx.acct:find(it.plan.new_username)
  if found and not claimed_ids(ctx)[found.id] then return found end
  log.warn("rotate: replacement username already taken; choosing another", { account = ctx.acct.id, old = it.plan.old_id })
  local name, n = free_username(ctx.acct, it.plan.old_id, (it.plan.name_attempt or 0) + 1,
    taken_usernames(ctx, ctx.acct:tokens()))
  it:update { new_username = name, name_attempt = n }
  return nil
end

-- Creates the replacement recorded in it (the intent is committed). A
-- create refused as a conflict (the username is taken) is looked up, and
-- tried once more under the next username when the name is not ours.
local function create_replacement(ctx, it)
  for try = 1, 2 do
    local w = wanted(it.plan)
    w.username, w.password = it.plan.new_username, it.plan.new_password
    local ok, t = pcall(ctx.acct.create_token, ctx.acct, w)
    if not ok and (try == 2 or type(t) ~= "table" or t.kind ~= "conflict") then error(t, 0) end
    if not ok then t = own_or_next(ctx, it) end
    if t then
      created(ctx, it, t)
      log.info("rotate: created replacement", { account = ctx.acct.id, old = it.plan.old_id, new = it.plan.new_id,
        username = it.plan.new_username })
      return
    end
  end
end

-- Finishes a rotation whose create may or may not have happened.
local function resume_intent(ctx, it)
  local found = ctx.acct:find(it.plan.new_username)
  -- a name that belongs to another rotation's replacement is never taken over
  if found then found = own_or_next(ctx, it, found) end
  if ctx.dry_run then
    ctx.say(("would %s: %s %s -> new token %s"):format(found and "finish" or "retry", ctx.acct.id, it.plan.old_id,
      it.plan.new_username))
  elseif found then
    log.info("rotate: found the replacement an earlier run created", { account = ctx.acct.id, old = it.plan.old_id,
      new = found.id })
    created(ctx, it, found)
  else
    create_replacement(ctx, it)
  end
end

--- Finishes rotations a run left before their replacement was ready: an
--- intent (the create may or may not have happened) or a created token
--- whose parameters may not be applied.
---@param ctx table  {acct, book, db, dry_run, say, counts}
function M.resume(ctx)
  for _, it in ipairs(ctx.book:pending()) do
    if it.plan.phase == "intent" then
      resume_intent(ctx, it)
      ctx.counts.rotated = ctx.counts.rotated + 1
      ctx.counts.rotated_ids[#ctx.counts.rotated_ids + 1] = it.plan.old_username
    elseif it.plan.phase == "created" then
      if ctx.dry_run then
        ctx.say(("would finish: %s %s -> token %s (apply its parameters)"):format(ctx.acct.id, it.plan.old_id,
          it.plan.new_id))
      else
        make_ready(ctx, it, nil)
      end
      ctx.counts.rotated = ctx.counts.rotated + 1
      ctx.counts.rotated_ids[#ctx.counts.rotated_ids + 1] = it.plan.old_username
    end
  end
end

-- "12.3%" for a share.
local function pct(x) return ("%.1f%%"):format(x * 100) end

--- Starts a rotation for every token at or over the threshold that has
--- none yet: its intent (with the username, and the password where the
--- provider needs one chosen first) is committed, then the replacement made.
---@param ctx table
---@param tokens resi.providers.token[]
---@param threshold number
---@async
function M.rotate_over(ctx, tokens, threshold)
  local taken = taken_usernames(ctx, tokens)
  for _, t in ipairs(tokens) do
    local share = providers.used_share(t)
    if share and share >= threshold and not ctx.book:get(t.id) then -- acct:tokens() lists no deleted token
      local username, attempt = free_username(ctx.acct, t.id, 0, taken)
      taken[username] = true
      local plan = { old_id = t.id, old_username = t.username, share = share, limit_bytes = t.limit_bytes,
        unlimited = t.unlimited, hours = t.hours,
        like = { allowedPools = t.raw.allowedPools, auto_disable = t.raw.auto_disable, lifetime = t.raw.lifetime },
        new_username = username, name_attempt = attempt, phase = "intent" }
      -- a provider that never returns passwords gets one chosen (and recorded) here
      if not ctx.acct.capabilities.returns_passwords then plan.new_password = ctx.acct:new_credentials().password end
      ctx.say(("%s%s token %s (%s) at %s of %d bytes -> replacement %s"):format(ctx.dry_run and "would rotate: " or "rotate: ",
        ctx.acct.id, t.id, t.username, pct(share), t.limit_bytes, username))
      if not ctx.dry_run then create_replacement(ctx, ctx.book:begin(t.id, plan)) end
      ctx.counts.rotated = ctx.counts.rotated + 1
      ctx.counts.rotated_ids[#ctx.counts.rotated_ids + 1] = t.username
    end
  end
end

--- Deletes old tokens whose grace period has passed, on a run after the
--- one that published their replacement; the rotation is then finished.
---@param ctx table
---@param run integer  this run's number
---@async
function M.retire(ctx, run)
  for _, it in ipairs(ctx.book:pending()) do
    local p = it.plan
    if p.phase == "published" and p.published_run < run and os.time() >= p.retire_after then
      if ctx.dry_run then
        ctx.say(("would delete: %s token %s (replaced by %s)"):format(ctx.acct.id, p.old_id, p.new_id))
      else
        local ok, err = pcall(ctx.acct.delete_token, ctx.acct, p.old_id)
        local note = "deleted"
        if not ok and type(err) == "table" and (err.kind == "conflict" or err.kind == "not_found") then
          note = "could not be deleted (" .. tostring(err.message) .. "); it no longer works"
        elseif not ok then
          error(err, 0)
        end
        it:update { retired_at = os.time() }
        it:finish { note = note, new_id = p.new_id }
        ctx.db:delete(M.passwords_ns(ctx.acct), p.old_id)
        ctx.say(("retired: %s token %s (%s)"):format(ctx.acct.id, p.old_id, note))
        ctx.counts.retired_ids[#ctx.counts.retired_ids + 1] = p.old_username or p.old_id
      end
      ctx.counts.retired = ctx.counts.retired + 1
    end
  end
end

--- How long a finished rotation's intent is kept by default once its old
--- token is gone (seconds): it is the record of that rotation, and the
--- manifest's "replaces" for its replacement.
M.KEEP_FINISHED = 30 * 86400

--- Forgets the account's finished rotations (done or abandoned) that
--- ended at least keep seconds ago (default KEEP_FINISHED) and whose old
--- token tokens (the account's list) no longer holds; returns how many. A
--- rotation whose old token is still listed keeps its intent: that stops
--- the token being rotated again. Without this the book would only grow,
--- and every run reads all of it.
---@param ctx table
---@param tokens resi.providers.token[]
---@param keep? number  seconds
---@return integer
---@async
function M.prune(ctx, tokens, keep)
  local listed = {}
  for _, t in ipairs(tokens) do listed[t.id] = true end
  local before = os.time() - (keep or M.KEEP_FINISHED)
  local old = {}
  for _, it in ipairs(ctx.book:list()) do
    if it.state ~= "pending" and not listed[it.plan.old_id or it.key] and (it.updated_at or 0) <= before then
      old[#old + 1] = it
    end
  end
  if #old > 0 then ctx.db:transaction(function() for _, it in ipairs(old) do it:forget() end end) end
  return #old
end

--- Marks every ready replacement of the account published in run (its old
--- token is retired once grace seconds have passed, on a later run).
---@param ctx table
---@param run integer
---@param grace number seconds
function M.mark_published(ctx, run, grace)
  for _, it in ipairs(ctx.book:pending()) do
    if it.plan.phase == "ready" then
      it:update { phase = "published", published_run = run, retire_after = os.time() + math.floor(grace) }
    end
  end
end

-- Phases in which a replacement may be published (its parameters applied).
local READY = { ready = true, published = true }

--- The account's live credentials: its active tokens that are not being
--- retired, as {token, entry?, why?, replaces?}: entry the proxy-list
--- entry (acct:proxy_entry, with the password the API returned or the
--- store knows), why when there is none. A replacement that is not ready
--- is left out (it may have wider access than the token it replaces),
--- and the token it replaces stays in.
---@param ctx table
---@return table[]
---@async
function M.live(ctx)
  local by_new, retiring, unready = {}, {}, {}
  for _, it in ipairs(ctx.book:list()) do
    local p = it.plan
    if p.new_id then by_new[p.new_id] = p end
    if it.state == "pending" then
      if READY[p.phase] then retiring[p.old_id] = true else unready[p.new_username] = true end
    end
  end
  local out = {}
  for _, t in ipairs(ctx.acct:tokens()) do
    local p = by_new[t.id]
    if t.status == "active" and not retiring[t.id] and not unready[t.username] then
      t.password = t.password or ctx.db:get(M.passwords_ns(ctx.acct), t.id)
      local entry, why = ctx.acct:proxy_entry(t)
      out[#out + 1] = { token = t, entry = entry, why = why, replaces = p and p.old_id or nil, account = ctx.acct }
    end
  end
  return out
end

--- Gives a live credential whose password resi does not know a new one
--- (--adopt), through an intent: the password is recorded before it is
--- set, and setting it again is harmless, so a crash cannot lose it. The
--- old password stops working: said as a warning.
---@param ctx table
---@param c table  a live credential without an entry
---@async
function M.adopt(ctx, c)
  local t = c.token
  local book = intent.open("adopt", { account = ctx.acct, store = ctx.db })
  local password = book:once(t.id, {
    plan = function() return { password = ctx.acct:new_credentials().password } end,
    act = function(p)
      ctx.acct:set_password(t.id, p.password)
      return p.password
    end,
  })
  ctx.db:set(M.passwords_ns(ctx.acct), t.id, password)
  log.warn("rotate: adopted a sub-user: it has a new password and its old one stops working",
    { account = ctx.acct.id, username = t.username })
  t.password = password
  c.entry, c.why = ctx.acct:proxy_entry(t)
end

return M
