-- make install puts the binary and its library under PREFIX, and the
-- installed binary finds its library with no environment variables.
local proc = require "spec.support.proc"
local files = require "spec.support.files"

describe("make install", function()
  it("installs a resi that runs scripts and HTTP from any directory", function()
    local prefix = files.dir("resi-install")
    local r = proc.run { "make", "--no-print-directory", "install", "PREFIX=" .. prefix }
    assert.equal(0, r.status, r.stderr)
    local out = proc.run({ "env", "-i", "PATH=/usr/bin:/bin", prefix .. "/bin/resi", "-e",
      "print(resi.version, type(require('resi.http').get), require('resi.json').encode({1}))" },
      { cwd = "/" })
    files.remove_dir(prefix)
    assert.equal(0, out.status, out.stderr)
    assert.equal(resi.version .. "\tfunction\t[1]\n", out.stdout)
  end)
end)
