--- resi.helptext: resi's command tree read from its own --help texts,
--- the one source of the man pages (resi.helptext.manpages) and the shell
--- completion (resi.helptext.completion). Commands are the top-level usage
--- lines' words and lualib/resi/cli/*.lua; a command's sub-commands are its
--- "Commands:" table and the words after "resi CMD" in its usage lines;
--- options are the indented lines that start with "-" (and the usage
--- lines' [--opt ARG]), each with its placeholder and description.
local uv = require "luv"

local M = {}

--- Runs exe with args and returns what it printed on stdout.
---@param exe string
---@param args string[]
---@return string
function M.capture(exe, args)
  return resi.await(function(done)
    local out, chunks = uv.new_pipe(), {}
    local handle
    handle = assert(uv.spawn(exe, { args = args, stdio = { nil, out, nil } }, function()
      handle:close()
    end))
    out:read_start(function(_, data)
      if data then chunks[#chunks + 1] = data else out:close(); done(table.concat(chunks)) end
    end)
  end)
end

--- The usage lines of a help text (from "usage:" to the first blank line),
--- without "usage:" and the indentation.
---@param text string
---@return string[]
function M.usage_lines(text)
  local out, inside = {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^usage:") then inside = true end
    if inside then
      if line:match("^%s*$") then break end
      out[#out + 1] = (line:gsub("^usage:%s*", ""):gsub("^%s+", ""))
    end
  end
  return out
end

--- The lower-case words that follow "resi WORDS" in usage lines: the
--- sub-commands of the command prefix (e.g. "resi jobs" -> check, list, ...).
---@param lines string[]
---@param prefix string  "resi" or "resi jobs"
---@return string[]
function M.usage_words(lines, prefix)
  local out, seen = {}, {}
  local pat = prefix:gsub("%-", "%%-") .. " (%l[%w_%-]*)"
  for _, line in ipairs(lines) do
    for w in (" " .. line):gmatch(" " .. pat) do
      if not seen[w] then seen[w], out[#out + 1] = true, w end
    end
  end
  return out
end

--- The rows of the table under a header line ("Commands:"): indented
--- "NAME   description" rows, as {name, desc}.
---@param text string
---@param header string
---@return {name: string, desc: string}[]
function M.table_rows(text, header)
  local out, inside = {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line == header then
      inside = true
    elseif inside then
      local name, args, desc = line:match("^%s+(%l[%w_%-]*)(.-)%s%s+(%S.*)$")
      if name and not args:match("^[%u%s%[%]%.|_%-]*$") then name = nil end
      if not name then break end
      out[#out + 1] = { name = name, desc = desc }
    end
  end
  return out
end

-- Words listed in a description ("a (default), b or c", "a | b | c",
-- "label: a, b, c"): at least two single words, or nil.
local function listed_words(desc)
  for _, s in ipairs({ desc, desc:match("^[^:]-:%s+(.*)$") or "" }) do
    local words, ok = {}, true
    s = s:gsub("%b()", ""):gsub("%.$", "")
    for item in (s:gsub("%s+or%s+", ","):gsub("%s*|%s*", ",") .. ","):gmatch("([^,]*),") do
      item = item:match("^%s*(.-)%s*$")
      if item ~= "" then
        if not item:match("^[%l%d][%l%d_%-]*$") then ok = false break end
        words[#words + 1] = item
      end
    end
    if ok and #words >= 2 then return words end
  end
  return nil
end

-- The options named in one option line's left column ("-o, --output F",
-- "--country CC --city NAME", "--filter=PATTERN"), as {name, arg}.
local function split_names(spec)
  local out = {}
  -- gives arg to the names before it that have none ("-o, --output F": both)
  local function give(arg)
    for i = #out, 1, -1 do
      if out[i].arg then break end
      out[i].arg = arg
    end
  end
  for tok in spec:gsub(",%s", " "):gmatch("%S+") do
    local name, arg = tok:match("^(%-%-?[%w][%w%-]*)=(%S+)$")
    if name then
      out[#out + 1] = { name = name }
      give(arg)
    elseif tok:match("^%-%-?[%w][%w%-]*$") then
      out[#out + 1] = { name = tok }
    elseif #out > 0 and (tok:match("^%u[%u%d_,/%.]*$") or tok:match("^%d[%d%.]*$")) then
      give(tok)
    end
  end
  return out
end

--- The options a help text documents: {name, arg?, desc, choices?}, in
--- order, each once (an option line's description runs on over the more
--- indented lines below it).
---@param text string
---@return {name: string, arg?: string, desc: string, choices?: string[]}[]
function M.options(text)
  local out, byname, last = {}, {}, nil
  local function add(o)
    local old = byname[o.name]
    if old then
      if not old.arg then old.arg = o.arg end
      return old
    end
    byname[o.name], out[#out + 1] = o, o
    return o
  end
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local indent, rest = line:match("^(%s+)(%-%-?[%w].*)$")
    if indent then
      local spec, desc = rest:match("^(.-)%s%s+(%S.*)$")
      last = { indent = #indent, options = {} }
      for _, o in ipairs(split_names(spec or rest)) do
        last.options[#last.options + 1] = add({ name = o.name, arg = o.arg, desc = desc or "" })
      end
    elseif last and #line:match("^%s*") > last.indent and line:match("%S") then
      for _, o in ipairs(last.options) do o.desc = o.desc .. " " .. line:match("^%s*(.-)%s*$") end
    else
      last = nil
    end
  end
  for _, line in ipairs(M.usage_lines(text)) do
    for name, arg in line:gmatch("(%-%-?[%a][%w%-]*)%s*([%u]*[%u%d_,]*)") do
      if line:find(" " .. name, 1, true) or line:find("[" .. name, 1, true) then
        add({ name = name, arg = arg ~= "" and arg or nil, desc = "" })
      end
    end
  end
  for _, o in ipairs(out) do o.choices = o.arg and listed_words(o.desc) or nil end
  return out
end

--- Does a help text's usage take a file as a positional argument (FILE,
--- FILE..., PATHS... not right after an option)?
---@param text string
---@return boolean
function M.takes_files(text)
  for _, line in ipairs(M.usage_lines(text)) do
    local prev = ""
    for tok in line:gsub("[%[%]|]", " "):gmatch("%S+") do
      if (tok:match("^FILE") or tok:match("^PATHS")) and not prev:match("^%-") then return true end
      prev = tok
    end
  end
  return false
end

--- The commands' directory: resi/cli beside this module.
---@return string
local function cli_dir()
  return require("resi.libdir").lualib() .. "/resi/cli"
end

--- Every command: the top-level usage's words, then lualib/resi/cli/*.lua.
---@param top string  resi --help
---@return string[]
function M.command_names(top)
  local names, seen = {}, {}
  for _, w in ipairs(M.usage_words(M.usage_lines(top), "resi")) do
    if not seen[w] then seen[w], names[#names + 1] = true, w end
  end
  local scan, extra = uv.fs_scandir(cli_dir()), {}
  for name in function() if scan then return uv.fs_scandir_next(scan) end end do
    local cmd = name:match("^(.+)%.lua$")
    if cmd and not seen[cmd] then seen[cmd], extra[#extra + 1] = true, cmd end
  end
  table.sort(extra)
  for _, cmd in ipairs(extra) do names[#names + 1] = cmd end
  return names
end

--- The one-line summary of a command from the top-level usage (the text
--- after the usage on its line, or on the next line), or nil.
---@param top string
---@param cmd string
---@return string|nil
function M.summary(top, cmd)
  local lines = M.usage_lines(top)
  for i, line in ipairs(lines) do
    if line:match("^resi " .. cmd:gsub("%-", "%%-") .. "[%s%[]") or line == "resi " .. cmd then
      local s = line:match("%S%s%s+(%l.*)$")
      if not s and lines[i + 1] and not lines[i + 1]:match("^resi ") then s = lines[i + 1] end
      if s then return s end
    end
  end
  return nil
end

--- The whole tree: {help = top, commands = {{name, help, summary, subs =
--- {{name, help, desc}}}}}. A sub-command whose --help is the command's
--- own (resi jobs) keeps only its name.
---@param exe string  the resi binary
---@return table
function M.tree(exe)
  local top = M.capture(exe, { "--help" })
  local tree = { help = top, commands = {} }
  for _, name in ipairs(M.command_names(top)) do
    local h = M.capture(exe, { name, "--help" })
    if h:match("^usage:") then -- a command prints its usage first
      local cmd = { name = name, help = h, summary = M.summary(top, name), subs = {},
        builtin = not uv.fs_stat(cli_dir() .. "/" .. name .. ".lua") }
      local descs = {}
      for _, row in ipairs(M.table_rows(h, "Commands:")) do descs[row.name] = row.desc end
      local subs = M.usage_words(M.usage_lines(h), "resi " .. name)
      for _, row in ipairs(M.table_rows(h, "Commands:")) do
        local dup = false
        for _, s in ipairs(subs) do dup = dup or s == row.name end
        if not dup then subs[#subs + 1] = row.name end
      end
      for _, s in ipairs(subs) do
        local sh = M.capture(exe, { name, s, "--help" })
        cmd.subs[#cmd.subs + 1] = { name = s, desc = descs[s], help = sh ~= h and sh:match("^usage:") and sh or nil }
      end
      tree.commands[#tree.commands + 1] = cmd
    end
  end
  return tree
end

--- The bundled scripts (resi scripts --json), each with its --help when
--- it is a script (examples run when asked for help, so none is asked).
---@param exe string
---@return {name: string, kind: string, description: string, help?: string}[]
function M.scripts(exe)
  local json = require "resi.json"
  local out = {}
  for line in M.capture(exe, { "scripts", "--json" }):gmatch("[^\n]+") do
    local s = json.decode(line)
    if s.kind == "script" then s.help = M.capture(exe, { "run", s.name, "--help" }) end
    out[#out + 1] = s
  end
  return out
end

return M
