-- resi.metrics: the registry, the text format 0.0.4 it writes (checked
-- exactly, and by the strict parser in spec/support/exposition.lua), the
-- process, HTTP and rate-limiter collectors.
local metrics = require "resi.metrics"
local expo = require "spec.support.exposition"
local uv = require "luv"

-- The error message fn raises (nil when it does not).
local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return nil end
  return tostring(e)
end

-- A registry with one family of each type, a few series set.
local function small_registry()
  local reg = metrics.new_registry()
  local runs = reg:counter("resi_job_runs_total", "Runs that ended, by outcome.", { "job", "outcome" })
  runs:init { job = "rotate", outcome = "failed" }
  runs:inc { job = "rotate", outcome = "succeeded" }
  runs:inc({ job = "report", outcome = "succeeded" }, 2)
  local up = reg:gauge("resi_scheduler_up", "1 while the scheduler runs.")
  up:set(nil, 1)
  local d = reg:histogram("resi_job_run_duration_seconds", "How long runs took.", { "job" }, { 10, 0.5, 1 })
  d:observe({ job = "rotate" }, 0.25)
  d:observe({ job = "rotate" }, 1)
  d:observe({ job = "rotate" }, 30)
  return reg
end

describe("resi.metrics", function()
  describe("render", function()
    it("writes exactly the exposition text: registration order, HELP and TYPE first, final newline", function()
      assert.equal(table.concat({
        "# HELP resi_job_runs_total Runs that ended, by outcome.",
        "# TYPE resi_job_runs_total counter",
        'resi_job_runs_total{job="rotate",outcome="failed"} 0',
        'resi_job_runs_total{job="rotate",outcome="succeeded"} 1',
        'resi_job_runs_total{job="report",outcome="succeeded"} 2',
        "# HELP resi_scheduler_up 1 while the scheduler runs.",
        "# TYPE resi_scheduler_up gauge",
        "resi_scheduler_up 1",
        "# HELP resi_job_run_duration_seconds How long runs took.",
        "# TYPE resi_job_run_duration_seconds histogram",
        'resi_job_run_duration_seconds_bucket{job="rotate",le="0.5"} 1',
        'resi_job_run_duration_seconds_bucket{job="rotate",le="1"} 2',
        'resi_job_run_duration_seconds_bucket{job="rotate",le="10"} 2',
        'resi_job_run_duration_seconds_bucket{job="rotate",le="+Inf"} 3',
        'resi_job_run_duration_seconds_sum{job="rotate"} 31.25',
        'resi_job_run_duration_seconds_count{job="rotate"} 3',
        "",
      }, "\n"), small_registry():render())
    end)

    it("passes the strict parser", function()
      local p = expo.parse(small_registry():render())
      assert.same({ "resi_job_runs_total", "resi_scheduler_up", "resi_job_run_duration_seconds" }, p.order)
      assert.equal("histogram", p.families.resi_job_run_duration_seconds.type)
      assert.equal(3, expo.value(p, "resi_job_run_duration_seconds_count", { job = "rotate" }))
    end)

    it("renders an empty registry as nothing, and leaves out a family with no series", function()
      local reg = metrics.new_registry()
      assert.equal("", reg:render())
      reg:counter("x_total", "labelled, nothing yet", { "job" })
      assert.equal("", reg:render())
      reg:counter("y_total", "no labels: exported at 0 from the start")
      assert.equal("# HELP y_total no labels: exported at 0 from the start\n# TYPE y_total counter\ny_total 0\n",
        reg:render())
    end)

    it("escapes label values (backslash, double quote, newline) and HELP (backslash, newline); both round-trip", function()
      local reg = metrics.new_registry()
      local weird = 'a"b\\c\nd'
      local g = reg:gauge("resi_test_info", 'Help with \\ and\na newline; "quotes" stay.', { "value" })
      g:set({ value = weird }, 1)
      local text = reg:render()
      assert.equal(table.concat({
        '# HELP resi_test_info Help with \\\\ and\\na newline; "quotes" stay.',
        "# TYPE resi_test_info gauge",
        'resi_test_info{value="a\\"b\\\\c\\nd"} 1',
        "",
      }, "\n"), text)
      local p = expo.parse(text)
      assert.equal(weird, p.families.resi_test_info.samples[1].labels.value)
      assert.equal('Help with \\ and\na newline; "quotes" stay.', p.families.resi_test_info.help)
      assert.equal(1, expo.value(p, "resi_test_info", { value = weird }))
    end)

    it("formats values as Go's ParseFloat reads them: +Inf, -Inf, NaN, integers, shortest round-trip floats", function()
      local f = metrics.format_value
      assert.equal("+Inf", f(math.huge))
      assert.equal("-Inf", f(-math.huge))
      assert.equal("NaN", f(0 / 0))
      assert.equal("0", f(0))
      assert.equal("0", f(-0.0))
      assert.equal("3", f(3.0))
      assert.equal("-42", f(-42))
      assert.equal("9223372036854775807", f(math.maxinteger))
      assert.equal("0.1", f(0.1))
      assert.equal("0.3333333333333333", f(1 / 3))
      assert.equal("1e-09", f(1e-9))
      assert.equal("1e+21", f(1e21))
      assert.equal("9007199254740992", f(2.0 ^ 53))
      assert.equal("1796124552.0383", f(1796124552.0383))
      for _ = 1, 2000 do
        local v = (math.random() - 0.5) * 10 ^ math.random(-20, 20)
        local s = f(v)
        assert.equal(v, expo.number(s), s)
      end
    end)

    it("writes gauges holding NaN and infinities, which the parser reads back", function()
      local reg = metrics.new_registry()
      local g = reg:gauge("resi_edge", "edge values", { "case" })
      g:set({ case = "nan" }, 0 / 0)
      g:set({ case = "inf" }, math.huge)
      g:set({ case = "ninf" }, -math.huge)
      local text = reg:render()
      assert.matches('resi_edge{case="nan"} NaN\n', text, 1, true)
      assert.matches('resi_edge{case="inf"} +Inf\n', text, 1, true)
      assert.matches('resi_edge{case="ninf"} -Inf\n', text, 1, true)
      local p = expo.parse(text)
      local nan = expo.value(p, "resi_edge", { case = "nan" })
      assert.is_true(nan ~= nan)
      assert.equal(-math.huge, expo.value(p, "resi_edge", { case = "ninf" }))
    end)
  end)

  describe("series", function()
    it("init creates job x outcome series at 0, in creation order", function()
      local reg = metrics.new_registry()
      local runs = reg:counter("resi_job_runs_total", "Runs.", { "job", "outcome" })
      for _, job in ipairs { "b", "a" } do
        for _, o in ipairs { "succeeded", "failed", "timed_out", "cancelled", "interrupted" } do
          runs:init { job = job, outcome = o }
        end
      end
      runs:init { job = "b", outcome = "failed" } -- again: nothing changes
      local p = expo.parse(reg:render())
      local samples = p.families.resi_job_runs_total.samples
      assert.equal(10, #samples)
      assert.same({ job = "b", outcome = "succeeded" }, samples[1].labels)
      assert.same({ job = "a", outcome = "interrupted" }, samples[10].labels)
      for _, s in ipairs(samples) do assert.equal(0, s.value) end
      assert.equal(10, runs:size())
    end)

    it("treats a number label value as its text, so 200 and \"200\" are one series", function()
      local reg = metrics.new_registry()
      local c = reg:counter("resi_responses_total", "Responses.", { "status" })
      c:inc { status = 200 }
      c:inc { status = "200" }
      assert.equal(2, c:get { status = "200" })
      assert.equal(1, c:size())
    end)

    it("adds and sets: counters up only, gauges both ways", function()
      local reg = metrics.new_registry()
      local c = reg:counter("resi_c_total", "c")
      c:inc()
      c:inc(nil, 2.5)
      c:inc({}, 0)
      assert.equal(3.5, c:get())
      c:set(nil, 10) -- a collector mirroring a count kept elsewhere
      assert.equal(10, c:get())
      local g = reg:gauge("resi_g", "g", { "k" })
      g:inc { k = "a" }
      g:dec({ k = "a" }, 3)
      assert.equal(-2, g:get { k = "a" })
      assert.is_nil(g:get { k = "b" })
    end)

    it("remove and remove_where drop series; a later update brings one back at the end", function()
      local reg = metrics.new_registry()
      local c = reg:counter("resi_job_runs_total", "Runs.", { "job", "outcome" })
      for _, job in ipairs { "a", "b", "c" } do
        c:inc { job = job, outcome = "succeeded" }
        c:inc { job = job, outcome = "failed" }
      end
      assert.is_true(c:remove { job = "a", outcome = "failed" })
      assert.is_false(c:remove { job = "a", outcome = "failed" })
      assert.equal(2, c:remove_where { job = "b" })
      assert.equal(0, c:remove_where { job = "nope" })
      assert.equal(3, c:size())
      c:inc { job = "a", outcome = "failed" }
      local p = expo.parse(reg:render())
      local got = {}
      for _, s in ipairs(p.families.resi_job_runs_total.samples) do
        got[#got + 1] = s.labels.job .. "/" .. s.labels.outcome .. "=" .. s.value
      end
      assert.same({ "a/succeeded=1", "c/succeeded=1", "c/failed=1", "a/failed=1" }, got)
      assert.equal(1, c:get { job = "c", outcome = "failed" })
      assert.equal(1, c:remove_where { outcome = "succeeded", job = "c" })
      assert.same({ "a/succeeded=1", "c/failed=1", "a/failed=1" }, (function()
        local out = {}
        for _, s in ipairs(expo.parse(reg:render()).families.resi_job_runs_total.samples) do
          out[#out + 1] = s.labels.job .. "/" .. s.labels.outcome .. "=" .. s.value
        end
        return out
      end)())
    end)

    it("clear forgets a family's series (one without labels goes back to 0)", function()
      local reg = metrics.new_registry()
      local c = reg:counter("resi_c_total", "c", { "k" })
      local u = reg:gauge("resi_u", "u")
      c:inc { k = "x" }
      u:set(nil, 5)
      c:clear()
      u:clear()
      assert.equal("# HELP resi_u u\n# TYPE resi_u gauge\nresi_u 0\n", reg:render())
      c:inc { k = "y" }
      assert.equal(1, c:get { k = "y" })
      assert.is_nil(c:get { k = "x" })
    end)
  end)

  describe("histograms", function()
    it("sorts the given bounds, counts a value equal to a bound in that bucket, ends with +Inf = _count", function()
      local reg = metrics.new_registry()
      local h = reg:histogram("resi_h_seconds", "h", nil, { 5, 1, 2.5, math.huge })
      assert.same({ 1, 2.5, 5 }, h.buckets)
      for _, v in ipairs { 1, 1, 2.5, 5, 7, -3 } do h:observe(nil, v) end
      assert.same({ count = 6, sum = 13.5, buckets = { 3, 4, 5, 6 } }, h:get())
      local text = reg:render()
      assert.matches('resi_h_seconds_bucket{le="1"} 3\nresi_h_seconds_bucket{le="2.5"} 4\n'
        .. 'resi_h_seconds_bucket{le="5"} 5\nresi_h_seconds_bucket{le="+Inf"} 6\n'
        .. "resi_h_seconds_sum 13.5\nresi_h_seconds_count 6\n", text, 1, true)
      expo.parse(text)
    end)

    it("uses client_golang's default buckets and the bucket helpers", function()
      local reg = metrics.new_registry()
      assert.same(metrics.default_buckets, reg:histogram("resi_d_seconds", "d").buckets)
      assert.same({ 0.5, 1, 2, 4 }, metrics.exponential_buckets(0.5, 2, 4))
      assert.matches("exponential_buckets", err_of(metrics.exponential_buckets, 0, 2, 3))
    end)

    it("keeps each series' buckets apart", function()
      local reg = metrics.new_registry()
      local h = reg:histogram("resi_h_seconds", "h", { "job" }, { 1 })
      h:observe({ job = "a" }, 0.5)
      h:observe({ job = "b" }, 2)
      h:observe({ job = "b" }, 3)
      h:remove { job = "a" }
      h:observe({ job = "c" }, 0.1)
      assert.same({ count = 2, sum = 5, buckets = { 0, 2 } }, h:get { job = "b" })
      assert.same({ count = 1, sum = 0.1, buckets = { 1, 1 } }, h:get { job = "c" })
      local p = expo.parse(reg:render())
      assert.equal(2, expo.value(p, "resi_h_seconds_bucket", { job = "b", le = "+Inf" }))
      assert.equal(1, expo.value(p, "resi_h_seconds_bucket", { job = "c", le = "1" }))
      assert.is_nil(expo.value(p, "resi_h_seconds_count", { job = "a" }))
    end)
  end)

  describe("registration and argument errors", function()
    local reg
    before_each(function() reg = metrics.new_registry() end)

    it("refuses bad names and reserved or repeated labels", function()
      assert.matches("metric name 1bad", err_of(reg.counter, reg, "1bad_total", "h"))
      assert.matches("metric name resi%.dotted", err_of(reg.gauge, reg, "resi.dotted", "h"))
      assert.matches("must end in _total", err_of(reg.counter, reg, "resi_runs", "h"))
      assert.matches("label name bad%-name", err_of(reg.gauge, reg, "g", "h", { "bad-name" }))
      assert.matches("reserved", err_of(reg.gauge, reg, "g", "h", { "__x" }))
      assert.matches("given twice", err_of(reg.gauge, reg, "g", "h", { "a", "a" }))
      assert.matches("label named le", err_of(reg.histogram, reg, "h", "h", { "le" }))
      assert.matches("help must be", err_of(reg.gauge, reg, "g", nil))
    end)

    it("returns the same family for the same definition and refuses a different one", function()
      local a = reg:counter("resi_x_total", "x", { "job" })
      assert.equal(a, reg:counter("resi_x_total", "x", { "job" }))
      assert.equal(a, reg:get("resi_x_total"))
      assert.matches("registered already", err_of(reg.gauge, reg, "resi_x_total", "x", { "job" }))
      assert.matches("registered already", err_of(reg.counter, reg, "resi_x_total", "x", { "other" }))
      reg:histogram("resi_h", "h")
      assert.matches("clash", err_of(reg.gauge, reg, "resi_h_count", "h"))
      reg:gauge("resi_q_sum", "q")
      assert.matches("its samples resi_q_sum clash with metric resi_q_sum", err_of(reg.histogram, reg, "resi_q", "q"))
    end)

    it("refuses bad buckets", function()
      assert.matches("given twice", err_of(reg.histogram, reg, "h1", "h", nil, { 1, 1 }))
      assert.matches("not a number", err_of(reg.histogram, reg, "h2", "h", nil, { 1, 0 / 0 }))
      assert.matches("at least one finite", err_of(reg.histogram, reg, "h3", "h", nil, { math.huge }))
    end)

    it("names the metric and the label when labels are wrong", function()
      local c = reg:counter("resi_job_runs_total", "Runs.", { "job", "outcome" })
      assert.matches('resi_job_runs_total: label "outcome" is missing', err_of(c.inc, c, { job = "a" }))
      assert.matches("unknown label typo", err_of(c.inc, c, { job = "a", outcome = "b", typo = 1 }))
      assert.matches("unknown label typo", err_of(c.inc, c, { job = "a", typo = 1 }))
      assert.matches("must be a string or a number", err_of(c.inc, c, { job = true, outcome = "x" }))
      assert.matches("expects a table of labels", err_of(c.inc, c, "a"))
      assert.matches("not valid UTF%-8", err_of(c.inc, c, { job = "\xff", outcome = "x" }))
      local u = reg:gauge("resi_u", "u")
      assert.matches("has no labels", err_of(u.set, u, { job = "a" }, 1))
      assert.matches("cannot be removed", err_of(u.remove, u, {}))
      assert.equal(0, c:size())
    end)

    it("refuses a counter going down and NaN observations, naming the method", function()
      local c = reg:counter("resi_c_total", "c")
      assert.matches("resi_c_total:inc: a counter only goes up", err_of(c.inc, c, nil, -1))
      assert.matches("only goes up", err_of(c.inc, c, nil, 0 / 0))
      assert.matches("resi_c_total:set", err_of(c.set, c, nil, -5))
      local h = reg:histogram("resi_h", "h")
      assert.matches("resi_h:observe: expects a number %(not NaN%)", err_of(h.observe, h, nil, 0 / 0))
      local g = reg:gauge("resi_g", "g")
      assert.matches("resi_g:set: expects a number", err_of(g.set, g, nil, "1"))
      assert.matches("yield_every", err_of(reg.render, reg, { yield_every = 0 }))
    end)

    it("reports the caller's line, not the module's", function()
      local c = reg:counter("resi_c_total", "c")
      local ok, e = pcall(function() c:inc(nil, -1) end)
      assert.is_false(ok)
      assert.matches("metrics_spec%.lua:%d+: resi%.metrics:", e)
    end)
  end)

  describe("collectors and render turns", function()
    it("runs collectors at every render, in the order added", function()
      local reg = metrics.new_registry()
      local g = reg:gauge("resi_scrapes", "scrapes")
      local order = {}
      reg:collect(function(r)
        order[#order + 1] = "first"
        r:get("resi_scrapes"):inc()
      end)
      reg:collect(function() order[#order + 1] = "second" end)
      reg:render()
      assert.matches("resi_scrapes 2\n", reg:render(), 1, true)
      assert.same({ "first", "second", "first", "second" }, order)
      assert.equal(2, g:get())
    end)

    it("raises a collector's error from render and frees the registry for the next render", function()
      local reg = metrics.new_registry()
      reg:gauge("resi_g", "g")
      local broken = true
      reg:collect(function() if broken then error("collector broke") end end)
      assert.matches("collector broke", err_of(reg.render, reg))
      broken = false
      assert.equal("# HELP resi_g g\n# TYPE resi_g gauge\nresi_g 0\n", reg:render())
    end)

    it("with yield_every lets timers run during a long render, and writes the same text", function()
      local reg = metrics.new_registry()
      local c = reg:counter("resi_job_runs_total", "Runs.", { "job", "outcome" })
      for j = 1, 3000 do c:init { job = "job" .. j, outcome = "succeeded" } end
      local plain = reg:render()
      local fired = false
      local t = resi.spawn(function() resi.sleep(0) fired = true end)
      local yielded = reg:render { yield_every = 100 }
      assert.is_true(fired)
      assert.equal(plain, yielded)
      t:wait()
    end)

    it("serialises renders that overlap, even when series change meanwhile", function()
      local reg = metrics.new_registry()
      local c = reg:counter("resi_job_runs_total", "Runs.", { "job" })
      local h = reg:histogram("resi_h", "h", { "job" }, { 1 })
      for j = 1, 500 do
        c:inc { job = "j" .. j }
        h:observe({ job = "j" .. j }, 0.5)
      end
      local active, overlapped = 0, false
      reg:collect(function()
        active = active + 1
        if active > 1 then overlapped = true end
      end)
      reg:collect(function() end)
      local texts = {}
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = resi.spawn(function()
          texts[i] = reg:render { yield_every = 50 }
          active = active - 1
        end)
      end
      local churn = resi.spawn(function()
        for j = 1, 200 do
          c:remove { job = "j" .. j }
          h:remove { job = "j" .. j }
          c:inc { job = "new" .. j }
          if j % 20 == 0 then resi.sleep(0) end
        end
        c:clear()
      end)
      for i = 1, 3 do tasks[i]:wait() end
      churn:wait()
      assert.is_false(overlapped)
      for i = 1, 3 do expo.parse(texts[i]) end -- no duplicate series, +Inf = _count throughout
      expo.parse(reg:render())
    end)
  end)

  describe("collectors shipped with resi", function()
    it("process: CPU, memory, descriptors, start time and build info", function()
      local reg = metrics.new_registry()
      require("resi.metrics.process").register(reg)
      local p = expo.parse(reg:render())
      local v = function(name, labels) return expo.value(p, name, labels) end
      assert.equal("counter", p.families.process_cpu_seconds_total.type)
      assert.is_true(v("process_cpu_seconds_total") > 0)
      assert.is_true(v("process_resident_memory_bytes") > 1024 * 1024)
      assert.is_true(v("process_virtual_memory_bytes") >= v("process_resident_memory_bytes"))
      local now = resi.now()
      local start = v("process_start_time_seconds")
      assert.is_true(start <= now + 1 and start > now - 7 * 86400, tostring(start))
      local before = v("process_open_fds")
      assert.is_true(before >= 3)
      assert.is_true(v("process_max_fds") >= before)
      local f = assert(io.open("/dev/null"))
      local after = expo.value(expo.parse(reg:render()), "process_open_fds")
      f:close()
      assert.equal(before + 1, after)
      local info = p.families.resi_build_info.samples[1]
      assert.same({ version = resi.version, lua = _VERSION:match("%d[%d.]*"), libuv = uv.version_string(),
        libcurl = require("resi.http").curl_version }, info.labels)
      assert.same({ "version", "lua", "libuv", "libcurl" }, info.order)
      assert.equal(1, info.value)
    end)

    it("http: the client's transfer and socket counters", function()
      local http = require "resi.http" -- the collector reports 0 until resi.http is loaded
      local reg = metrics.new_registry()
      require("resi.metrics.http").register(reg)
      local srv = assert(require("resi.server").serve { handler = function() return { body = "x" } end })
      local before = expo.value(expo.parse(reg:render()), "resi_http_client_transfers_started_total")
      assert(http.get(srv.url .. "/"))
      srv:close()
      local p = expo.parse(reg:render())
      assert.equal(before + 1, expo.value(p, "resi_http_client_transfers_started_total"))
      assert.is_true(expo.value(p, "resi_http_client_sockets_opened_total") >= 1)
      assert.equal(0, expo.value(p, "resi_http_client_transfers_in_flight"))
    end)

    it("ratelimit: one series per limiter, by name", function()
      local ratelimit = require "resi.ratelimit"
      local lim = ratelimit.new { name = "oxylabs", limit = 5, window = 60 }
      local reg = metrics.new_registry()
      local limiters = { lim }
      require("resi.metrics.ratelimit").register(reg, function() return limiters end)
      assert(lim:acquire()):release()
      assert(lim:acquire()):release()
      local p = expo.parse(reg:render())
      assert.equal(2, expo.value(p, "resi_ratelimit_granted_total", { limiter = "oxylabs" }))
      assert.equal(0, expo.value(p, "resi_ratelimit_throttled_responses_total", { limiter = "oxylabs", status = "429" }))
      assert.equal(0, expo.value(p, "resi_ratelimit_queued", { limiter = "oxylabs" }))
      limiters = {}
      assert.is_nil(expo.value(expo.parse(reg:render()), "resi_ratelimit_granted_total", { limiter = "oxylabs" }))
    end)
  end)
end)

describe("the strict exposition parser (spec/support/exposition.lua)", function()
  local good = table.concat({
    "# HELP http_requests_total The total number of HTTP requests.",
    "# TYPE http_requests_total counter",
    'http_requests_total{method="post",code="200"} 1027 1395066363000',
    'http_requests_total{method="post",code="400",} 3 1395066363000',
    "# HELP rpc_duration_seconds A histogram.",
    "# TYPE rpc_duration_seconds histogram",
    'rpc_duration_seconds_bucket{le="0.05"} 24054',
    'rpc_duration_seconds_bucket{le="1e-01"} 33444',
    'rpc_duration_seconds_bucket{le="+Inf"} 144320',
    "rpc_duration_seconds_sum 53423",
    "rpc_duration_seconds_count 144320",
    "",
  }, "\n")

  -- The parser's message for text (nil when it accepts it).
  local function rejects(text) return err_of(expo.parse, text) end

  it("accepts the format's own example forms (timestamps, a trailing comma, exponents)", function()
    local p = expo.parse(good)
    assert.equal(3, expo.value(p, "http_requests_total", { method = "post", code = "400" }))
    assert.equal(33444, expo.value(p, "rpc_duration_seconds_bucket", { le = "1e-01" }))
  end)

  it("rejects text that breaks the format", function()
    local cases = {
      { good:sub(1, -2), "does not end with a newline" },
      { "\n" .. good, "line 1: empty line" },
      { "# some comment\n" .. good, "comment other than HELP or TYPE" },
      { good .. "# HELP http_requests_total again\n", "lines of http_requests_total are not in one group" },
      { "# HELP a_total x\n# HELP a_total y\n# TYPE a_total counter\na_total 1\n", "second HELP" },
      { "# HELP a_total x\n# TYPE a_total counter\n# TYPE a_total gauge\na_total 1\n", "second TYPE" },
      { "# HELP a_total x\n# TYPE a_total counter\na_total 1\n# HELP a_total x\n", "HELP of a_total after its samples" },
      { "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\nb 1\na 1\n", "lines of a are not in one group" },
      { "# HELP a x\n# TYPE a gauge\nb 1\n", "belongs to no family" },
      { "# TYPE a gauge\na 1\n", "lacks HELP or TYPE" },
      { "# HELP a x\n# TYPE a gauge\na{l=\"x\"} 1\na{l=\"x\"} 2\n", "given twice" },
      { "# HELP a x\n# TYPE a gauge\na{l=\"x\",l=\"y\"} 1\n", "label l given twice" },
      { "# HELP a x\n# TYPE a gauge\na{l=\"\\t\"} 1\n", "bad escape \\t" },
      { "# HELP a x\\y\n# TYPE a gauge\na 1\n", "bad escape \\y in HELP" },
      { "# HELP a x\n# TYPE a gauge\na{l=\"x} 1\n", "unterminated" },
      { "# HELP a x\n# TYPE a gauge\na  1\n", "expected one space" },
      { "# HELP a x\n# TYPE a gauge\na Inf\n", "bad value \"Inf\"" },
      { "# HELP a x\n# TYPE a gauge\na 1,5\n", "bad value" },
      { "# HELP a x\n# TYPE a gauge\na{} 1\n", "expected a label name" },
      { "# HELP a x\n# TYPE a flavour\na 1\n", "unknown type" },
      { "# HELP a_total x\n# TYPE a_total counter\na_total -1\n", "counter a_total has value %-1" },
      { "# HELP a_total x\n# TYPE a_total counter\na_total NaN\n", "counter a_total has value NaN" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
        .. "h_sum 1\nh_count 1\n", "le 0.5 not above" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "counts fewer" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "%+Inf bucket 2 differs from _count 3" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "no le=\"%+Inf\" bucket" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "_sum or _count missing" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket 1\n", "h_bucket without le" },
      { "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum{le=\"1\"} 1\n", "le on h_sum" },
    }
    for i, c in ipairs(cases) do
      local e = rejects(c[1])
      assert.is_string(e, "case " .. i .. " was accepted")
      assert.matches(c[2], e, 1, not c[2]:find("%%"), "case " .. i .. ": " .. tostring(e))
    end
  end)
end)
