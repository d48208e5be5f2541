--- resi.argparse: long options for scripts and subcommands.
---
---   local opts, rest = argparse.parse(resi.args, {
---     threshold = {type = "number", default = 0.9},
---     provider = {type = "list"},          -- repeatable, or comma-separated
---     ["dry-run"] = {type = "flag"},
---   })
---
--- `--name value` and `--name=value`; a bad or unknown option raises an error
--- table {usage = message}, which run() turns into exit status 2.
local M = {}

-- Raises a usage error.
local function usage(msg) error({ usage = msg }, 0) end

-- Raises a usage error when a number is outside the option's min..max.
local function check_range(name, s, v)
  if (s.min and v < s.min) or (s.max and v > s.max) then
    local range = s.min and s.max and ("between %s and %s"):format(s.min, s.max)
      or s.min and ("at least %s"):format(s.min) or ("at most %s"):format(s.max)
    usage(("--%s must be %s, got %s"):format(name, range, tostring(v)))
  end
end

--- Raises a usage error from a script's main (exit status 2, no traceback).
M.usage_error = usage

--- Parses args against spec; returns the options (dashes in names become
--- underscores) and the positional arguments.
---@param args string[]
---@param spec table<string, {type: "string"|"number"|"integer"|"flag"|"list", default?: any, choices?: table, min?: number, max?: number}>
---@return table opts
---@return string[] rest
function M.parse(args, spec)
  local opts, rest = {}, {}
  for name, s in pairs(spec) do
    local key = name:gsub("-", "_")
    if s.type == "list" then opts[key] = {} elseif s.default ~= nil then opts[key] = s.default end
  end
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do rest[#rest + 1] = args[j] end
      break
    end
    local name, inline = a:match("^%-%-([%w-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w-]+)$") end
    if not name then
      rest[#rest + 1] = a
    else
      local s = spec[name]
      if not s then usage("unknown option --" .. name) end
      local key = name:gsub("-", "_")
      if s.type == "flag" then
        if inline then usage("--" .. name .. " takes no value") end
        opts[key] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
          if v == nil then usage("--" .. name .. " needs a value") end
        end
        if s.type == "number" or s.type == "integer" then
          local n = tonumber(v)
          if n == nil or (s.type == "integer" and math.tointeger(n) == nil) then
            usage(("--%s expects %s, got %q"):format(name, s.type == "integer" and "an integer" or "a number", v))
          end
          v = s.type == "integer" and math.tointeger(n) or n
          check_range(name, s, v)
        end
        if s.choices and not s.choices[v] then
          local names = {}
          for c in pairs(s.choices) do names[#names + 1] = c end
          table.sort(names)
          usage(("--%s must be one of %s, got %q"):format(name, table.concat(names, ", "), tostring(v)))
        end
        if s.type == "list" then
          for part in tostring(v):gmatch("[^,]+") do opts[key][#opts[key] + 1] = part end
        else
          opts[key] = v
        end
      end
    end
    i = i + 1
  end
  return opts, rest
end

--- Runs main(opts, rest) with parsed arguments; prints help on --help and
--- usage errors (exit status 2) on bad options.
---@param args string[]
---@param spec table
---@param help string
---@param main fun(opts: table, rest: string[])
function M.run(args, spec, help, main)
  for _, a in ipairs(args) do
    if a == "--help" or a == "-h" then
      io.stdout:write(help, "\n")
      return
    end
    if a == "--" then break end
  end
  local ok, err = xpcall(function()
    local opts, rest = M.parse(args, spec)
    return main(opts, rest)
  end, function(e)
    if type(e) == "table" and e.usage then return e end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then return end
  if type(err) == "table" then
    io.stderr:write(err.usage, "\n(see --help)\n")
    require("resi.task").set_exit_status(2)
    return
  end
  io.stderr:write("resi: error: ", err, "\n")
  require("resi.task").set_exit_status(1)
end

return M
