--- resi.apidoc.markdown: writes the API reference page (docs/API.md) from
--- the module models (resi.apidoc.read), the same source the definition
--- files come from.
local read = require "resi.apidoc.read"
local meta = require "resi.apidoc.meta"

local M = {}

-- A doc block split into its prose and its tags.
local function split_doc(doc)
  local prose, tags = {}, {}
  for _, l in ipairs(doc or {}) do
    if l:match("^@") then tags[#tags + 1] = l else prose[#prose + 1] = l end
  end
  return prose, tags
end

-- Prose lines as Markdown paragraphs (a blank `---` line ends one); lines
-- indented by two spaces or more are an example, kept as a code block.
local function paragraphs(lines)
  local out, cur, code = {}, {}, nil
  local function flush()
    if #cur > 0 then out[#out + 1] = table.concat(cur, " ") end
    if code then out[#out + 1] = "```\n" .. table.concat(code, "\n") .. "\n```" end
    cur, code = {}, nil
  end
  for _, l in ipairs(lines) do
    if l:match("^%s*$") then
      flush()
    elseif l:match("^%s%s") then
      if #cur > 0 then flush() end
      code = code or {}
      code[#code + 1] = l:sub(3)
    else
      if code then flush() end
      cur[#cur + 1] = l:match("^%s*(.-)%s*$")
    end
  end
  flush()
  return table.concat(out, "\n\n")
end

-- The signature line of a function: `name(a, b?)` with its prefix.
local function signature(prefix, name, doc)
  local names = {}
  for _, p in ipairs(read.params_of(doc)) do
    if p.name ~= "self" or not prefix:match(":$") then names[#names + 1] = p.name .. (p.optional and "?" or "") end
  end
  return ("%s%s(%s)"):format(prefix, name, table.concat(names, ", "))
end

-- The bullet list of a function's tags (params, returns, async).
local function tag_list(tags)
  local out = {}
  for _, l in ipairs(tags) do
    local name, rest = l:match("^@param%s+(%S+)%s*(.*)$")
    if name then
      local ty, text = read.split_type(rest)
      out[#out + 1] = ("- `%s`: `%s`%s"):format(name, ty, text ~= "" and (" " .. text) or "")
    elseif l:match("^@return%s") then
      local ty, text = read.split_type(l:match("^@return%s+(.*)$"))
      out[#out + 1] = ("- returns `%s`%s"):format(ty, text ~= "" and (" " .. text) or "")
    elseif l:match("^@async") then
      out[#out + 1] = "- waits (`@async`: call it in a task)"
    elseif l:match("^@field%s") then
      local fname, frest = l:match("^@field%s+(%S+)%s*(.*)$")
      local ty, text = read.split_type(frest or "")
      out[#out + 1] = ("- `.%s`: `%s`%s"):format(fname, ty, text ~= "" and (" " .. text) or "")
    elseif l:match("^@alias%s") then
      out[#out + 1] = "- " .. l:gsub("^@alias%s+", "alias ")
    elseif l:match("^@overload%s") then
      out[#out + 1] = "- also `" .. l:match("^@overload%s+(.*)$") .. "`"
    end
  end
  return table.concat(out, "\n")
end

-- Appends a titled section (heading, prose, tags) to out.
local function section(out, level, title, doc)
  local prose, tags = split_doc(doc)
  out[#out + 1] = ("%s %s"):format(("#"):rep(level), title)
  out[#out + 1] = ""
  local p = paragraphs(prose)
  if p ~= "" then
    out[#out + 1] = p
    out[#out + 1] = ""
  end
  local t = tag_list(tags)
  if t ~= "" then
    out[#out + 1] = t
    out[#out + 1] = ""
  end
end

-- The short name a module's own functions are shown under (ratelimit.new).
local function short(mod)
  return mod.name:match("([%w_]+)$")
end

-- Appends one module's section to out.
local function module_section(out, mod, find)
  section(out, 2, "`" .. mod.name .. "`", mod.doc)
  for _, b in ipairs(mod.blocks) do
    local name
    for _, l in ipairs(b) do
      name = name or l:match("^@class%s+([^%s:]+)") or l:match("^@alias%s+(%S+)")
    end
    if name then section(out, 3, "`" .. name .. "`", b) end
  end
  local items = meta.public_items(mod, find)
  local classes = {}
  for lname, t in pairs(mod.tables) do
    if t.block and lname ~= mod.returns then classes[#classes + 1] = lname end
  end
  table.sort(classes, function(a, b) return mod.tables[a].line < mod.tables[b].line end)
  for _, lname in ipairs(classes) do
    section(out, 3, "`" .. meta.class_name(mod, lname) .. "`", mod.tables[lname].block)
  end
  for _, p in ipairs(items) do
    local it = p.item
    local prefix = it.owner == mod.returns and (short(mod) .. ".")
      or (meta.class_name(mod, it.owner):match("([%w_]+)$") .. it.sep)
    if p.is_function then
      section(out, 3, "`" .. signature(prefix, it.name, p.doc) .. "`", p.doc)
    else
      section(out, 3, "`" .. prefix .. it.name .. "`", p.doc)
    end
  end
  if mod.returns == "function" then section(out, 3, "`" .. signature("", short(mod), mod.returns_item.doc) .. "`",
    mod.returns_item.doc) end
end

--- Is a module part of resi's own commands rather than the script API
--- (resi.cli.*, resi.sim.*, resi.repl.*, resi.test.*, resi.apidoc.*)?
---@param name string
---@return boolean
function M.is_tool(name)
  for _, p in ipairs { "resi.cli", "resi.sim", "resi.repl", "resi.test", "resi.apidoc" } do
    if name == p or name:sub(1, #p + 1) == p .. "." then return true end
  end
  return false
end

--- The page's text for the given modules (sorted by name).
---@param mods resi.apidoc.Module[]
---@param find fun(target: table): resi.apidoc.Item|nil resolves an alias
---@return string
function M.render(mods, find)
  local out = {
    "# resi API reference",
    "",
    "<!-- DO NOT EDIT. GENERATED BY `make luals` (lualib/resi/apidoc.lua) from the `---` annotations in"
      .. " lualib/resi/. -->",
    "",
    "Every module below is `require \"NAME\"`. Functions marked *waits* suspend the calling task"
      .. " (run them in a script, a job, the REPL or `resi.spawn`). A function that can fail"
      .. " returns `nil, message, code` where its returns say `|nil`.",
    "",
  }
  local parts = { {}, {} }
  for _, mod in ipairs(mods) do table.insert(parts[M.is_tool(mod.name) and 2 or 1], mod) end
  for i, part in ipairs(parts) do
    out[#out + 1] = i == 1 and "Modules for scripts and jobs:" or
      "The implementation of resi's commands (sandbox, REPL, CLI, test runner, this generator):"
    out[#out + 1] = ""
    for _, mod in ipairs(part) do
      out[#out + 1] = ("- [`%s`](#%s)"):format(mod.name, mod.name:gsub("%.", ""))
    end
    out[#out + 1] = ""
  end
  for _, part in ipairs(parts) do
    for _, mod in ipairs(part) do module_section(out, mod, find) end
  end
  return (table.concat(out, "\n"):gsub("\n\n+$", "\n"))
end

return M
