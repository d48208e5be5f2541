-- resi.core.sd_notify against a real AF_UNIX datagram socket (a Python
-- receiver), as systemd's $NOTIFY_SOCKET is: path and abstract addresses,
-- unset and invalid sockets.
local proc = require "spec.support.proc"
local core = require "resi.core"

-- Python: binds ADDR (a path, or @name), runs resi -e CODE with
-- NOTIFY_SOCKET=ADDR, prints every datagram received, one per line.
local RECEIVER = [[
import os, socket, subprocess, sys
addr, resi, code = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
s.settimeout(5)
r = subprocess.run([resi, "-e", code], env=dict(os.environ, NOTIFY_SOCKET=addr))
while True:
    try:
        print(s.recv(4096).decode())
    except socket.timeout:
        break
    s.settimeout(0.2)
sys.exit(r.returncode)
]]

describe("resi.core.sd_notify", function()
  local code = [[
    local core = require("resi.core")
    assert(core.sd_notify("READY=1") == true)
    assert(core.sd_notify("STATUS=2 jobs loaded\nWATCHDOG=1") == true)]]

  for _, kind in ipairs { "path", "abstract" } do
    it("sends each state as one datagram to a " .. kind .. " socket", function()
      local addr = kind == "path" and os.tmpname() or ("@resi-notify-" .. os.time() .. "-" .. math.random(1e9))
      if kind == "path" then os.remove(addr) end
      local r = proc.run { "python3", "-c", RECEIVER, addr, proc.resi_path(), code }
      if kind == "path" then os.remove(addr) end
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("READY=1\nSTATUS=2 jobs loaded\nWATCHDOG=1\n", r.stdout)
    end)
  end

  it("is a no-op outside systemd and an error for a bad socket", function()
    local r = proc.resi({ "-e", "print(require('resi.core').sd_notify('READY=1'))" }, { env = { "NOTIFY_SOCKET=" } })
    assert.are.equal("false\n", r.stdout)
    r = proc.resi({ "-e", "print(require('resi.core').sd_notify('READY=1'))" }, { env = { "NOTIFY_SOCKET=relative" } })
    assert.truthy(r.stdout:find("nil\tsd_notify: Invalid argument\terror", 1, true), r.stdout)
    r = proc.resi({ "-e", "print(require('resi.core').sd_notify('READY=1'))" },
      { env = { "NOTIFY_SOCKET=/nonexistent/notify.sock" } })
    assert.truthy(r.stdout:find("nil\tsd_notify: No such file or directory\terror", 1, true), r.stdout)
    assert.is_function(core.sd_notify)
  end)
end)
