-- resi.repl and its parts, with no terminal: evaluation in tasks, values
-- and errors shown (masked), continuation, locals kept, the pretty
-- printer's limits, completion that calls nothing (and loads client
-- classes only when it looks inside them), public methods only, history
-- filtering and file rules, help from annotations, and --sim's in-process
-- sandbox.
local repl = require "resi.repl"
local pretty = require "resi.repl.pretty"
local complete = require "resi.repl.complete"
local history = require "resi.repl.history"
local context = require "resi.repl.context"
local rfmod = require "resi.providers.resifactory"
local uv = require "luv"
local proc = require "spec.support.proc"
local repl_run = require "spec.support.repl_run"

local KEY = "rf_live_0123456789abcdefghijklmnopqrX7kQ"

-- A standard session whose output is collected; take() returns and clears
-- it; shown(line) enters one line (as enter) and returns what it wrote.
local function session()
  local out = {}
  local s = repl.standard {
    out = function(t) out[#out + 1] = t end,
    err = function(t) out[#out + 1] = "E: " .. t end,
  }
  local function take()
    local text = table.concat(out)
    for i = #out, 1, -1 do out[i] = nil end
    return text
  end
  local function shown(line)
    local r = s:submit(line)
    if type(r) == "table" then r:wait() end
    return take()
  end
  return s, take, shown
end

-- A session (as session()) with rf bound to a ResiFactory client that
-- points nowhere (no request is made).
local function rf_session()
  local s, take, shown = session()
  s.env.rf = rfmod.new { api_key = KEY, base_url = "http://127.0.0.1:9/api/v1" }
  return s, take, shown
end

-- Submits lines one by one and waits for the entry they make; returns the
-- last submit result.
local function enter(s, ...)
  local r
  for _, line in ipairs { ... } do r = s:submit(line) end
  if type(r) == "table" then r:wait() end
  return r
end


describe("resi.repl session", function()
  it("prints an expression's value, several results in order, and statements print nothing", function()
    local s, take, shown = session()
    assert.equal("2\n", shown("1 + 1"))
    assert.equal('1\t"two"\tnil\t4.0\n', shown("1, 'two', nil, 4.0"))
    assert.equal("", shown("x = 5"))
    enter(s, "=x * 2") -- lua.c's 5.2 form
    assert.equal("10\n", take())
  end)

  it("runs each entry in its own task, so it can wait", function()
    local s, take = session()
    local t = s:submit("resi.sleep(0.01) return resi.current()")
    assert.equal("table", type(t))
    t:wait()
    assert.truthy(take():find("^task %d+ %(repl entry%)"))
    assert.equal(0, #s:running())
  end)

  it("keeps the last value in _ and the last error in _err", function()
    local s, take, shown = session()
    enter(s, "40 + 2")
    assert.equal("42\n42\n", shown("_"))
    enter(s, "error({kind = 'x', message = 'bad thing'})")
    take()
    assert.equal('"bad thing"\n', shown("_err.message"))
  end)

  it("keeps globals in the session environment, not in _G", function()
    local s = session()
    enter(s, "repl_spec_global = 7")
    assert.equal(7, s.env.repl_spec_global)
    assert.is_nil(rawget(_G, "repl_spec_global"))
  end)

  it("continues incomplete input and runs it whole", function()
    local s, take, shown = session()
    assert.equal("more", s:submit("function sq(n)"))
    assert.is_true(s:pending())
    assert.equal("more", s:submit("  return n * n"))
    enter(s, "end")
    assert.is_false(s:pending())
    assert.equal("81\n", shown("sq(9)"))
    assert.equal("more", s:submit("{"))
    enter(s, "1,", "2 }")
    assert.equal("{ 1, 2 }\n", take())
  end)

  it("takes a 4 KiB paste of a multi-line function", function()
    local s, take = session()
    local lines = { "function big(a)", "  local t = 0" }
    local i = 0
    while #table.concat(lines, "\n") < 4096 do
      i = i + 1
      lines[#lines + 1] = ("  t = t + a * %d -- line %d of a long pasted function body"):format(i, i)
    end
    lines[#lines + 1] = "  return t"
    lines[#lines + 1] = "end"
    assert.truthy(#table.concat(lines, "\n") >= 4096)
    enter(s, table.unpack(lines))
    enter(s, "big(2)")
    assert.equal(tostring(i * (i + 1)) .. "\n", take())
  end)

  it("resets after a syntax error that is not at <eof>", function()
    local s, take, shown = session()
    enter(s, "x = = 1")
    assert.truthy(take():find("^E: stdin:1:"))
    assert.is_false(s:pending())
    assert.equal("1\n", shown("1"))
  end)

  it("keeps top-level locals as session variables and says so once", function()
    local s, take, shown = session()
    enter(s, "local a, b <const> = 1, 2")
    assert.truthy(take():find("kept local a, b as session variables", 1, true))
    assert.equal("", shown("local c = a + b"))
    assert.equal("3\n", shown("c"))
    enter(s, "local function twice(n) return 2 * n end")
    assert.equal("6\n", shown("twice(c)"))
    enter(s, "do local inner = 1 end")
    assert.equal("nil\n", shown("inner"))
  end)

  it("prints errors with their fields, masked, and counts them", function()
    local s, take, shown = rf_session()
    local out = shown("rf:generate{quantity = 0}")
    assert.truthy(out:find("^E: resi.providers.error: resifactory: validation invalid_quantity: quantity must be"), out)
    assert.truthy(out:find('field = "quantity"', 1, true), out)
    assert.truthy(out:find('kind = "validation"', 1, true), out)
    out = shown("error('with http://u:PWleak99@h.example/ in it')")
    assert.falsy(out:find("PWleak99", 1, true), out)
    assert.truthy(out:find("stdin:1: with http://u:…@h.example/", 1, true), out)
    assert.equal(2, s.failures)
  end)

  it("names the missing variable when a client has no credentials", function()
    local s, take = session()
    local saved = os.getenv("RF_API_KEY")
    uv.os_unsetenv("RF_API_KEY")
    enter(s, "rf:balance()")
    if saved then uv.os_setenv("RF_API_KEY", saved) end
    assert.truthy(take():find("set RF_API_KEY", 1, true))
  end)

  it("masks a client and a token record in the echo, while print shows what was asked", function()
    local s, take, shown = session()
    s.env.client = rfmod.new { api_key = KEY, base_url = "http://127.0.0.1:9/api/v1" }
    local out = shown("client")
    assert.falsy(out:find(KEY, 1, true), out)
    assert.truthy(out:find("rf_live_…X7kQ", 1, true), out)
    enter(s, "{client = client}")
    assert.falsy(take():find(KEY, 1, true))
    enter(s, 'x = {password = "Secr3tPW", api_key = "rf_live_abcd1234efgh", user = "bob"}')
    out = shown("x")
    assert.falsy(out:find("Secr3tPW", 1, true), out)
    assert.falsy(out:find("abcd1234efgh", 1, true), out)
    assert.truthy(out:find('user = "bob"', 1, true), out)
    assert.equal("Secr3tPW\n", shown("print(x.password)"))
    enter(s, "x.password") -- an echoed string is scrubbed by shape only
    assert.equal('"Secr3tPW"\n', take())
  end)
end)

describe("resi.repl.pretty", function()
  it("sorts keys, puts the array part first and short tables on one line", function()
    assert.equal('{ 1, 2, a = true, b = "x", ["not id"] = 3 }', pretty.render { 1, 2, b = "x", a = true, ["not id"] = 3 })
    assert.equal("{}", pretty.render {})
  end)

  it("breaks long tables over lines and nests them", function()
    local t = { name = string.rep("n", 60), inner = { list = { 1, 2, 3 }, deep = string.rep("d", 70) } }
    local text = pretty.render(t)
    assert.truthy(text:find('^{\n  inner = {\n    deep = "d+",\n    list = { 1, 2, 3 }\n  },\n  name = "n+"\n}$'), text)
  end)

  it("shows cycles and stops at the depth limit with a count", function()
    local t = { a = { b = { c = { d = { e = 1, f = 2 } } } } }
    t.self = t
    local text = pretty.render(t)
    assert.truthy(text:find("self = <cycle>", 1, true), text)
    assert.truthy(text:find("d = {…2}", 1, true), text)
    assert.truthy(pretty.render(t, { depth = 1 }):find("a = {…1}", 1, true))
  end)

  it("cuts long tables and long output with a count of what was left out", function()
    local big = {}
    for i = 1, 100 do big[i] = i end
    assert.truthy(pretty.render(big):find("… 60 more", 1, true))
    local rows = {}
    for i = 1, 300 do rows[i] = { id = i, name = string.rep("x", 70) } end
    local text = pretty.render(rows, { items = 1000 })
    assert.truthy(text:find("… %d+ more lines$"), text:sub(-80))
    assert.equal(200, select(2, text:gsub("\n", "")) + 0) -- 200 lines, then the count
  end)

  it("masks secret-named fields and credential-shaped strings, unless told not to", function()
    local rec = { password = "Secr3tPW", api_key = "rf_live_abcd1234efgh", token = KEY, url = "http://u:pw12345@h/x" }
    local text = pretty.render(rec)
    for _, leak in ipairs { "Secr3tPW", "abcd1234efgh", "0123456789", "pw12345" } do
      assert.falsy(text:find(leak, 1, true), leak .. " in " .. text)
    end
    assert.truthy(text:find('token = "rf_live_…X7kQ"', 1, true), text)
    assert.truthy(pretty.render(rec, { mask = false }):find("Secr3tPW", 1, true))
  end)

  it("prints a proxy list as a summary and its first entries, passwords masked", function()
    local list = require("resi.proxylist").parse(("h%d.example:8000:user%d:pw%dsecret\n"):rep(1):gsub("%%d", "1")
      .. "h2.example:8000:user2:pw2secret\nh3.example:8000:u:p3secretpw\nh4:1:u:p\nh5:1:u:p\nh6:1:u:p\nh7:1:u:p\n")
    local text = pretty.render(list)
    assert.truthy(text:find("^<proxy list: 7 entries>\n  http://user1:…@h1%.example:8000"), text)
    assert.truthy(text:find("… 2 more", 1, true), text)
    assert.falsy(text:find("pw1secret", 1, true), text)
  end)

  it("prints error objects with their message and fields, and functions with their source", function()
    local e = require("resi.providers.common").error { kind = "auth", provider = "oxylabs", status = 401, message = "bad login" }
    local text = pretty.render(e)
    assert.truthy(text:find("^resi.providers.error: oxylabs: auth %(HTTP 401%): bad login\n"), text)
    assert.truthy(text:find("status = 401", 1, true), text)
    assert.truthy(pretty.render(pretty.render):find("^function %(.*pretty%.lua:%d+%)$"))
    assert.equal("function (builtin)", pretty.render(print))
  end)
end)

describe("resi.repl.complete", function()
  local function cands(env, before) return (complete.candidates(env, before)) end

  it("completes globals and fields after a dot", function()
    local s = session()
    enter(s, "my_value = {alpha = 1, alpine = {x = 1}, beta = print}")
    assert.same({ "my_value" }, cands(s.env, "my_v"))
    assert.same({ "my_value.alpha", "my_value.alpine" }, cands(s.env, "x = my_value.al"))
    assert.same({ "my_value.beta(" }, cands(s.env, "my_value.b"))
    assert.same({ "string.format(" }, cands(s.env, "string.form"))
    assert.same({ "print(" }, cands(s.env, "pri"))
  end)

  it("completes methods after a colon through __index tables, and rf:ba to rf:balance(", function()
    local s = rf_session()
    assert.same({ "rf:balance(" }, cands(s.env, "rf:ba"))
    local gen = cands(s.env, "rf:")
    for _, m in ipairs { "rf:generate(", "rf:me(", "rf:pools(", "rf:usage(" } do
      assert.truthy(table.concat(gen, " "):find(m, 1, true), m)
    end
    -- the lazily bound rf (no client built yet) completes from its class
    local fresh = session()
    context.preload(fresh.env)
    assert.is_nil(rawget(fresh.env, "rf"))
    assert.same({ "rf:balance(" }, cands(fresh.env, "rf:ba"))
    assert.is_nil(rawget(fresh.env, "rf"))
  end)

  it("completes through libedit's word (1-based start and stop)", function()
    local s = rf_session()
    local fn = complete.completer(s.env)
    local line = "x = rf:ba"
    assert.same({ "rf:balance(" }, fn("rf:ba", line, 5, #line))
    line = "print(rf:ba"
    assert.same({ "rf:balance(" }, fn("rf:ba", line, 7, #line))
  end)

  it("completes module names inside require \"resi.", function()
    local s = session()
    local list = cands(s.env, 'local http = require "resi.')
    local all = table.concat(list, " ")
    assert.truthy(all:find("resi.http", 1, true), all)
    assert.truthy(all:find("resi.providers.", 1, true), all)
    assert.same({ "resi.providers.resifactory" }, cands(s.env, "require('resi.providers.resif"))
  end)

  it("never calls a function or an __index function, and never evaluates the line", function()
    local s = session()
    local calls = 0
    s.env.trap = setmetatable({ known = 1 }, { __index = function()
      calls = calls + 1
      error("completion called __index")
    end })
    s.env.boom = function() calls = calls + 1 return {} end
    assert.same({ "trap.known" }, cands(s.env, "trap.kn"))
    assert.same({}, cands(s.env, "trap.missing.x"))
    assert.same({}, cands(s.env, "trap:zz"))
    assert.same({}, cands(s.env, "boom().x"))
    assert.same({}, cands(s.env, "boom():x"))
    assert.equal(0, calls)
  end)

  it("loads a lazy stand-in only when a completion looks inside it, and once", function()
    local loads = 0
    local env = { thing = complete.lazy(function()
      loads = loads + 1
      return { alpha = 1, go = function() end }
    end), broken = complete.lazy(function() error("no such module") end) }
    assert.same({ "thing" }, cands(env, "thi"))
    assert.equal(0, loads) -- listing names does not load
    assert.same({ "thing.alpha" }, cands(env, "thing.al"))
    assert.same({ "thing:go(" }, cands(env, "thing:g"))
    assert.equal(1, loads)
    assert.same({}, cands(env, "broken.")) -- a loader that fails stands for nothing
  end)

  it("loads a client's class (not resi.http at the prompt, no client) only on the first rf: completion", function()
    local script = [[
      local s = require("resi.repl").standard { out = function() end }
      local complete = require "resi.repl.complete"
      local function loaded(m) return tostring(package.loaded[m] ~= nil) end
      local out = { loaded("resi.http"), table.concat(complete.candidates(s.env, "r"), ",") }
      out[#out + 1] = loaded("resi.http")
      out[#out + 1] = table.concat(complete.candidates(s.env, "rf:ba"), ",")
      out[#out + 1] = loaded("resi.providers.resifactory") .. " " .. tostring(rawget(s.env, "rf"))
      out[#out + 1] = table.concat(complete.candidates(s.env, "http.ge"), ",")
      print(table.concat(out, "|"))
    ]]
    local r = proc.resi({ "-e", script }, { env = { "RF_API_KEY=" } })
    assert.equal(0, r.status, r.stderr)
    local words = "ratelimit,rawequal(,rawget(,rawlen(,rawset(,repeat,require(,resi,return,rf"
    assert.equal("false|" .. words .. "|false|rf:balance(|true nil|http.get(\n", r.stdout)
  end)

  it("offers only public methods after ':': annotated, defined under their own name, in resi's lualib", function()
    local s = rf_session()
    local all = " " .. table.concat(cands(s.env, "rf:"), " ") .. " "
    for _, m in ipairs { "balance", "generate", "me", "pools", "usage" } do
      assert.truthy(all:find(" rf:" .. m .. "(", 1, true), m .. " missing from" .. all)
    end
    for _, m in ipairs { "attempt", "response_error", "limiter_for", "describe", "auth_headers", "error_fields" } do
      assert.falsy(all:find(" rf:" .. m .. "(", 1, true), m .. " offered in" .. all)
    end
    local help = require "resi.repl.help"
    assert.is_true(help.is_public("balance", rfmod.Client.balance))
    assert.is_false(help.is_public("balance_alias", rfmod.Client.balance)) -- found under another name
    assert.is_false(help.is_public("describe", rfmod.Client.describe)) -- a `--` comment only
    assert.is_true(help.is_public("print", print)) -- C
    s.env.obj = setmetatable({}, { __index = { run = function() end, _step = function() end } })
    assert.same({ "obj:_step(", "obj:run(" }, cands(s.env, "obj:")) -- the user's own: all of them
  end)

  it("is quick: 1,000 completions of rf:", function()
    local s = rf_session()
    local t0 = uv.hrtime()
    for _ = 1, 1000 do cands(s.env, "rf:") end
    assert.truthy((uv.hrtime() - t0) / 1e9 < 5) -- measured in make bench; this only catches a blow-up
  end)
end)

describe("resi.repl.history", function()
  local scratch = repl_run.scratch_dir("resi-repl")

  it("does not keep entries that carry a secret", function()
    for _, kept in ipairs { "rf:balance()", "password = os.getenv('X')" } do
      assert.is_true(history.allowed(kept), kept)
    end
    for _, left_out in ipairs { "rf = providers.new{api_key = '" .. KEY .. "'}", 'up:modify_token(t, {password = "abcd1234"})',
      "cfg.api_key='zzz'", "token = [[abc]]", " x = 1", "h = {Authorization = 'Bearer abc.def'}", "" } do
      assert.is_false(history.allowed(left_out), left_out)
    end
  end)

  it("resolves its path from RESI_HISTORY, XDG_STATE_HOME and HOME; RESI_HISTORY= turns it off", function()
    local function env(t) return function(k) return t[k] end end
    assert.is_nil(history.path(env { RESI_HISTORY = "", HOME = "/h" }))
    assert.equal("/x/h", history.path(env { RESI_HISTORY = "/x/h", HOME = "/h" }))
    assert.equal("/s/resi/history", history.path(env { XDG_STATE_HOME = "/s", HOME = "/h" }))
    assert.equal("/h/.local/state/resi/history", history.path(env { HOME = "/h" }))
  end)

  it("appends entries to a 0600 file in a 0700 directory, multi-line entries whole", function()
    local dir = scratch()
    local path = dir .. "/state/resi/history"
    local h = history.open { path = path }
    assert.is_true(h:add("x = 1"))
    assert.is_true(h:add("function f()\n  return 1\nend"))
    assert.is_false(h:add("x = 1 -- password = 'hunter2'"))
    assert.is_false(h:add("function f()\n  return 1\nend")) -- the same as the previous one
    assert.equal(384, uv.fs_stat(path).mode % 512)
    assert.equal(448, uv.fs_stat(dir .. "/state/resi").mode % 512)
    local f = assert(io.open(path))
    local text = f:read("a")
    f:close()
    assert.equal('x = 1\n"function f()\\n  return 1\\nend"\n', text)
    assert.same({ "x = 1", "function f()\n  return 1\nend" }, history.open({ path = path }):load())
  end)

  it("keeps the last 1,000 entries, cutting older ones on load", function()
    local dir = scratch()
    local path = dir .. "/history"
    local f = assert(io.open(path, "w"))
    for i = 1, 1005 do f:write("e", i, "\n") end
    f:close()
    local entries = history.open({ path = path }):load()
    assert.equal(1000, #entries)
    assert.equal("e6", entries[1])
    assert.equal("e1005", entries[1000])
    assert.equal(1000, #history.open({ path = path }):load())
    assert.equal(384, uv.fs_stat(path).mode % 512)
  end)

  it("is off with RESI_HISTORY set empty", function()
    local saved = os.getenv("RESI_HISTORY")
    uv.os_setenv("RESI_HISTORY", "")
    local h = history.open()
    if saved then uv.os_setenv("RESI_HISTORY", saved) else uv.os_unsetenv("RESI_HISTORY") end
    assert.is_nil(h)
  end)
end)

describe("resi.repl.help", function()
  it("lists what is preloaded", function()
    local s, take, shown = session()
    local out = shown("help()")
    for _, name in ipairs { "resi", "http", "json", "providers", "proxylist", "ratelimit", "up", "oxy", "rf", ".tasks" } do
      assert.truthy(out:find(name, 1, true), name)
    end
  end)

  it("lists a client's methods one line each, and shows a method's annotation", function()
    local s, take, shown = rf_session()
    local out = shown("help(rf)")
    assert.truthy(out:find("\n  rf:balance%(%)  Remaining GB per pool"), out)
    assert.truthy(out:find("\n  rf:generate%(fields[^)]*%)  Generates proxy credentials"), out)
    for _, internal in ipairs { "rf:describe", "rf:attempt", "rf:response_error", "rf:limiter_for", "rf:auth_headers" } do
      assert.falsy(out:find(internal, 1, true), internal .. " listed in " .. out)
    end
    assert.falsy(out:find(KEY, 1, true))
    out = shown("help(rf.generate)")
    assert.truthy(out:find("^function Client:generate%(fields[^)]*%)"), out)
    assert.truthy(out:find("Generates proxy credentials (POST /proxies)", 1, true), out)
    assert.truthy(out:find("fields: {pool?: string, country?: string", 1, true), out)
  end)

  it("runs the dot commands: .tasks, .cancel N, .clear", function()
    local s, take = session()
    enter(s, "t = resi.spawn(function() resi.sleep(30) end)")
    local id = s.env.t.id
    require("resi.repl.help").command(s, ".tasks", { exit = function() end })
    assert.truthy(take():find(("  %d  waiting"):format(id), 1, true))
    require("resi.repl.help").command(s, ".cancel " .. id, { exit = function() end })
    assert.equal(("cancelled task %d\n"):format(id), take())
    resi.sleep(0)
    assert.equal("cancelled", s.env.t:status())
    require("resi.repl.help").command(s, ".clear", { exit = function() end, clear = function() s:reset() end })
    assert.is_nil(s.env.t)
  end)
end)

describe("resi repl --sim context", function()
  it("starts the sandbox in process and makes real calls to it", function()
    local s, take, shown = session()
    local sim = assert(context.start_sim(s.env, { traffic = false }))
    local ok, err = pcall(function()
      assert.truthy(context.sim_banner(sim):find("sandbox", 1, true))
      local out = shown("rf:balance()")
      assert.truthy(out:find("balances", 1, true), out)
      assert.equal("true\n", shown("#up:list_tokens() > 0"))
      out = shown("rf")
      assert.truthy(out:find("^resifactory client %(key rf_live_…"), out)
      assert.falsy(out:find(sim.accounts.resifactory[1].api_key, 1, true))
    end)
    context.stop_sim(sim)
    assert(ok, err)
  end)
end)
