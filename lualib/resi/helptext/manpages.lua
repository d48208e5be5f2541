--- resi.helptext.manpages: writes resi's man pages into DIR, from the --help
--- texts the binary prints (resi.helptext reads them), so a page
--- cannot say other than --help: resi(1) (the top-level usage, run, -e,
--- version, the list of commands and bundled scripts) and one page
--- resi-CMD(1) per Lua command, with a section per sub-command that has its
--- own --help.
---
---   make man     (DIR is build/man)
local fs = require "resi.fs"
local helptext = require "resi.helptext"
local uv = require "luv"

-- The one line resi(1) names itself with (no --help text says it).
local TAGLINE = "a Lua 5.4 runtime that automates residential-proxy provider accounts"

--- Escapes text for roff: backslashes, dashes (minus signs, so options copy
--- and paste), and a leading control character.
---@param s string
---@return string
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  if s:match("^[%.']") then s = "\\&" .. s end
  return s
end

--- An option line's left column: names bold, placeholders italic.
---@param spec string  "-o, --output F"
---@return string
local function option_spec(spec)
  return (spec:gsub("%S+", function(tok)
    local head, tail = tok:match("^(.-)(,?)$")
    local name, arg = head:match("^(%-[^=]*)=(.*)$")
    if name then return "\\fB" .. esc(name) .. "\\fR=\\fI" .. esc(arg) .. "\\fR" .. tail end
    if head:match("^%-") then return "\\fB" .. esc(head) .. "\\fR" .. tail end
    return "\\fI" .. esc(head) .. "\\fR" .. tail
  end))
end

