--- resi notify: check notification targets.
---
---   resi notify test TARGET [--title T] [--text T] [--severity S] [--json]
---
--- TARGET is a kind (webhook, slack, discord, telegram, email) configured
--- through its RESI_NOTIFY_* credentials (NAME, NAME_FILE or
--- $CREDENTIALS_DIRECTORY/NAME), or "all" for every configured target
--- (notify.from_env). Sends one test event to each and prints each
--- receiver's answer; exit status 0 when every target took it, 1 when one
--- did not, 2 on a usage error (unknown or unconfigured target).
local argparse = require "resi.argparse"
local task = require "resi.task"

local help = [[
usage: resi notify test TARGET [--title T] [--text T] [--severity S] [--json]

Sends a test event to TARGET and prints the receiver's answer. TARGET is
webhook, slack, discord, telegram, email (configured from the environment)
or all (every configured target). Secrets are read as notify.from_env reads
them: NAME, NAME_FILE or $CREDENTIALS_DIRECTORY/NAME.

  webhook   RESI_NOTIFY_WEBHOOK_URL, RESI_NOTIFY_WEBHOOK_SECRET
  slack     RESI_NOTIFY_SLACK_URL
  discord   RESI_NOTIFY_DISCORD_URL
  telegram  RESI_NOTIFY_TELEGRAM_TOKEN, RESI_NOTIFY_TELEGRAM_CHAT_ID
  email     RESI_NOTIFY_SMTP_URL, RESI_NOTIFY_EMAIL_TO, RESI_NOTIFY_EMAIL_FROM,
            RESI_NOTIFY_SMTP_USERNAME, RESI_NOTIFY_SMTP_PASSWORD

Options:
  --title T      the event's title (default "resi notify test")
  --text T       the event's text
  --severity S   info (default), success, warning or error
  --json         one JSON object per target

Exit status: 0 every target took the event; 1 one did not; 2 a usage error.]]

local SPEC = {
  title = { type = "string", default = "resi notify test" }, text = { type = "string" },
  severity = { type = "string", default = "info", choices = { info = true, success = true, warning = true, error = true } },
  json = { type = "flag" },
}

-- A test waits for its answer: a shorter deadline than a workflow's.
local CLI_OPTIONS = { deadline = 30, attempts = 3 }

-- The notifier for TARGET, or a usage error.
local function notifier_for(name)
  local notify = require "resi.notify"
  if name == "all" then
    local n = notify.from_env(CLI_OPTIONS)
    if not n then argparse.usage_error("no notification target is configured (set RESI_NOTIFY_* variables)") end
    return n
  end
  if not notify.ENV_TRIGGER[name] then
    argparse.usage_error(("unknown TARGET %q (webhook, slack, discord, telegram, email or all)"):format(name))
  end
  local ok, n = pcall(notify.new, name, CLI_OPTIONS)
  if not ok then argparse.usage_error((tostring(n):gsub("^[^:]*:%d+: ", ""))) end
  return n
end

-- resi notify test TARGET: one test event, each answer printed.
local function cmd_test(o, rest)
  if not rest[1] then argparse.usage_error("missing TARGET (webhook, slack, discord, telegram, email or all)") end
  local n = notifier_for(rest[1])
  local host = require("luv").os_gethostname()
  local results = n:test { kind = "test", title = o.title, severity = o.severity,
    text = o.text or ("A test notification from resi on " .. host .. "."), fields = { host = host, sent_by = "resi notify test" } }
  local failed = false
  for _, r in ipairs(results) do
    failed = failed or not r.ok
    if o.json then
      io.stdout:write(require("resi.json").encode(r, { sort_keys = true }), "\n")
    else
      io.stdout:write(("%s: %s (%s%s)\n"):format(r.label, r.ok and "delivered" or "FAILED",
        r.ok and r.answer or r.error or "?", r.attempts and (", " .. r.attempts .. " attempt" .. (r.attempts == 1 and "" or "s")) or ""))
    end
  end
  if failed then task.set_exit_status(1) end
end

-- Dispatches to a subcommand.
local function main(o, rest)
  local cmd = table.remove(rest, 1)
  if cmd == "test" then return cmd_test(o, rest) end
  argparse.usage_error(cmd and ("unknown subcommand %q (test)"):format(cmd) or "missing subcommand (test)")
end

--- Runs `resi notify` with the command line's arguments.
---@param ... string
return function(...)
  argparse.run({ ... }, SPEC, help, main)
end
