--- resi scripts: lists the workflows that ship with resi (scripts/*.lua,
--- then examples/*.lua, beside the Lua library: PREFIX/share/resi or the
--- source tree), each with the first sentence of its header comment, the
--- names `resi run NAME` takes. `resi scripts NAME` prints one's path.
local argparse = require "resi.argparse"
local json = require "resi.json"
local uv = require "luv"

local help = [[
usage: resi scripts [--json]
       resi scripts NAME

Lists the scripts and examples bundled with resi, each with a one-line
description. Run one with "resi run NAME [ARGS...]" and see its options with
"resi run NAME --help" (e.g. resi run rotate --help, resi run rotation_demo).
A name is looked up in scripts/ first, then examples/, in resi's share
directory (PREFIX/share/resi, or the source tree for a ./resi built there);
a file of that name in the working directory is run instead.

With NAME, prints the script's path, e.g. to copy it:
  install -m 644 "$(resi scripts rotate)" /etc/resi/scripts/rotate.lua

Options:
  --json    one JSON object per script: name, kind (script or example),
            path, description

Exit status: 0 success; 2 a usage error (an unknown NAME).]]

local SPEC = { json = { type = "flag" } }

-- The directories searched, in order, with the kind of what they hold.
local KINDS = { { dir = "scripts", kind = "script" }, { dir = "examples", kind = "example" } }

-- How wide a description may be after its name (80 columns in all).
local WIDTH = 62

local share_dir = require("resi.cmdline.command").share_dir

--- The header comment's first sentence, on one line; "" when there is none.
---@param text string  the script's source
---@return string
local function describe(text)
  local words = {}
  for line in text:gmatch("[^\n]*") do
    if not line:match("^#!") then
      local body = line:match("^%-%-%-?%s?(.*)$")
      if not body or body:match("^%s*$") then
        if #words > 0 or not body then break end
      else
        words[#words + 1] = body
      end
    end
  end
  local s = table.concat(words, " "):gsub("^[%w_/%.%-]+%.lua:%s*", ""):gsub("%s+", " ")
  return s:match("^(.-%.)%s") or s
end

--- s cut to at most width characters at a word, with an ellipsis.
---@param s string
---@param width integer
---@return string
local function fit(s, width)
  if #s <= width then return s end
  return (s:sub(1, width - 1):match("^(.*%S)%s") or s:sub(1, width - 1)) .. "…"
end

--- Every bundled script, scripts/ first, each sorted by name.
---@return {name: string, kind: string, path: string, description: string}[]
local function list()
  local out, root = {}, share_dir()
  for _, k in ipairs(KINDS) do
    local dir, names = root .. "/" .. k.dir, {}
    local scan = uv.fs_scandir(dir)
    for name, t in function() if scan then return uv.fs_scandir_next(scan) end end do
      if t ~= "directory" and name:match("^[%w_%-]+%.lua$") then names[#names + 1] = name end
    end
    table.sort(names)
    for _, name in ipairs(names) do
      local path = dir .. "/" .. name
      local f = io.open(path, "rb")
      local head = f and f:read(4096) or ""
      if f then f:close() end
      out[#out + 1] = { name = name:sub(1, -5), kind = k.kind, path = path, description = describe(head) }
    end
  end
  return out
end

--- Prints the list as a table per kind, or as JSON lines.
---@param scripts {name: string, kind: string, path: string, description: string}[]
---@param as_json boolean
local function print_list(scripts, as_json)
  local kind
  for _, s in ipairs(scripts) do
    if as_json then
      io.stdout:write(json.encode(s), "\n")
    else
      if s.kind ~= kind then
        kind = s.kind
        io.stdout:write(kind == "script" and "" or "\n", kind, "s in ", s.path:match("^(.*)/"), ":\n")
      end
      io.stdout:write(("  %-15s %s\n"):format(s.name, fit(s.description, WIDTH)))
    end
  end
  if not as_json then io.stdout:write("\nrun one with: resi run NAME [ARGS...]   (resi run NAME --help)\n") end
end

--- The command: the list, or the path of the script NAME.
---@param opts {json?: boolean}
---@param rest string[]
local function main(opts, rest)
  if #rest > 1 then argparse.usage_error(("one NAME at most, got %d"):format(#rest)) end
  local scripts = list()
  if not rest[1] then return print_list(scripts, opts.json) end
  local want = rest[1]:gsub("%.lua$", "")
  for _, s in ipairs(scripts) do
    if s.name == want then
      io.stdout:write(opts.json and json.encode(s) or s.path, "\n")
      return
    end
  end
  argparse.usage_error(("no bundled script %q (resi scripts lists them)"):format(rest[1]))
end

--- Runs `resi scripts` with the command line's arguments.
---@param ... string
return function(...)
  argparse.run({ ... }, SPEC, help, main)
end
