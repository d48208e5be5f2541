--- resi.notify: tell someone what the automation did, on webhooks, Slack,
--- Discord, Telegram and email.
---
---   local notify = require "resi.notify"
---   local n = notify.new("slack", {url_env = "SLACK_WEBHOOK_URL"})
---   n:send{kind = "rotation", title = "2 tokens rotated", text = "...",
---     fields = {rotated = 2, out = "proxies.txt"}, severity = "info"}
---   local all = notify.from_env()        -- every RESI_NOTIFY_* target, or nil
---
--- send never raises and never holds its caller longer than `wait`
--- seconds (default 10): a delivery still running then goes on in the
--- background, until it succeeds, fails for good or reaches `deadline`
--- (default 120 s). A failed notification is logged (resi.log, secrets
--- masked) and counted (notify.stats(), resi_notify_*_total in
--- resi.metrics.notify); the workflow that sent it goes on.
---
--- Every delivery goes through the target's resi.ratelimit limiter (its
--- documented limits built in: Slack 1/s per webhook, Discord 5 per 2 s and
--- 30/min per webhook, Telegram 1/s per chat, 20/min per group, 30/s per
--- bot) and lim:call's retries (Retry-After honoured); see
--- resi.notify.deliver. Secrets come from resi.credentials (opts.X_env or
--- the target's default RESI_NOTIFY_* name; see resi.notify.secrets) and
--- never appear in a log line, an error or a REPL print. Events carry new
--- proxy credentials only with include_credentials = true
--- (resi.notify.event).
---
--- Targets and their options: resi.notify.webhook, .slack, .discord,
--- .telegram, .email. Options every notifier takes: wait, deadline,
--- timeout (seconds per attempt, default 10), attempts (default 6),
--- include_credentials (default false), name (the target's label in logs
--- and metrics, default its kind).
local task = require "resi.task"
local event = require "resi.notify.event"
local deliver = require "resi.notify.deliver"
local target = require "resi.notify.target"
local secrets = require "resi.notify.secrets"

local M = {}

--- The target kinds, in the order from_env and from_config build them.
M.KINDS = { "webhook", "slack", "discord", "telegram", "email" }
local MODULES = {}
for _, k in ipairs(M.KINDS) do MODULES[k] = "resi.notify." .. k end

--- The credential whose presence makes from_env build a target.
M.ENV_TRIGGER = { webhook = "RESI_NOTIFY_WEBHOOK_URL", slack = "RESI_NOTIFY_SLACK_URL",
  discord = "RESI_NOTIFY_DISCORD_URL", telegram = "RESI_NOTIFY_TELEGRAM_TOKEN", email = "RESI_NOTIFY_SMTP_URL" }

--- Defaults of the options every notifier takes.
M.defaults = { wait = 10, deadline = 120, timeout = 10, attempts = 6 }

-- Options of the notifier itself (the rest go to the target).
local SHARED = { wait = true, deadline = true, timeout = true, attempts = true, include_credentials = true }

---@class resi.notify.notifier
local Notifier = {}
Notifier.__index = Notifier
Notifier.__name = "resi.notify"

-- Checks the notifier options of opts; the settings.
local function settings(opts)
  local s = {}
  for k, default in pairs(M.defaults) do
    local v = opts[k]
    if v == nil then v = default end
    if type(v) ~= "number" or v < 0 or v ~= v or (k ~= "wait" and v == 0) then
      error(("%s must be a number of %s > 0"):format(k, k == "attempts" and "attempts" or "seconds"), 0)
    end
    s[k] = v
  end
  s.attempts = math.max(1, math.floor(s.attempts))
  if opts.include_credentials ~= nil and type(opts.include_credentials) ~= "boolean" then
    error("include_credentials must be true or false", 0)
  end
  s.include_credentials = opts.include_credentials == true
  return s
end

-- A notifier over a list of targets.
local function make(targets, s)
  return setmetatable({ _targets = targets, _settings = s, _pending = {} }, Notifier)
end

-- A target of kind from opts (its own options only); raises a message.
local function build(kind, opts)
  local name = MODULES[kind]
  if not name then
    error(("unknown target kind %s (one of %s)"):format(tostring(kind), table.concat(M.KINDS, ", ")), 0)
  end
  if type(opts) ~= "table" then error(kind .. ": options must be a table", 0) end
  local own = {}
  for k, v in pairs(opts) do if not SHARED[k] and k ~= "kind" then own[k] = v end end
  return require(name).new(own)
end

-- Options whose values are secrets (masked in an error about the options).
local SECRET_OPTIONS = { url = true, secret = true, token = true, password = true }

-- Runs fn, re-raising its error as "resi.notify: ..." at the caller's
-- caller (level), with any secret the options hold masked.
local function checked(level, opts, fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then return a, b end
  local values = {}
  local function collect(t)
    for k, v in pairs(t) do
      if type(v) == "string" and SECRET_OPTIONS[k] then values[#values + 1] = v
      elseif type(v) == "table" and k ~= "to" then collect(v) end
    end
  end
  if type(opts) == "table" then collect(opts) end
  local msg = secrets.hide(type(a) == "string" and a or tostring(a), values)
  error("resi.notify: " .. msg:gsub("^resi%.notify: ", ""), level + 1)
end

--- A notifier with one target. kind: "webhook" | "slack" | "discord" |
--- "telegram" | "email"; opts: the target's options (see its module) and
--- the notifier's (wait, deadline, timeout, attempts, include_credentials).
--- A bad or missing option raises, naming it (never its value).
---@param kind "webhook"|"slack"|"discord"|"telegram"|"email"
---@param opts? table
---@return resi.notify.notifier
function M.new(kind, opts)
  opts = opts or {}
  return checked(2, opts, function()
    return make({ build(kind, opts) }, settings(opts))
  end)
end

-- The targets a config table names: t.targets / the array part as
-- {kind=, ...} entries, and t[kind] as one options table or a list of them.
local function config_targets(t)
  local out = {}
  local function add(kind, opts) out[#out + 1] = build(kind, opts) end
  for _, entry in ipairs(t.targets or {}) do add(entry.kind, entry) end
  for _, entry in ipairs(t) do add(type(entry) == "table" and entry.kind, entry) end
  for _, kind in ipairs(M.KINDS) do
    local v = t[kind]
    if v == true then v = {} end
    if type(v) == "table" then
      if #v > 0 then for _, o in ipairs(v) do add(kind, o) end else add(kind, v) end
    elseif v ~= nil and v ~= false then
      error(kind .. ": must be a table of options (or true: from the environment)", 0)
    end
  end
  for k in pairs(t) do
    if type(k) == "string" and not SHARED[k] and not MODULES[k] and k ~= "targets" then
      error(("unknown key %q (target kinds: %s; options: wait, deadline, timeout, attempts, include_credentials)")
        :format(k, table.concat(M.KINDS, ", ")), 0)
    end
  end
  return out
end

--- One notifier that sends every event to each target a config table
--- names, or nil when it names none:
---   notify.from_config{slack = {url_env = "SLACK_URL"}, webhook = {url = ..., secret_env = ...},
---     telegram = {{chat_id = "-100..."}, {chat_id = "42"}}, wait = 5}
--- (a kind's value is its options, a list of options tables, or true for
--- its RESI_NOTIFY_* defaults; `targets = {{kind=, ...}}` works too).
--- A target with a bad option raises, naming it.
---@param tbl table
---@return resi.notify.notifier|nil
function M.from_config(tbl)
  if type(tbl) ~= "table" then error("resi.notify.from_config: expects a table", 2) end
  return checked(2, tbl, function()
    local s = settings(tbl)
    local targets = config_targets(tbl)
    if #targets == 0 then return nil end
    return make(targets, s)
  end)
end

--- One notifier for every target configured in the environment, or nil:
--- RESI_NOTIFY_WEBHOOK_URL (+ _SECRET), RESI_NOTIFY_SLACK_URL,
--- RESI_NOTIFY_DISCORD_URL, RESI_NOTIFY_TELEGRAM_TOKEN (+ _CHAT_ID),
--- RESI_NOTIFY_SMTP_URL (+ RESI_NOTIFY_EMAIL_TO, _FROM,
--- RESI_NOTIFY_SMTP_USERNAME, _PASSWORD); each NAME may be NAME_FILE or
--- $CREDENTIALS_DIRECTORY/NAME. RESI_NOTIFY_INCLUDE_CREDENTIALS=1 lets
--- events carry credentials. A target configured wrongly is logged and
--- left out, so a bad variable cannot stop the workflow. opts: the
--- notifier options (wait, deadline, timeout, attempts).
---@param opts? {wait?: number, deadline?: number, timeout?: number, attempts?: integer}
---@return resi.notify.notifier|nil
function M.from_env(opts)
  local credentials = require "resi.credentials"
  local targets = {}
  for _, kind in ipairs(M.KINDS) do
    local ok, present = pcall(credentials.get, M.ENV_TRIGGER[kind])
    if ok and present then
      local built, t = pcall(build, kind, {})
      if built then
        targets[#targets + 1] = t
      else
        require("resi.log").error("notify: target left out", { target = kind, error = secrets.hide(t, {}) })
      end
    elseif not ok then
      require("resi.log").error("notify: target left out", { target = kind, error = tostring(present) })
    end
  end
  if #targets == 0 then return nil end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.include_credentials == nil then
    local inc = os.getenv("RESI_NOTIFY_INCLUDE_CREDENTIALS")
    o.include_credentials = inc == "1" or inc == "true"
  end
  return checked(2, {}, function() return make(targets, settings(o)) end)
end

-- Starts one delivery task per target and tracks it until it ends.
local function start_deliveries(self, e)
  local s = self._settings
  local tasks = {}
  for i, t in ipairs(self._targets) do
    local tk
    tk = task.spawn(function()
      local ok, err = deliver.deliver(t, e, s)
      self._pending[tk] = nil
      return ok, err
    end)
    self._pending[tk] = true
    tasks[i] = tk
  end
  return tasks
end

-- Waits for the delivery tasks; a list of failure messages.
local function wait_all(self, tasks)
  local failures = {}
  for i, tk in ipairs(tasks) do
    local ok, delivered, err = pcall(tk.wait, tk)
    if not ok and task.is_cancelled(delivered) and task.current().cancelled then error(delivered, 0) end -- wait is up
    if not ok then
      failures[#failures + 1] = self._targets[i].name .. ": " .. target.hide(self._targets[i], delivered)
    elseif not delivered then
      failures[#failures + 1] = self._targets[i].name .. ": " .. tostring(err)
    end
  end
  return failures
end

-- The body of send: may raise (send catches it).
local function send(self, ev)
  local s = self._settings
  local ok, e = pcall(event.normalize, ev, { include_credentials = s.include_credentials })
  if not ok then
    for _, t in ipairs(self._targets) do
      local c = deliver.counter(t.name)
      c.failed = c.failed + 1
    end
    local msg = "not an event: " .. tostring(e)
    require("resi.log").error("notification failed", { error = msg })
    return false, msg
  end
  local tasks = start_deliveries(self, e)
  if not task.current() or s.wait == 0 then return false, "pending" end
  local failures = task.timeout(s.wait, wait_all, self, tasks)
  if failures == nil then
    require("resi.log").info("notification still being delivered; going on without it",
      { event = e.kind, id = e.id, wait = s.wait, deadline = s.deadline })
    return false, "pending"
  end
  if #failures == 0 then return true end
  return false, table.concat(failures, "; ")
end

--- Sends an event {kind=, title=, text=, fields=, severity=, credentials=}
--- to every target. Returns true when every target took it, false and
--- "pending" when some were still being delivered after `wait` seconds
--- (they go on in the background), or false and what failed (secrets
--- masked). Never raises.
---@param ev {kind?: string, title?: string, text?: string, fields?: table, severity?: "info"|"success"|"warning"|"error", credentials?: table, id?: string}
---@return boolean ok
---@return string|nil err
---@async
function Notifier:send(ev)
  local ok, delivered, err = pcall(send, self, ev)
  if ok then return delivered, err end
  if task.is_cancelled(delivered) then error(delivered, 0) end -- the caller's own task was cancelled
  local msg = "resi.notify: " .. tostring(delivered)
  pcall(require("resi.log").error, "notification failed", { error = msg })
  return false, msg
end

--- Waits up to `timeout` seconds (default: the deadline) for deliveries
--- still running in the background; true when none is left.
---@param timeout? number
---@return boolean
---@async
function Notifier:flush(timeout)
  local function left() return next(self._pending) ~= nil end
  if not left() then return true end
  task.timeout(timeout or self._settings.deadline, function()
    while left() do
      local tk = next(self._pending)
      local ok, err = pcall(tk.wait, tk)
      if not ok and task.is_cancelled(err) and task.current().cancelled then error(err, 0) end -- timeout
      self._pending[tk] = nil
    end
  end)
  return not left()
end

--- Sends ev to each target in turn, waiting for each delivery to end (no
--- `wait`): a list of {target=, label=, ok=, answer=, error=, attempts=},
--- one per target, for `resi notify test`. Never raises.
---@param ev table
---@return {target: string, label: string, ok: boolean, answer?: string, error?: string, attempts?: integer}[]
---@async
function Notifier:test(ev)
  local s = self._settings
  local results = {}
  local ok, e = pcall(event.normalize, ev, { include_credentials = s.include_credentials })
  for i, t in ipairs(self._targets) do
    local r = { target = t.name, label = t.label }
    if ok then
      local pok, delivered, err, answer, attempts = pcall(deliver.deliver, t, e, s)
      r.ok, r.error, r.answer, r.attempts = pok and delivered, pok and err or tostring(delivered), answer, attempts
    else
      r.ok, r.error = false, "not an event: " .. tostring(e)
    end
    results[i] = r
  end
  return results
end

--- The targets' labels (secrets masked): {"slack https://hooks.slack.com/…", ...}.
---@return string[]
function Notifier:targets()
  local out = {}
  for i, t in ipairs(self._targets) do out[i] = t.label end
  return out
end

-- "resi.notify(slack https://hooks.slack.com/…, webhook https://example.com/…)".
function Notifier:__tostring()
  return "resi.notify(" .. table.concat(self:targets(), ", ") .. ")"
end

--- Counters by target name: {slack = {sent=, failed=, retries=, pending=}, ...}.
---@return table<string, {sent: integer, failed: integer, retries: integer, pending: integer}>
function M.stats() return deliver.stats() end

--- The rate limiters of every target used so far (for resi.metrics.ratelimit).
---@return resi.ratelimit.limiter[]
function M.limiters() return deliver.limiters() end

--- Forgets counters and limiters (specs).
function M.reset() deliver.reset() end

M.Notifier = Notifier

return M
