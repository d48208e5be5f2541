-- resi.health: the probe and metrics listener, over real HTTP (resi.http
-- against a listener on a free loopback port).
local health = require "resi.health"
local metrics = require "resi.metrics"
local http = require "resi.http"
local expo = require "spec.support.exposition"

describe("resi.health", function()
  local srv, reg, ready, why, ready_calls

  setup(function()
    reg = metrics.new_registry()
    require("resi.metrics.process").register(reg)
    require("resi.metrics.http").register(reg)
    local runs = reg:counter("resi_job_runs_total", "Runs that ended, by outcome.", { "job", "outcome" })
    reg:gauge("resi_job_running", "Runs of the job in progress.", { "job" })
    local duration = reg:histogram("resi_job_run_duration_seconds", "How long runs took.", { "job" }, { 0.1, 1, 10 })
    for _, job in ipairs { "rotate", 'odd "name"\\' } do
      for _, o in ipairs { "succeeded", "failed", "timed_out", "cancelled", "interrupted" } do
        runs:init { job = job, outcome = o }
      end
    end
    duration:observe({ job = "rotate" }, 0.7)
    ready, why, ready_calls = true, nil, 0
    srv = assert(health.serve {
      port = 0,
      registry = reg,
      ready = function()
        ready_calls = ready_calls + 1
        if ready == "raise" then error("store exploded") end
        if ready == "slow" then resi.sleep(5) end
        return ready, why
      end,
      ready_timeout = 0.2,
    })
  end)
  teardown(function() srv:close() end)

  -- GET (or another method) on the listener; returns the response.
  local function get(path, method)
    return assert(http.request { method = method or "GET", url = srv.url .. path })
  end

  it("binds loopback on a free port by default", function()
    assert.equal("127.0.0.1", srv.host)
    assert.is_true(srv.port > 0)
  end)

  it("answers /livez and /healthz with 200 ok, and ?verbose with check lines", function()
    for _, path in ipairs { "/livez", "/healthz" } do
      local res = get(path)
      assert.equal(200, res.status)
      assert.equal("ok\n", res.body)
      assert.equal("text/plain; charset=utf-8", res.headers["content-type"])
      assert.equal("no-store", res.headers["cache-control"])
    end
    assert.equal("[+]ping ok\nlivez check passed\n", get("/livez?verbose").body)
    assert.equal("[+]ping ok\nhealthz check passed\n", get("/healthz?verbose=1").body)
  end)

  it("livez does not consult the readiness check", function()
    ready, why = false, "store closed"
    local calls = ready_calls
    assert.equal(200, get("/livez").status)
    assert.equal(calls, ready_calls)
    ready, why = true, nil
  end)

  it("flips /readyz between 200 and 503 with the reason", function()
    assert.equal(200, get("/readyz").status)
    assert.equal("ok\n", get("/readyz").body)
    ready, why = false, "store not writable"
    local res = get("/readyz")
    assert.equal(503, res.status)
    assert.equal("not ready: store not writable\n", res.body)
    assert.equal("[-]ready failed: store not writable\nreadyz check failed\n", get("/readyz?verbose").body)
    ready, why = nil, nil
    assert.equal("not ready: not ready\n", get("/readyz").body)
    ready = true
    res = get("/readyz")
    assert.equal(200, res.status)
    assert.equal("[+]ready ok\nreadyz check passed\n", get("/readyz?verbose").body)
  end)

  it("answers 503 when the readiness check raises or outlasts ready_timeout", function()
    ready = "raise"
    local res = get("/readyz")
    assert.equal(503, res.status)
    assert.matches("^not ready: ready check failed: .*store exploded\n$", res.body)
    ready = "slow"
    local t0 = resi.monotonic()
    res = get("/readyz")
    assert.equal(503, res.status)
    assert.equal("not ready: ready check took over 0.2 s\n", res.body)
    assert.is_true(resi.monotonic() - t0 < 2)
    ready = true
    assert.equal(200, get("/readyz").status)
  end)

  it("serves /metrics as text format 0.0.4 that the strict parser accepts", function()
    local res = get("/metrics")
    assert.equal(200, res.status)
    assert.equal("text/plain; version=0.0.4; charset=utf-8", res.headers["content-type"])
    local p = expo.parse(res.body)
    assert.equal(1, p.families.resi_build_info.samples[1].value)
    assert.equal(0, expo.value(p, "resi_job_runs_total", { job = 'odd "name"\\', outcome = "failed" }))
    assert.equal(1, expo.value(p, "resi_job_run_duration_seconds_count", { job = "rotate" }))
    assert.is_true(expo.value(p, "resi_http_client_transfers_started_total") >= 1)
    local head = get("/metrics", "HEAD")
    assert.equal(200, head.status)
    assert.equal("", head.body)
  end)

  it("keeps /metrics consistent under concurrent scrapes and updates", function()
    local runs = reg:get("resi_job_runs_total")
    local stop = false
    local writer = resi.spawn(function()
      local i = 0
      while not stop do
        i = i + 1
        runs:inc { job = "rotate", outcome = "succeeded" }
        reg:get("resi_job_running"):set({ job = "load" .. (i % 50) }, i)
        if i % 25 == 0 then reg:get("resi_job_running"):remove_where { job = "load" .. (i % 7) } end
        resi.sleep(0)
      end
    end)
    local every = health.yield_every
    health.yield_every = 5 -- renders yield often, so scrapes and updates interleave
    local scrapes = {}
    for i = 1, 8 do scrapes[i] = resi.spawn(function() return get("/metrics") end) end
    local last = -1
    for i = 1, 8 do
      local res = scrapes[i]:wait()
      assert.equal(200, res.status)
      local v = expo.value(expo.parse(res.body), "resi_job_runs_total", { job = "rotate", outcome = "succeeded" })
      assert.is_number(v)
      last = math.max(last, v)
    end
    stop = true
    writer:wait()
    health.yield_every = every
    assert.is_true(last > 0)
  end)

  it("answers 404 for other paths and 405 for other methods", function()
    for _, path in ipairs { "/", "/metricsx", "/livez/", "/favicon.ico" } do
      local res = get(path)
      assert.equal(404, res.status, path)
      assert.equal("not found\n", res.body)
    end
    local res = get("/livez", "POST")
    assert.equal(405, res.status)
    assert.equal("GET, HEAD", res.headers["allow"])
  end)

  it("answers 500 with the error when a collector fails, and recovers", function()
    local broken = true
    reg:collect(function() if broken then error("collector broke") end end)
    local res = get("/metrics")
    assert.equal(500, res.status)
    assert.matches("collector broke", res.body)
    broken = false
    assert.equal(200, get("/metrics").status)
  end)

  it("404s /metrics when no registry is given, and readyz is 200 without a check", function()
    local bare = assert(health.serve {})
    local res = assert(http.get(bare.url .. "/metrics"))
    assert.equal(404, res.status)
    assert.equal(200, assert(http.get(bare.url .. "/readyz")).status)
    bare:close()
  end)

  it("refuses a non-loopback host unless allow_remote = true", function()
    for _, host in ipairs { "0.0.0.0", "::", "10.1.2.3", "192.168.0.1" } do
      local s, err, code = health.serve { host = host, port = 0 }
      assert.is_nil(s)
      assert.equal("remote", code)
      assert.matches("refusing to listen on " .. host:gsub("%.", "%%."), err)
      assert.matches("allow_remote = true", err)
    end
    local s, err, code = health.serve { host = "metrics.example", port = 0 }
    assert.is_nil(s)
    assert.equal("address", code)
    assert.matches("not an IP address", err)
    local remote = assert(health.serve { host = "0.0.0.0", port = 0, allow_remote = true })
    assert.equal(200, assert(http.get("http://127.0.0.1:" .. remote.port .. "/livez")).status)
    remote:close()
    local local6 = health.serve { host = "::1", port = 0 }
    if local6 then local6:close() end -- ::1 is loopback: allowed (when the machine has IPv6)
    local named = assert(health.serve { host = "localhost", port = 0 })
    assert.equal("127.0.0.1", named.host)
    named:close()
  end)

  it("reports a port in use as resi.server does", function()
    local s, err, code = health.serve { port = srv.port }
    assert.is_nil(s)
    assert.equal("EADDRINUSE", code)
    assert.matches("cannot listen", err)
  end)

  it("parses listen addresses, loopback when only a port is given", function()
    assert.same({ "127.0.0.1", 9464 }, { health.parse_addr("9464") })
    assert.same({ "127.0.0.1", 9464 }, { health.parse_addr(":9464") })
    assert.same({ "0.0.0.0", 80 }, { health.parse_addr("0.0.0.0:80") })
    assert.same({ "localhost", 1 }, { health.parse_addr("localhost:1") })
    assert.same({ "::1", 9464 }, { health.parse_addr("[::1]:9464") })
    for _, bad in ipairs { "", "x", "1.2.3.4", "1.2.3.4:99999", "::1:80", "[::1]", "a:b" } do
      local host, err = health.parse_addr(bad)
      assert.is_nil(host, bad)
      assert.matches("bad address", err)
    end
  end)

  it("checks its options", function()
    assert.has_error(function() health.serve "x" end, "resi.health.serve: expects a table of options")
    assert.has_error(function() health.serve { ready = true } end,
      "resi.health.serve: ready must be a function returning ok, why")
    assert.has_error(function() health.serve { registry = {} } end,
      "resi.health.serve: registry must be a resi.metrics registry")
    assert.has_error(function() health.serve { ready_timeout = 0 } end,
      "resi.health.serve: ready_timeout must be a positive number of seconds")
  end)
end)
