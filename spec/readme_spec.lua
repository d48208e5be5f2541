-- README.md's runnable shell blocks, run as a reader would paste them: every
-- ```sh block preceded by the line <!-- runnable --> runs with bash (set -e,
-- pipefail) in a scratch directory that holds ./resi, scripts/ and examples/,
-- and must exit 0. The README cannot drift from what resi does.
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local MARK = "<!-- runnable -->"

-- The repository root: where the Lua library under test lives (the sanitizer
-- build's binary is in build-asan/, its library is the source tree's).
local function repo_root()
  local init = assert(package.searchpath("resi", package.path))
  return assert(init:match("^(.*)/lualib/resi/init%.lua$"), init)
end

-- The runnable blocks of the README: {line=, code=}.
local function runnable_blocks(text)
  local blocks, marked, code, start = {}, false, nil, nil
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if code then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = { line = start, code = table.concat(code, "\n") .. "\n" }
        code = nil
      else
        code[#code + 1] = line
      end
    elseif line:match("^```sh%s*$") and marked then
      code, start, marked = {}, n + 1, false
    elseif line == MARK then
      marked = true
    elseif line:match("%S") then
      marked = false
    end
  end
  return blocks
end

describe("README.md", function()
  local root = repo_root()
  local f = assert(io.open(root .. "/README.md"))
  local text = f:read("a")
  f:close()
  local blocks = runnable_blocks(text)

  it("marks its everyday commands as runnable", function()
    assert.is_true(#blocks >= 3, ("%d runnable blocks"):format(#blocks))
  end)

  for _, block in ipairs(blocks) do
    it(("runs the shell block at line %d"):format(block.line), function()
      local dir = files.dir("resi-readme")
      assert.equal(0, proc.run({ "ln", "-s", proc.resi_path(), dir .. "/resi" }).status) -- the binary under test
      for _, name in ipairs { "scripts", "examples" } do
        assert.equal(0, proc.run({ "ln", "-s", root .. "/" .. name, dir .. "/" .. name }).status)
      end
      -- what a block starts in the background (resi sim) ends with it, pass or fail
      local code = 'trap \'kill $(jobs -p) 2>/dev/null || true; wait\' EXIT\n' .. block.code
      -- resi's store (rotations, jobs) goes to the scratch directory, never the user's own
      local r = proc.run({ "timeout", "120", "bash", "-euo", "pipefail", "-c", code },
        { cwd = dir, env = { "XDG_STATE_HOME=" .. dir .. "/state" } })
      files.remove_dir(dir)
      assert.equal(0, r.status, ("README.md:%d exited %s\n--- stdout\n%s\n--- stderr\n%s"):format(block.line,
        tostring(r.status), r.stdout, r.stderr))
    end)
  end
end)
