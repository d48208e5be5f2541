--- spec/support/pty.lua: runs a command on a real pseudo-terminal (python3's
--- pty module, through spec/support/pty_driver.py) with scripted keystrokes,
--- and returns what it wrote: raw output, the screen as a small VT100 model
--- renders it, its exit, and the terminal's modes after it exited.
local json = require "resi.json"
local proc = require "spec.support.proc"

local M = {}

--- The directory of this file (the driver lives beside it).
local function here()
  local src = debug.getinfo(1, "S").source
  return (src:sub(2):match("^(.*)/[^/]*$")) or "."
end

--- Keys, for steps: `{ send = pty.keys.up }`.
M.keys = {
  up = "\27[A", down = "\27[B", right = "\27[C", left = "\27[D",
  tab = "\t", enter = "\r", ctrl_c = "\3", ctrl_d = "\4", backspace = "\127",
}

--- Runs opts.argv on a pty of opts.rows x opts.cols (24 x 80) with opts.env
--- (a map; false removes a variable; TERM defaults to vt100), performing
--- opts.steps in order, each one of
---   {send = "keys"}, {wait_for = "text"} (after the previous match; regex = true
---   for a Python regular expression), {sleep = seconds}, {resize = {rows, cols}},
---   {signal = "TERM"|"HUP"|"INT"|"KILL"|"WINCH"|"QUIT"} (pid_pattern = a Python
---   regex whose group 1 in the output is the pid to signal instead of the
---   command's), {wait_exit = true}
--- then waits for the exit, killing the command after opts.timeout seconds (10).
--- Returns {output=, screen=, cursor={row, col}, status=, signal=, timed_out=,
--- failed_step=, tty={icanon=, echo=, isig=}}; a wait_for that never matched
--- sets failed_step (its index) and timed_out.
---@param opts {argv: string[], env?: table<string, string|false>, steps?: table[], timeout?: number, rows?: integer, cols?: integer}
---@return table
function M.run(opts)
  local env = {}
  for k, v in pairs(opts.env or {}) do env[k] = v == false and json.null or v end
  local req = {
    argv = opts.argv, env = env, steps = opts.steps or json.array {},
    timeout = opts.timeout or 10, rows = opts.rows or 24, cols = opts.cols or 80,
  }
  if next(req.env) == nil then req.env = nil end
  local r = proc.run({ "python3", here() .. "/pty_driver.py" }, { stdin = json.encode(req) })
  if r.status ~= 0 then error("pty driver failed (" .. tostring(r.status) .. "): " .. r.stderr) end
  local res = json.decode(r.stdout)
  for _, k in ipairs { "status", "signal", "failed_step" } do
    if res[k] == json.null then res[k] = nil end
  end
  return res
end

--- The last line of the screen that is not blank.
function M.last_line(screen)
  local last = ""
  for line in (screen .. "\n"):gmatch("(.-)\n") do
    if line:match("%S") then last = line end
  end
  return last
end

return M
