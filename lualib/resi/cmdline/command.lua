--- resi.cmdline.command: the frame the provider commands (resi up, resi oxy,
--- resi rf) share: subcommand dispatch, --help, options (resi.argparse,
--- plus the short spellings -n, -o and -y), a terminal confirmation for
--- destructive calls, and one exit-status rule:
---   0 success;
---   1 the call failed: the provider's error (tostring: one line, never a
---     secret), a credential file that cannot be read, or a confirmation
---     answered no;
---   2 a usage error: an unknown option or command, a missing argument, or
---     input the provider module refused before any request was sent (a
---     validation error naming the field, missing credentials included).
local argparse = require "resi.argparse"
local task = require "resi.task"

local M = {}

-- The short options and the long ones they stand for.
local SHORT = { ["-n"] = "--quantity", ["-o"] = "--output", ["-y"] = "--yes" }

-- args with the short options spelt long (up to a "--").
local function expand(args)
  local out, literal = {}, false
  for _, a in ipairs(args) do
    if a == "--" then literal = true end
    out[#out + 1] = (not literal and SHORT[a]) or a
  end
  return out
end

--- An error message without a leading Lua position ("x.lua:12: "): what a
--- user reads names the fault, not a file inside resi (resi proxies too).
---@param msg any
---@return string
function M.clean(msg)
  return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", ""))
end
local clean = M.clean

-- The fields of a missing-credential error (validation, no request sent),
-- whose message gets a hint naming the other places credentials come from.
local CREDENTIAL_FIELDS = { username = true, password = true, api_key = true }

-- The message and exit status of an error raised by a command (trace:
-- its traceback, shown when RESI_LOG_LEVEL=debug).
local function describe(e, trace)
  local common = require "resi.providers.common"
  if common.is_error(e) then
    local local_check = e.kind == "validation" and e.status == nil
    local msg = tostring(e)
    if local_check and CREDENTIAL_FIELDS[e.field] then
      msg = msg:gsub("%(or set ([%u_]+)%)", "(set %1, or %1_FILE, or $CREDENTIALS_DIRECTORY/%1)")
    end
    return msg, local_check and 2 or 1
  end
  local msg = clean(e)
  if require("resi.log").enabled("debug") then msg = msg .. trace end
  return msg, 1
end

-- Runs one subcommand: parses its options, calls its run, reports errors.
local function run_command(tool, name, cmd, args)
  local prefix = ("resi %s %s"):format(tool.name, name)
  local ok, status = xpcall(function()
    local opts, rest = argparse.parse(expand(args), cmd.spec or {})
    return cmd.run(opts, rest)
  end, function(e)
    if type(e) == "table" and e.usage then return e end
    return { err = e, trace = debug.traceback("", 2) }
  end)
  if ok then
    io.stdout:flush()
    task.set_exit_status(status or 0)
    return
  end
  if status.usage then
    io.stderr:write(prefix, ": ", status.usage, "\n(see ", prefix, " --help)\n")
    task.set_exit_status(2)
    return
  end
  local msg, code = describe(status.err, status.trace)
  io.stderr:write(prefix, ": ", msg, "\n")
  task.set_exit_status(code)
end

--- The subcommand `resi TOOL ARGS...` names (tool: see M.main; the
--- unknown-command hint after the message is tool.unknown_hint, default
--- "(see resi TOOL --help)"). No command, --help, `COMMAND --help` (before
--- a "--") and an unknown name are answered here, with their exit status,
--- and give nil; else the name, its command and the arguments after it.
--- resi proxies shares it with its own option parser.
---@param tool {name: string, help: string, commands: table, unknown_hint?: string}
---@param args string[]
---@return string|nil name
---@return table cmd
---@return string[] rest
function M.subcommand(tool, args)
  local name = args[1]
  if name == nil then
    io.stderr:write(tool.help, "\n")
    task.set_exit_status(2)
    return nil
  end
  if name == "--help" or name == "-h" or name == "help" then
    io.stdout:write(tool.help, "\n")
    return nil
  end
  local cmd = tool.commands[name]
  if not cmd then
    io.stderr:write(("resi %s: unknown command '%s'\n%s\n"):format(tool.name, name,
      tool.unknown_hint or ("(see resi %s --help)"):format(tool.name)))
    task.set_exit_status(2)
    return nil
  end
  local rest = { table.unpack(args, 2) }
  for _, a in ipairs(rest) do
    if a == "--" then break end
    if a == "--help" or a == "-h" then
      io.stdout:write(cmd.help, "\n")
      return nil
    end
  end
  return name, cmd, rest
end

--- Runs `resi TOOL ...`: tool = {name, help, commands = {NAME = {help,
--- spec (resi.argparse's), run = fun(opts, rest): exit status|nil}}}.
---@param tool {name: string, help: string, commands: table<string, {help: string, spec?: table, run: fun(opts: table, rest: string[]): integer|nil}>}
---@param args string[]
function M.main(tool, args)
  local name, cmd, rest = M.subcommand(tool, args)
  if name then run_command(tool, name, cmd, rest) end
end

--- The positional arguments of a command, checked: exactly the names
--- given (e.g. {"ID"}); a usage error names the missing or extra one.
---@param rest string[]
---@param names string[]
---@return string ...
function M.positional(rest, names)
  if #rest < #names then argparse.usage_error("missing " .. names[#rest + 1]) end
  if #rest > #names then argparse.usage_error(("unexpected argument %q"):format(rest[#names + 1])) end
  return table.unpack(rest)
end

--- The directory resi's Lua library sits in: the parent of lualib/
--- (PREFIX/share/resi when installed, the checkout's root when run there),
--- where the bundled scripts/, examples/ and luals/ are.
---@return string
function M.share_dir()
  local lualib = require("resi.libdir").lualib()
  local dir = lualib:match("^(.*)/[^/]+$") or "."
  return require("luv").fs_realpath(dir) or dir
end

--- The account of a provider (resi.providers.open, credentials from the
--- environment: NAME, NAME_FILE or $CREDENTIALS_DIRECTORY).
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@return resi.providers.account
function M.account(provider)
  return require("resi.providers").open(provider)
end

--- The list commands (resi up tokens, resi oxy users): no arguments, one
--- --json flag; prints the provider account's tokens with
--- resi.cmdline.output.records (to_json, columns, to_row: as it takes them).
---@param provider "unknownproxies"|"oxylabs"
---@param help string
---@param to_json fun(t: resi.providers.token): table
---@param columns table[]
---@param to_row fun(t: resi.providers.token): string[]
---@return {help: string, spec: table, run: fun(opts: table, rest: string[])}
function M.tokens_command(provider, help, to_json, columns, to_row)
  return { help = help, spec = { json = { type = "flag" } }, run = function(opts, rest)
    M.positional(rest, {})
    require("resi.cmdline.output").records(M.account(provider):tokens(), opts.json, to_json, columns, to_row)
  end }
end

-- Reads one line from the terminal on stdin without blocking the loop;
-- the line, or nil at end of input.
local function read_line()
  local uv = require "luv"
  local tty = uv.new_tty(0, true)
  return task.await(function(done)
    local buf = ""
    tty:read_start(function(_, data)
      if data then buf = buf .. data end
      if not data or buf:find("\n", 1, true) then
        tty:read_stop()
        tty:close()
        done(data and buf:match("^[^\r\n]*") or nil)
      end
    end)
  end)
end

--- Asks question on the terminal ("... [y/N] ") unless yes (--yes) is
--- set; true when confirmed. Without --yes and without a terminal on
--- stdin and stderr it is a usage error: nothing irreversible happens
--- unasked.
---@param question string
---@param yes boolean|nil
---@return boolean
function M.confirm(question, yes)
  if yes then return true end
  local output = require "resi.cmdline.output"
  if not (output.is_tty(0) and output.is_tty(2)) then
    argparse.usage_error("this cannot be undone: give --yes (stdin is not a terminal to ask on)")
  end
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = read_line()
  return answer ~= nil and answer:match("^%s*[yY]") ~= nil
end

--- The delete commands: looks the token up (an unknown one is the
--- provider's not_found), asks (M.confirm, "Delete LABEL? ..." with label
--- formatted with its id and username), deletes it and prints "deleted ID"
--- or --json {id, deleted, already}. Returns the exit status.
---@param acct resi.providers.account
---@param id string
---@param opts {yes?: boolean, json?: boolean}
---@param label string  e.g. "UnknownProxies token %s (username %s)"
---@param prefix string  e.g. "resi up delete"
---@return integer
function M.delete(acct, id, opts, label, prefix)
  local t = acct:token(id)
  if not M.confirm(("Delete " .. label .. "? It cannot be undone."):format(t.id, tostring(t.username)), opts.yes) then
    io.stderr:write(prefix, ": not confirmed; nothing was deleted\n")
    return 1
  end
  local r = acct:delete_token(t.id)
  if opts.json then
    require("resi.cmdline.output").json({ id = r.id, deleted = true, already = r.already })
  else
    io.stdout:write(("deleted %s%s\n"):format(r.id, r.already and " (already)" or ""))
  end
  return 0
end

--- Says on stderr that a password is printed this once (it is the one
--- secret these commands print, because the user asked for it).
---@param what string  e.g. "token abc's password"
function M.password_notice(what)
  io.stderr:write(("%s is shown this once: store it now (these commands never print it again)\n"):format(what))
end

return M