--- A help text's body (what follows its usage lines) as roff: paragraphs,
--- "Header:" lines as subsections, option and "name   text" rows as
--- tagged paragraphs, other indented lines verbatim.
---@param body string[]  lines
---@param sub string  the subsection macro (.SS) for headers
---@return string
local function render_body(body, sub)
  local out, mode, item_indent = {}, nil, nil
  local function set(m)
    if mode == "nf" and m ~= "nf" then out[#out + 1] = ".fi\n.RE" end
    if m == "nf" and mode ~= "nf" then out[#out + 1] = ".RS 2\n.nf" end
    if m == "pp" and mode ~= "pp" then out[#out + 1] = ".PP" end
    mode = m
  end
  for _, line in ipairs(body) do
    local indent = #line:match("^%s*")
    local left, right = line:match("^%s+(%S.-)%s%s+(%S.*)$")
    if line:match("^%s*$") then
      set(nil)
    elseif indent == 0 and line:match("^[%u][%w %-]*:$") then
      set(nil)
      out[#out + 1] = sub .. " " .. esc(line:sub(1, -2))
    elseif indent == 0 then
      set("pp")
      out[#out + 1] = esc(line)
    elseif mode == "tp" and indent > item_indent then
      out[#out + 1] = esc(line:match("^%s*(.-)%s*$"))
    elseif left and (left:match("^%-") or left:match("^%l[%w_%-]*[%u%s%[%]%.|_%-]*$")) then
      set(nil)
      mode, item_indent = "tp", indent
      local word, args = left:match("^(%l[%w_%-]*)(.*)$")
      out[#out + 1] = ".TP\n" .. (left:match("^%-") and option_spec(left) or "\\fB" .. esc(word) .. "\\fR" .. option_spec(args))
      out[#out + 1] = esc(right)
    elseif line:match("^%s+%-") then
      set(nil)
      mode, item_indent = "tp", indent
      out[#out + 1] = ".TP\n" .. option_spec(line:match("^%s*(.-)%s*$"))
    else
      set("nf")
      out[#out + 1] = esc(line:sub(3))
    end
  end
  set(nil)
  return table.concat(out, "\n")
end

--- Splits a help text into its usage lines (indented as printed, less
--- the width of "usage: ") and the lines of its body.
---@param text string
---@return string[] usage, string[] body
local function split_help(text)
  local n = text:match("^usage:") and #helptext.usage_lines(text) or 0
  local lines, usage, body, past = {}, {}, {}, false
  for line in (text:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for j = 1, n do usage[j] = lines[j]:gsub("^usage: ", ""):gsub("^       ", "") end
  local i = n + 1
  for j = i, #lines do
    if past or not lines[j]:match("^%s*$") then past = true; body[#body + 1] = lines[j] end
  end
  return usage, body
end

--- A synopsis block: each usage line, "resi WORDS" bold.
---@param usage string[]
---@return string
local function synopsis(usage)
  local out = { ".nf" }
  for _, u in ipairs(usage) do
    local cmd, rest = u:match("^(resi[%l%s%-_]-)(%s.*)$")
    if not u:match("^resi") then cmd, rest = "", u end
    if not cmd then cmd, rest = u, "" end
    out[#out + 1] = "\\fB" .. esc(cmd) .. "\\fR" .. esc(rest)
  end
  out[#out + 1] = ".fi"
  return table.concat(out, "\n")
end

--- A subsection for one help text: its title, synopsis and body.
---@param title string  "resi proxies convert"
---@param text string  the help text
---@return string
local function section(title, text)
  local u, b = split_help(text)
  return '.SS "' .. esc(title) .. '"\n' .. synopsis(u) .. "\n" .. render_body(b, ".PP\n.I")
end

--- The first sentence of a body's first paragraph (a page's NAME line).
---@param body string[]
---@return string
local function first_sentence(body)
  local words = {}
  for _, line in ipairs(body) do
    if line:match("^%s*$") then break end
    words[#words + 1] = line
  end
  local s = table.concat(words, " ")
  return s:match("^(.-)%.%s") or s:match("^(.-)%.?$")
end

--- The page header.
---@param name string  "resi-proxies"
---@param version string
---@return string
local function header(name, version)
  local epoch = tonumber(os.getenv("SOURCE_DATE_EPOCH") or "")
  return ('.TH %s 1 "%s" "resi %s" "resi manual"'):format(esc(name:upper()), os.date("!%Y-%m-%d", epoch), version)
end

--- The SEE ALSO section: every page but this one.
---@param pages string[]
---@param self string
---@return string
local function see_also(pages, self)
  local refs = {}
  for _, p in ipairs(pages) do if p ~= self then refs[#refs + 1] = "\\fB" .. esc(p) .. "\\fR(1)" end end
  return '.SH "SEE ALSO"\n' .. table.concat(refs, ",\n")
end

--- The page of one Lua command: its help, then a section per sub-command.
---@param cmd table  a helptext.tree command
---@param version string
---@param pages string[]
---@param extra? string  more roff to add before SEE ALSO
---@return string
local function command_page(cmd, version, pages, extra)
  local page = "resi-" .. cmd.name
  local usage, body = split_help(cmd.help)
  local out = { header(page, version), ".SH NAME", esc(page) .. " \\- " .. esc(cmd.summary or first_sentence(body)),
    ".SH SYNOPSIS", synopsis(usage), ".SH DESCRIPTION", render_body(body, ".SS") }
  local with_help = {}
  for _, s in ipairs(cmd.subs) do if s.help then with_help[#with_help + 1] = s end end
  if #with_help > 0 then out[#out + 1] = ".SH COMMANDS" end
  for _, s in ipairs(with_help) do out[#out + 1] = section("resi " .. cmd.name .. " " .. s.name, s.help) end
  if extra then out[#out + 1] = extra end
  out[#out + 1] = see_also(pages, page)
  return table.concat(out, "\n") .. "\n"
end

--- resi(1): the top-level usage, the built-in commands' help, the list of
--- commands and of bundled scripts.
---@param tree table
---@param scripts table[]
---@param version string
---@param pages string[]
---@param exe string
---@return string
local function main_page(tree, scripts, version, pages, exe)
  local usage, body = split_help(tree.help)
  local out = { header("resi", version), ".SH NAME", "resi \\- " .. esc(TAGLINE), ".SH SYNOPSIS", synopsis(usage),
    ".SH DESCRIPTION", render_body(body, ".SS"), ".SH COMMANDS" }
  for _, c in ipairs(tree.commands) do
    if not c.builtin then
      out[#out + 1] = ".TP\n\\fBresi " .. esc(c.name) .. "\\fR"
      out[#out + 1] = esc(c.summary or first_sentence(select(2, split_help(c.help))))
        .. " (\\fBresi\\-" .. esc(c.name) .. "\\fR(1))"
    end
  end
  for _, builtin in ipairs({ { "run", { "run", "--help" } }, { "resi -e", { "-e", "--help" } },
    { "version", { "version", "--help" } } }) do
    local title = builtin[1]:match("^resi") and builtin[1] or "resi " .. builtin[1]
    out[#out + 1] = section(title, helptext.capture(exe, builtin[2]))
  end
  out[#out + 1] = ".SH \"BUNDLED SCRIPTS\"\nRun with \\fBresi run\\fR \\fINAME\\fR; \\fBresi scripts\\fR lists them"
    .. " with their paths (\\fBresi\\-scripts\\fR(1)).\n"
  for _, s in ipairs(scripts) do
    out[#out + 1] = ".TP\n\\fB" .. esc(s.name) .. "\\fR (" .. s.kind .. ")\n" .. esc(s.description)
  end
  out[#out + 1] = see_also(pages, "resi")
  return table.concat(out, "\n") .. "\n"
end

--- The scripts' own --help texts, as a section of resi-scripts(1).
---@param scripts table[]
---@return string
local function scripts_section(scripts)
  local out = { ".SH SCRIPTS" }
  for _, s in ipairs(scripts) do
    if s.help then out[#out + 1] = section("resi run " .. s.name, s.help) end
  end
  return table.concat(out, "\n")
end

local M = {}

--- Writes every page into dir (make man: build/man).
---@param args string[]  {DIR}
function M.main(args)
  local dir = args[1] or error("usage: resi -e 'require(\"resi.helptext.manpages\").main(arg)' DIR")
  local exe = uv.exepath()
  local tree = helptext.tree(exe)
  local scripts = helptext.scripts(exe)
  local version = resi.version
  local pages = { "resi" }
  for _, c in ipairs(tree.commands) do if not c.builtin then pages[#pages + 1] = "resi-" .. c.name end end
  uv.fs_mkdir(dir, 493)
  fs.write_atomic(dir .. "/resi.1", main_page(tree, scripts, version, pages, exe))
  for _, c in ipairs(tree.commands) do
    if not c.builtin then
      fs.write_atomic(dir .. "/resi-" .. c.name .. ".1", command_page(c, version, pages, c.name == "scripts" and scripts_section(scripts) or nil))
    end
  end
  print(("%d pages in %s"):format(#pages, dir))
end

return M
