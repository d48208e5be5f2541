-- make install puts the binary and its library under PREFIX, and the
-- installed binary finds its library with no environment variables.
local proc = require "spec.support.proc"
local uv = require "luv"
local files = require "spec.support.files"

describe("make install", function()
  it("installs a resi that runs scripts and HTTP from any directory", function()
    local prefix = files.dir("resi-install")
    local r = proc.run { "make", "--no-print-directory", "install", "PREFIX=" .. prefix }
    assert.equal(0, r.status, r.stderr)
    local out = proc.run({ "env", "-i", "PATH=/usr/bin:/bin", prefix .. "/bin/resi", "-e",
      "print(resi.version, type(require('resi.http').get), require('resi.json').encode({1})) "
        .. "print(select(2, require('resi.cron')), debug.getinfo(require('resi.cron').parse, 'S').source)" },
      { cwd = "/" })
    files.remove_dir(prefix)
    assert.equal(0, out.status, out.stderr)
    -- the modules come from the installed bytecode, named after the installed sources
    local real = prefix:gsub("^/tmp/", (uv.fs_realpath("/tmp") or "/tmp") .. "/")
    assert.equal(("%s\tfunction\t[1]\n%s/lib/resi/luac/resi/cron.luac\t@%s/share/resi/lualib/resi/cron.lua\n")
      :format(resi.version, real, prefix), out.stdout)
  end)

  -- One install with DESTDIR and PREFIX=/usr (as the Debian package does),
  -- shared by the tests below; the last one uninstalls it.
  local root, usr
  -- The installed resi with args, from / with a bare environment.
  local function installed(args)
    local argv = { "env", "-i", "PATH=/usr/bin:/bin", usr .. "/bin/resi" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return proc.run(argv, { cwd = "/" })
  end
  -- What bash's completion of words offers (the last word is the one completed),
  -- with the installed script loaded and registered for resi.
  local function complete(words)
    local script = [[
      source "$1" && complete -p resi >/dev/null || exit 3
      shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _resi; printf '%s\n' "${COMPREPLY[@]}"]]
    local argv = { "bash", "-c", script, "bash", usr .. "/share/bash-completion/completions/resi" }
    for _, w in ipairs(words) do argv[#argv + 1] = w end
    local r = proc.run(argv, { cwd = "/" })
    assert.equal(0, r.status, r.stderr)
    local out = {}
    for line in r.stdout:gmatch("[^\n]+") do out[#out + 1] = line end
    return out
  end

  it("installs into DESTDIR, twice in a row, with scripts, examples, pages, completion and the unit", function()
    root = files.dir("resi-destdir")
    usr = root .. "/usr"
    for _ = 1, 2 do
      local r = proc.run { "make", "--no-print-directory", "install", "DESTDIR=" .. root, "PREFIX=/usr" }
      assert.equal(0, r.status, r.stderr)
    end
    for _, f in ipairs({ "/bin/resi", "/share/resi/scripts/rotate.lua", "/share/resi/examples/rotation_demo.lua",
      "/share/man/man1/resi.1", "/share/man/man1/resi-proxies.1", "/share/bash-completion/completions/resi",
      "/share/resi/luals/config.json" }) do
      assert.is_truthy(io.open(usr .. f), f)
    end
    local unit = assert(io.open(usr .. "/lib/systemd/system/resi-jobs.service")):read("a")
    assert.matches("ExecStart=/usr/bin/resi jobs", unit, 1, true)
    assert.is_nil(unit:find("/usr/local/", 1, true))
  end)

  it("the installed resi runs version, scripts and a bundled script by name from another directory", function()
    local v = installed { "version" }
    assert.equal(0, v.status, v.stderr)
    assert.matches("^resi " .. resi.version:gsub("%.", "%%.") .. " %(Lua 5%.4", v.stdout)
    local list = installed { "scripts" }
    assert.equal(0, list.status, list.stderr)
    assert.matches("scripts in " .. usr .. "/share/resi/scripts:\n  rotate ", list.stdout, 1, true)
    assert.matches("\n  rotation_demo   The rotation workflow end to end", list.stdout, 1, true)
    local path = installed { "scripts", "rotate" }
    assert.equal(usr .. "/share/resi/scripts/rotate.lua\n", path.stdout)
    local unknown = installed { "scripts", "nope" }
    assert.equal(2, unknown.status)
    assert.matches('no bundled script "nope"', unknown.stderr, 1, true)
    local help = installed { "run", "rotate", "--help" }
    assert.equal(0, help.status, help.stderr)
    assert.matches("^usage: resi run [%w/]*rotate", help.stdout)
    assert.matches("--threshold X", help.stdout, 1, true)
    local dir = files.dir("resi-cwd")
    files.write(dir, "rotate", "print('the rotate file in the working directory')")
    local own = proc.run({ usr .. "/bin/resi", "run", "rotate" }, { cwd = dir })
    files.remove_dir(dir)
    assert.equal("the rotate file in the working directory\n", own.stdout)
    local typo = installed { "rotate" }
    assert.equal(2, typo.status)
    assert.matches("did you mean 'resi run rotate'?", typo.stderr, 1, true)
  end)

  it("runs the installed rotation demo, which runs the installed rotate.lua against the installed sim", function()
    local r = installed { "run", "rotation_demo", "3" }
    assert.equal(0, r.status, r.stderr)
    assert.matches("resi sim is serving UnknownProxies at http://127%.0%.0%.1:%d+", r.stdout)
    assert.matches("\n  rotate.lua: [^\n]*%d+ rotated, %d+ retired, 0 failed", r.stdout)
    assert.matches("rotate.lua's manifest lists %d+ live credentials", r.stdout)
    assert.matches("removed /tmp/resi%-rotation%-demo%.", r.stdout)
  end)

  it("installs man pages that man renders, one per command", function()
    local r = proc.run({ "man", "-l", usr .. "/share/man/man1/resi.1" }, { env = { "MANWIDTH=100" } })
    assert.equal(0, r.status, r.stderr)
    assert.matches("NAME\n       resi %- a Lua 5%.4 runtime", r.stdout)
    assert.matches("resi run NAME [ARGS...]", r.stdout, 1, true)
    assert.matches("resi-proxies(1)", r.stdout, 1, true)
    local p = proc.run({ "man", "-l", usr .. "/share/man/man1/resi-proxies.1" }, { env = { "MANWIDTH=100" } })
    assert.equal(0, p.status, p.stderr)
    assert.matches("resi proxies convert --to FORMAT", p.stdout, 1, true)
    local help = installed { "proxies", "convert", "--help" }
    for option in help.stdout:gmatch("\n  (%-%-%l+) ") do assert.matches("\n       " .. option, p.stdout, 1, true) end
    for _, page in ipairs({ "resi-jobs", "resi-sim", "resi-scripts" }) do
      assert.is_truthy(io.open(usr .. "/share/man/man1/" .. page .. ".1"), page)
    end
  end)

  it("installs a bash completion for commands, options, formats, providers and scripts", function()
    assert.same({ "proxies" }, complete { "resi", "pro" })
    assert.same(require("resi.proxylist").formats, complete { "resi", "proxies", "convert", "--to", "" })
    assert.same({ "json" }, complete { "resi", "proxies", "convert", "--to", "=", "js" })
    assert.same(require("resi.providers").NAMES, complete { "resi", "run", "rotate", "--provider", "" })
    assert.same({ "--store", "--stop-timeout" }, complete { "resi", "jobs", "--st" })
    assert.same({ "rotate", "rotation_demo" }, complete { "resi", "run", "rot" })
    assert.same({ "convert", "check" }, complete { "resi", "proxies", "c" })
  end)

  it("builds the Debian package with every build dependency the Makefile lists", function()
    local makefile = assert(io.open("Makefile")):read("a")
    local control = assert(io.open("debian/control")):read("a")
    local build_depends = control:match("\nBuild%-Depends:(.-)\n%S")
    local deps = makefile:match("\nDEPS_BUILD = (.-[^\\])\n"):gsub("\\\n", " ")
    local n = 0
    for pkg in deps:gmatch("%S+") do
      if pkg ~= "build-essential" then -- implied by every Debian build
        n = n + 1
        assert.matches("[%s,]" .. pkg:gsub("%-", "%%-") .. ",?\n", build_depends .. "\n")
      end
    end
    assert.is_true(n >= 11)
    assert.matches("\nDepends: ${shlibs:Depends}, ${misc:Depends}\n", control, 1, true)
  end)

  it("make uninstall removes every installed file", function()
    local r = proc.run { "make", "--no-print-directory", "uninstall", "DESTDIR=" .. root, "PREFIX=/usr" }
    assert.equal(0, r.status, r.stderr)
    local left = proc.run { "find", root, "-type", "f" }
    files.remove_dir(root)
    assert.equal("", left.stdout)
  end)
end)
