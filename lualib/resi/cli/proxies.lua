--- resi proxies convert|dedupe|sticky|check: the proxy-list utilities for
--- shell users. Input is the FILEs given, or stdin when none (or "-").
--- Exit status: 0 success, 1 when lines were rejected or proxies failed,
--- 2 a usage error.
local fs = require "resi.fs"
local proxylist = require "resi.proxylist"
local task = require "resi.task"

local help = {}

help.main = [=[
usage: resi proxies COMMAND [OPTIONS] [FILE...]

Proxy-list utilities. FILEs are read in turn; with none (or "-") stdin is read.

Commands:
  convert   rewrite a list in another format (streams: any size, bounded memory)
  dedupe    drop repeated proxies (same scheme, host, port, user and password)
  sticky    generate a sticky-session list for a provider's username dialect
  refresh   give the sticky entries of a list new session ids (new exit IPs)
  check     fetch a URL through every proxy and report which work

Formats: list (host:port:user:pass), userpass (user:pass@host:port),
url (scheme://user:pass@host:port), json (ResiFactory's array of objects, or a
whole POST /proxies answer in any format), hostport (host:port), proxychains
(type host port [user [pass]], as in proxychains.conf); input also "auto"
(the default: detected per line).

Run "resi proxies COMMAND --help" for a command's options.]=]

help.convert = [[
usage: resi proxies convert --to FORMAT [--from FORMAT] [--scheme SCHEME] [-o FILE] [FILE...]

Converts proxy lists to FORMAT (list, userpass, url, json, hostport,
proxychains). Always
streams: input is read 1 MiB at a time and each chunk's output is written
before the next is read, so memory stays bounded whatever the input size
(JSON input is read object by object).

  --from FORMAT    input format: auto (default), list, userpass, url, json, hostport,
                   proxychains
  --to FORMAT      output format (required)
  --scheme SCHEME  scheme of lines that have none (default http)
  -o, --output F   write to F atomically (temp file + rename) instead of stdout

Rejected lines are reported on stderr as FILE:LINE: reason and left out;
the exit status is then 1. list, userpass and hostport carry no scheme;
hostport carries no credentials; proxychains has no https and writes
socks4a/socks5h as socks4/socks5 (proxychains' proxy_dns decides).]]

help.dedupe = [[
usage: resi proxies dedupe [--to FORMAT] [--from FORMAT] [--scheme SCHEME] [-o FILE] [FILE...]

Drops repeated proxies, keeping the first of each (compared after
normalisation: lower-case scheme and host, http for lines without a scheme).
--to defaults to --from when it names a format, else url.]]

help.sticky = [[
usage: resi proxies sticky --provider NAME --sessions N [OPTIONS]

Generates N proxies, each with its own unique random session id.

The list carries the credentials you give: a sub-user's (Oxylabs) or a
token's (UnknownProxies). They are never taken from $OXYLABS_USERNAME /
$UNKNOWNPROXIES_USERNAME: those are the account's API login, which would
give whoever gets the list the whole account. Options a provider does not
take are refused.

  --provider NAME    oxylabs, unknownproxies or template
  --sessions N       number of sessions (1..1000000)
  --minutes M        session lifetime (oxylabs: 1..1440; unknownproxies: not supported)
  --username U       the proxy user (required): an Oxylabs sub-user, or an
                     UnknownProxies token's username
  $RESI_PROXY_PASSWORD  its password (required): the sub-user's, or the token's;
                     also RESI_PROXY_PASSWORD_FILE=path or a file RESI_PROXY_PASSWORD
                     in $CREDENTIALS_DIRECTORY (never on the command line, where
                     ps shows it)
  --country CC --city NAME --state NAME     oxylabs targeting
  --pool ID          unknownproxies pool (required): ]] .. table.concat(require("resi.proxylist.sticky").pool_names(), ", ") .. [[

  --port N           the gateway's port (unknownproxies: the pool's by default)
  --host H           another gateway host (unknownproxies: instead of --pool, with --port)
  --template T --host H --port N --charset SET --length N --max-minutes M
                                            template: username with {session}, {minutes}
  --seed N           reproducible ids (default: random)
  --scheme SCHEME    http (default), https, socks5, ...
  --to FORMAT        output format (default url)
  -o, --output F     write to F atomically instead of stdout]]

help.refresh = [[
usage: resi proxies refresh [OPTIONS] [FILE...]

Copies a proxy list, giving every sticky entry a new session id, unique in
the list (the provider then picks a new exit IP): Oxylabs usernames with a
sessid, UnknownProxies session passwords (PASS-9 digits on an unknownproxies
host). Other entries are copied unchanged.

  --minutes M        also set Oxylabs' session lifetime (sesstime, 1..1440)
  --seed N           reproducible ids (default: random)
  --from FORMAT      input format (default auto)
  --scheme SCHEME    scheme of lines that have none (default http)
  --to FORMAT        output format (default: --from when it names one, else url)
  -o, --output F     write to F atomically instead of stdout]]

help.check = [[
usage: resi proxies check --url URL [OPTIONS] [FILE...]

Fetches URL through every proxy (HTTP, HTTPS, SOCKS4/5 with credentials) and
prints one line per proxy: ok or failed, the failure class (auth, connect,
timeout, tls, resolve, status, proxy, ...), HTTP status, latency and the proxy
with its password masked. A progress bar is drawn on stderr when it is a terminal.

  --url URL            the URL to fetch through each proxy: https://, or plain
                       http:// to any host (e.g. http://ip-api.com/json; a check
                       target carries no resi secret; the direct preflight
                       request is skipped for plain http:// off loopback)
  --concurrency N      proxies checked at once (default 20)
  --timeout S          seconds per proxy (default 10)
  --rate N/SECONDS     start at most N checks per SECONDS (e.g. 50/1), for a
                       gateway that limits new connections
  --from FORMAT        input format (default auto)
  --scheme SCHEME      scheme of lines that have none (default http)
  --json               one JSON object per line instead of text
  --ok FILE            also write the working proxies to FILE (--to format, default url)
  --to FORMAT          format for --ok
  --ca-file FILE       CA bundle for https targets and proxies
  --progress, --no-progress   force the progress bar on or off

Ctrl-C (SIGINT) or SIGTERM stops the run: no new checks start, the ones in
flight are abandoned, the proxies checked so far are reported (and written
to --ok), and the summary says it was interrupted.

Exit status: 0 when every proxy works, 1 when any failed or the input holds
no proxies, 2 a usage error, 130 (SIGINT) or 143 (SIGTERM) when interrupted.]]

-- A usage error: message and hint on stderr, exit status 2.
local Usage = {}
local function usage(msg) error(setmetatable({ msg = msg }, Usage), 0) end

-- Options that take a value, per command (others are flags).
local VALUED = {
  from = true, to = true, scheme = true, output = true, o = true, provider = true, sessions = true,
  minutes = true, username = true, country = true, city = true, state = true,
  pool = true, port = true, template = true, host = true, charset = true, length = true,
  ["max-minutes"] = true, seed = true, url = true, concurrency = true, timeout = true, ok = true,
  ["ca-file"] = true, rate = true,
}

-- Splits args into options (by name) and positional files.
local function parse_args(args, allowed)
  local opts, files, i = {}, {}, 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do files[#files + 1] = args[j] end
      break
    elseif a == "-" or a:sub(1, 1) ~= "-" then
      files[#files + 1] = a
    else
      local name, value = a:match("^%-%-?([%w-]+)=(.*)$")
      name = name or a:match("^%-%-?([%w-]+)$")
      if not name or not allowed[name] then usage("unknown option " .. a) end
      if name == "o" then name = "output" end
      if VALUED[name] then
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then usage(a .. " needs a value") end
        end
        opts[name] = value
      else
        if value ~= nil then usage(a .. " takes no value") end
        opts[name] = true
      end
    end
    i = i + 1
  end
  return opts, files
end

-- Turns a list of option names into a set.
local function set(names)
  local s = {}
  for name in names:gmatch("%S+") do s[name] = true end
  return s
end

-- Checks a format option.
local function format_opt(v, name, allow_auto)
  if v == nil then return nil end
  if v == "auto" and allow_auto then return v end
  for _, f in ipairs(proxylist.formats) do
    if f == v then return v end
  end
  usage(("--%s %s: unknown format (expected %s%s)"):format(name, v, allow_auto and "auto, " or "",
    table.concat(proxylist.formats, ", ")))
end

-- Checks a scheme option.
local function scheme_opt(v)
  if v == nil then return nil end
  local lv = v:lower()
  for _, s in ipairs(proxylist.schemes) do
    if s == lv then return lv end
  end
  if lv == "socks" then return "socks5" end
  usage("--scheme " .. v .. ": unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)")
end

-- Checks an integer option.
local function int_opt(v, name)
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if n == nil then usage(("--%s %s: expected an integer"):format(name, v)) end
  return n
end

-- Checks a number option.
local function num_opt(v, name)
  if v == nil then return nil end
  local n = tonumber(v)
  if n == nil or n <= 0 then usage(("--%s %s: expected a positive number"):format(name, v)) end
  return n
end

-- Where output goes: stdout, or a file replaced atomically when the command
-- commits (written as it comes, so output of any size streams; no fsync, as
-- with a shell redirect).
local function output(path)
  if path == nil then
    return { file = io.stdout, write = function(_, s) io.stdout:write(s) end, commit = function() io.stdout:flush() end,
      abort = function() end }
  end
  local ok, w = pcall(fs.atomic_writer, path, { sync = false })
  if not ok then error("resi proxies: " .. tostring(w), 0) end
  return w
end

-- Reports rejected lines of one input; returns how many.
local function report(errors, name)
  if not errors then return 0 end
  for _, e in ipairs(errors) do
    io.stderr:write(("resi proxies: %s:%d: %s\n"):format(name, e.line, e.reason))
  end
  return #errors
end

-- Calls fn(file, name) for every input: files in turn, or stdin.
local function each_input(files, fn)
  if #files == 0 then files = { "-" } end
  for _, path in ipairs(files) do
    local f, name = io.stdin, "stdin"
    if path ~= "-" then
      local err
      f, err = io.open(path, "rb")
      if not f then error("resi proxies: cannot read " .. err, 0) end
      name = path
    end
    fn(f, name)
    if f ~= io.stdin then f:close() end
  end
end

local commands = {}

commands.convert = function(args)
  local opts, files = parse_args(args, set "from to scheme output o help h")
  local to = format_opt(opts.to, "to")
  if not to then usage("convert needs --to FORMAT") end
  local conv = proxylist.converter {
    from = format_opt(opts.from, "from", true) or "auto", to = to, scheme = scheme_opt(opts.scheme),
  }
  local out = output(opts.output)
  local rejected, count = 0, 0
  local ok, err = pcall(each_input, files, function(f, name)
    while true do -- C reads and writes the chunks: no Lua strings in between
      local more, errs = conv:pump(f, out.file)
      rejected = rejected + report(errs, name)
      if not more then break end
    end
    local text, errs = conv:next_input()
    out:write(text)
    rejected = rejected + report(errs, name)
  end)
  if ok then
    local text, errs
    text, errs, count = conv:finish()
    out:write(text)
    rejected = rejected + report(errs, "input")
    out:commit()
  else
    out:abort()
    error(err, 0)
  end
  if rejected > 0 then
    io.stderr:write(("resi proxies: %d entries written, %d lines rejected\n"):format(count, rejected))
    return 1
  end
  return 0
end

-- Loads every input into one list, reporting rejected lines.
local function load_all(files, opts)
  local lists, rejected = {}, 0
  each_input(files, function(f, name)
    local r = proxylist.reader { format = opts.from, scheme = opts.scheme }
    while r:pump(f) do end -- C reads the chunks into the list: no Lua strings
    local list = r:finish()
    rejected = rejected + report(list.errors, name)
    lists[#lists + 1] = list
  end)
  if #lists == 1 then return lists[1], rejected end
  local all = {}
  for _, l in ipairs(lists) do
    for i = 1, #l do all[#all + 1] = l[i] end
  end
  return proxylist.from(all), rejected
end

commands.dedupe = function(args)
  local opts, files = parse_args(args, set "from to scheme output o help h")
  local from = format_opt(opts.from, "from", true)
  local to = format_opt(opts.to, "to") or (from ~= "auto" and from) or "url"
  local list, rejected = load_all(files, { from = from, scheme = scheme_opt(opts.scheme) })
  local unique = list:dedupe()
  local text = unique:format(to) -- before the output exists: a format error leaves no temp file
  local out = output(opts.output)
  out:write(text)
  out:commit()
  io.stderr:write(("resi proxies: %d entries, %d unique\n"):format(#list, #unique))
  return rejected > 0 and 1 or 0
end

-- sticky's options that name a Lua option of a different spelling.
local STICKY_LUA = { ["max-minutes"] = "max_minutes" }
-- How a missing sticky option is named in a usage error.
local STICKY_FLAG = {
  provider = "--provider NAME", sessions = "--sessions N", username = "--username U", password = "$RESI_PROXY_PASSWORD",
  pool = "--pool ID", template = "--template T", host = "--host H", port = "--port N",
}
-- The API login variables of each provider (never used as proxy credentials).
local API_LOGIN = { oxylabs = "OXYLABS", unknownproxies = "UNKNOWNPROXIES" }

-- The sticky options the user gave (by CLI name) that the provider does
-- not take, sorted.
local function sticky_extra(opts, provider)
  local spec = require("resi.proxylist.sticky").options[provider]
  if not spec or spec.any then return {} end
  local takes = set("provider sessions password to output help h")
  for _, name in ipairs(spec.takes) do takes[(name:gsub("_", "-"))] = true end
  for name in pairs(spec.refuses or {}) do takes[name] = true end -- refused by the builder, with its reason
  local extra = {}
  for name in pairs(opts) do
    if not takes[name] then extra[#extra + 1] = "--" .. name end
  end
  table.sort(extra)
  return extra
end

-- The required sticky options missing from opts, as usage text.
local function sticky_missing(opts)
  local missing = {}
  if not opts.provider then missing[1] = STICKY_FLAG.provider end
  if not opts.sessions then missing[#missing + 1] = STICKY_FLAG.sessions end
  local spec = require("resi.proxylist.sticky").options[opts.provider]
  for _, name in ipairs(spec and spec.required or {}) do
    if opts[name] == nil then missing[#missing + 1] = STICKY_FLAG[name] or ("--" .. name) end
  end
  if opts.provider == "unknownproxies" and not opts.pool and not opts.host then missing[#missing + 1] = STICKY_FLAG.pool end
  return missing
end

-- Lines that explain the missing credentials and pool of a sticky usage
-- error ("" when neither is missing).
local function sticky_hints(opts)
  local provider, env, hints = opts.provider, API_LOGIN[opts.provider], {}
  if env and (not opts.username or not opts.password) then
    hints[1] = ("--username and $RESI_PROXY_PASSWORD are the proxy user's (%s), never the account's API login in "
      .. "$%s_USERNAME/$%s_PASSWORD"):format(provider == "oxylabs" and "an Oxylabs sub-user"
        or "the token's username and password", env, env)
  end
  if provider == "unknownproxies" and not opts.pool and not opts.host then
    local pools = require("resi.proxylist.sticky").pool_names()
    hints[#hints + 1] = "--pool is one of " .. table.concat(pools, ", ") .. " (or give --host and --port)"
  end
  if #hints == 0 then return "" end
  return "\n  " .. table.concat(hints, "\n  ")
end

-- Checks sticky's options as a whole: a known provider, every required
-- option there (all missing ones named in one error), none it does not
-- take, a known --pool. Usage errors; never echoes a password.
local function sticky_check(opts)
  local sticky = require "resi.proxylist.sticky"
  local provider = opts.provider
  if provider and not sticky.options[provider] then
    usage(("--provider %s: unknown provider (expected %s)"):format(provider, table.concat(sticky.providers, ", ")))
  end
  local missing = sticky_missing(opts)
  if #missing > 0 then usage("missing " .. table.concat(missing, ", ") .. sticky_hints(opts)) end
  local extra = sticky_extra(opts, provider)
  if #extra > 0 then usage(("%s do%s not apply to --provider %s"):format(table.concat(extra, ", "),
    #extra == 1 and "es" or "", provider)) end
  if provider == "unknownproxies" and opts.pool and not opts.host and not sticky.unknownproxies_pools[opts.pool:lower()] then
    usage(("--pool %s: unknown unknownproxies pool (known: %s; for another gateway give --host and --port)")
      :format(opts.pool, table.concat(sticky.pool_names(), ", ")))
  end
end

-- Warns when the proxy user given is the account's API login: a list for
-- customers should carry a sub-user's (or token's) credentials.
local function warn_api_login(opts)
  local env = API_LOGIN[opts.provider]
  local login = env and require("resi.credentials").get(env .. "_USERNAME")
  if login and login ~= "" and opts.username == login then
    io.stderr:write(("resi proxies sticky: warning: --username is the account's API login ($%s_USERNAME); "
      .. "a list for customers should carry a sub-user's credentials\n"):format(env))
  end
end

commands.sticky = function(args)
  for _, a in ipairs(args) do
    if a:match("^%-%-?password") then
      usage("--password is not taken (ps would show it to every user): set RESI_PROXY_PASSWORD, or "
        .. "RESI_PROXY_PASSWORD_FILE=path, or a file RESI_PROXY_PASSWORD in $CREDENTIALS_DIRECTORY")
    end
  end
  local opts, files = parse_args(args, set([[provider sessions minutes username country city state pool
    port template host charset length max-minutes seed scheme to output o help h]]))
  opts.password = require("resi.credentials").get("RESI_PROXY_PASSWORD")
  if #files > 0 then usage("sticky reads no files (got " .. files[1] .. ")") end
  sticky_check(opts)
  warn_api_login(opts)
  local o = {}
  for name, value in pairs(opts) do
    if name ~= "to" and name ~= "output" then o[STICKY_LUA[name] or name] = value end
  end
  for _, name in ipairs { "sessions", "minutes", "port", "length", "seed" } do o[name] = int_opt(o[name], name) end
  o.max_minutes = int_opt(o.max_minutes, "max-minutes")
  o.scheme = scheme_opt(o.scheme)
  local to = format_opt(opts.to, "to") or "url"
  local ok, list = pcall(proxylist.sticky, o)
  if not ok then usage(tostring(list)) end
  local text = list:format(to)
  local out = output(opts.output)
  out:write(text)
  out:commit()
  return 0
end

commands.refresh = function(args)
  local opts, files = parse_args(args, set "minutes seed from scheme to output o help h")
  local from = format_opt(opts.from, "from", true)
  local to = format_opt(opts.to, "to") or (from and from ~= "auto" and from) or "url"
  local list, rejected = load_all(files, { from = from, scheme = scheme_opt(opts.scheme) })
  local ok, fresh, n = pcall(proxylist.refresh, list, { minutes = int_opt(opts.minutes, "minutes"),
    seed = int_opt(opts.seed, "seed") })
  if not ok then usage(tostring(fresh)) end
  local text = fresh:format(to)
  local out = output(opts.output)
  out:write(text)
  out:commit()
  io.stderr:write(("resi proxies: %d sessions refreshed, %d entries copied unchanged\n"):format(n, #list - n))
  return rejected > 0 and 1 or 0
end

-- check's options, checked before any input is read: the options for
-- proxylist.check, and the --ok format.
local function check_options(opts)
  if not opts.url then usage("check needs --url URL") end
  local url_ok, why = require("resi.proxylist.check").check_url(opts.url)
  if not url_ok then usage("--url: " .. why:gsub("^url ", "")) end
  local progress = nil
  if opts.progress then progress = true end
  if opts["no-progress"] then progress = false end
  local concurrency = int_opt(opts.concurrency, "concurrency")
  if concurrency and concurrency < 1 then usage("--concurrency must be at least 1") end
  local limiter
  if opts.rate then
    local n, per = opts.rate:match("^(%d+)/(%d*%.?%d+)$")
    n, per = tonumber(n), tonumber(per)
    if not n or not per or n < 1 or per <= 0 then usage(("--rate %s: expected N/SECONDS, e.g. 50/1"):format(opts.rate)) end
    limiter = require("resi.ratelimit").new { name = "proxies check", limit = n, window = per }
  end
  return {
    url = opts.url, concurrency = concurrency, timeout = num_opt(opts.timeout, "timeout"),
    ca_file = opts["ca-file"], progress = progress, limiter = limiter,
  }, format_opt(opts.to, "to") or "url"
end

-- Signal numbers, for the exit status of an interrupted run (128 + N).
local SIGNUM = { sigint = 2, sigterm = 15 }

-- Watches SIGINT and SIGTERM (resi.uv signal handles, so the loop keeps
-- running); on the first one, on_signal(name) runs in a task of its own.
-- The handles are closed then, so a second Ctrl-C ends the process at once
-- (libuv restores the default action). Returns a function that stops
-- watching.
local function watch_signals(on_signal)
  local uv = require "luv"
  local handles, got, notify = {}, nil, nil
  local function close()
    for _, h in ipairs(handles) do
      if not h:is_closing() then h:stop(); h:close() end
    end
  end
  for _, name in ipairs { "sigint", "sigterm" } do
    local h = uv.new_signal()
    h:start(name, function()
      if got then return end
      got = name
      close()
      if notify then notify() end
    end)
    handles[#handles + 1] = h
  end
  local watcher = task.spawn(function()
    if not got then task.await(function(done) notify = done end) end
    on_signal(got)
  end)
  return function()
    watcher:cancel()
    close()
  end
end

-- Runs proxylist.check in a task of its own that SIGINT/SIGTERM cancel
-- (no new checks start, the ones in flight are aborted). Returns the
-- results finished so far, by list index, and the signal's name when
-- interrupted.
local function run_checks(list, o)
  local results, interrupted = {}, nil
  o.on_result = function(r) results[r.index] = r end
  local checker = task.spawn(proxylist.check, list, o)
  local stop = watch_signals(function(name)
    interrupted = name
    checker:cancel()
  end)
  local ok, err = pcall(checker.wait, checker)
  stop()
  if not ok and not (interrupted and task.is_cancelled(err)) then error(err, 0) end
  return results, interrupted
end

-- Writes one result line (text or JSON) to stdout.
local function print_result(r, json)
  if json then
    io.stdout:write(json.encode({
      index = r.index, proxy = r.proxy, ok = r.ok, error = r.error, status = r.status,
      latency_ms = math.floor(r.latency * 1000 + 0.5), message = r.message,
    }, { sort_keys = true }), "\n")
  else
    io.stdout:write(("%-6s %-8s %3s %6d ms  %s%s\n"):format(r.ok and "ok" or "failed", r.error or "-",
      r.status and tostring(r.status) or "-", math.floor(r.latency * 1000 + 0.5), r.proxy,
      r.message and ("  (" .. r.message .. ")") or ""))
  end
end

-- Prints the results there are, in list order; returns the indexes of
-- the working proxies, how many were checked and how many failed.
local function print_results(list, results, json)
  local good, checked, failed = {}, 0, 0
  for i = 1, #list do
    local r = results[i]
    if r then
      checked = checked + 1
      if r.ok then good[#good + 1] = i else failed = failed + 1 end
      print_result(r, json)
    end
  end
  io.stdout:flush()
  return good, checked, failed
end

commands.check = function(args)
  local opts, files = parse_args(args, set([[url concurrency timeout rate from scheme json ok to ca-file progress
    no-progress help h]]))
  local o, to = check_options(opts)
  local list, rejected = load_all(files, {
    from = format_opt(opts.from, "from", true), scheme = scheme_opt(opts.scheme),
  })
  if #list == 0 then
    io.stderr:write("resi proxies check: no proxies in input",
      rejected > 0 and (" (%d lines rejected)"):format(rejected) or "", "\n")
    return 1
  end
  local results, interrupted = run_checks(list, o)
  local good, checked, failed = print_results(list, results, opts.json and require "resi.json")
  if opts.ok then
    local ok_list = list:filter(function(_, i) return results[i] and results[i].ok end)
    ok_list:save(opts.ok, to) -- atomic (resi.fs): a temp file, then rename
  end
  if interrupted then
    io.stderr:write(("resi proxies: interrupted (%s): %d of %d checked, %d ok, %d failed, %d not checked%s\n")
      :format(interrupted:upper(), checked, #list, #good, failed, #list - checked,
        opts.ok and ("; " .. opts.ok .. " has the " .. #good .. " that work") or ""))
    return 128 + SIGNUM[interrupted]
  end
  io.stderr:write(("resi proxies: %d checked, %d ok, %d failed\n"):format(checked, #good, failed))
  return (failed > 0 or rejected > 0) and 1 or 0
end

-- Subcommand dispatch and error text shared with resi up/oxy/rf.
local cmdline = require "resi.cmdline.command"
local clean = cmdline.clean

-- The commands as cmdline.subcommand takes them (an unknown one shows the help).
local TOOL = { name = "proxies", help = help.main, unknown_hint = "\n" .. help.main, commands = {} }
for name, run in pairs(commands) do TOOL.commands[name] = { help = help[name], run = run } end

--- Runs `resi proxies` with the command line's arguments.
---@param ... string
return function(...)
  local name, command, rest = cmdline.subcommand(TOOL, { ... })
  if not name then return end
  local ok, status = pcall(command.run, rest)
  if not ok then
    if getmetatable(status) == Usage then
      io.stderr:write("resi proxies ", name, ": ", clean(status.msg), "\n(see resi proxies ", name, " --help)\n")
      task.set_exit_status(2)
      return
    end
    io.stderr:write(clean(status), "\n")
    task.set_exit_status(1)
    return
  end
  io.stdout:flush()
  task.set_exit_status(status)
end
