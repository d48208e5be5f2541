--- resi.proxylist: proxy lists. Parse and write the forms proxies come in
--- (ResiFactory's list/userpass/json, URLs, host:port), keep big lists compact,
--- and dedupe, filter, shuffle, sample, chunk and map them; build sticky-session
--- lists for provider username dialects (resi.proxylist.sticky) and check which
--- proxies work (resi.proxylist.check).
---
--- An entry is {scheme=, host=, port=, user=, pass=}: scheme lower case
--- ("http" when the line has none, or opts.scheme), host without IPv6
--- brackets, port an integer, user/pass decoded (nil when absent). A list is a
--- read-only userdata: #list, list[i], ipairs(list), list.errors; operations
--- return new lists. list:format(fmt) gives the text, list:format(fmt, file)
--- writes it to a Lua file handle without building it. To read a big list,
--- `for i, p in list:entries()` makes no table per entry: p is one reused
--- view whose fields (p.host, p.port, p.user, p.pass, p.scheme) are read
--- when asked for; it moves to the next entry each step, so keep p:copy()
--- (a table, as list[i]) or i, not p. Parsing never drops a line, or a field, silently: every
--- rejected line is in list.errors as {line=, text=, reason=}. A reason names
--- the field and the fault and never quotes the line (a line in the wrong
--- format puts a password in any field); text is the line with every field
--- that may hold a credential shown as *** ("http://***:***@***:***"; a JSON
--- object keeps its keys and its host, port and scheme values).
---
--- Annotations: in the line formats the proxy is the first word of its line;
--- after it, past whitespace, may come only a comment ("# ..." or "; ...")
--- or a free-proxy list's status columns ("200.2.125.90:8080 AR-N-S! +").
--- host:port|metadata (monosans' "|Country|Region|City") is read as host:port.
--- Any other word after the proxy rejects the line ("host:port user pass":
--- write host:port:user:pass), so no credential is dropped unsaid.
---
--- Formats: "list" host:port:user:pass, "userpass" user:pass@host:port,
--- "url" scheme://user:pass@host:port (credentials percent-encoded), "json"
--- [{"host":..,"port":..,"username":..,"password":..}], "hostport" host:port,
--- "proxychains" type host port [user [pass]] (proxychains.conf's ProxyList);
--- "auto" (parsing only) detects the form of each line, and a JSON document.
--- list, userpass and hostport carry no scheme; hostport no credentials;
--- proxychains no https, and socks4a/socks5h are written socks4/socks5.
local core = require "resi.proxylist_core"

local M = {}

--- Bytes read at a time from files and stdin.
M.chunk_size = 1 << 20

--- The output formats.
M.formats = { "list", "userpass", "url", "json", "hostport", "proxychains" }

--- The schemes an entry may have.
M.schemes = { "http", "https", "socks4", "socks4a", "socks5", "socks5h" }

---@alias resi.proxylist.format "list"|"userpass"|"url"|"json"|"hostport"|"proxychains"

--- One proxy of a list.
---@class resi.proxylist.entry
---@field scheme "http"|"https"|"socks4"|"socks4a"|"socks5"|"socks5h"
---@field host string
---@field port integer
---@field user? string
---@field pass? string

--- A proxy list: #list entries, list[i] -> resi.proxylist.entry; list.errors
--- holds the lines that did not parse ({line=, text=, reason=}).
---@class resi.proxylist.list
---@field errors {line: integer, text: string, reason: string}[]
---@field format fun(self: resi.proxylist.list, fmt?: resi.proxylist.format): string  the list as text in a format
---@field line fun(self: resi.proxylist.list, i: integer, fmt?: resi.proxylist.format): string  one entry as a line
---@field dedupe fun(self: resi.proxylist.list): resi.proxylist.list  without repeated entries (first kept)
---@field entries fun(self: resi.proxylist.list): resi.proxylist.entry[]  the entries as tables
local methods = core.methods

-- Raises an argument error for the caller of a public function.
local function bad(msg, level) error("resi.proxylist: " .. msg, (level or 2) + 1) end

-- Checks an options table and returns it (or an empty one).
local function options(opts, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then bad("options must be a table", (level or 2) + 1) end
  return opts
end

-- One line describing the first rejected lines, for strict mode.
local function describe(errors, name)
  local parts = {}
  for i = 1, math.min(#errors, 3) do
    parts[#parts + 1] = ("%s line %d: %s"):format(name, errors[i].line, errors[i].reason)
  end
  if #errors > 3 then parts[#parts + 1] = ("(and %d more)"):format(#errors - 3) end
  return table.concat(parts, "; ")
end

-- Raises when strict and lines were rejected.
local function enforce(list, opts, name)
  if opts.strict and #list.errors > 0 then
    error("resi.proxylist: " .. #list.errors .. " rejected line(s): " .. describe(list.errors, name), 3)
  end
  return list
end

---@class resi.proxylist.reader
---@field feed fun(self: resi.proxylist.reader, chunk: string)
---@field finish fun(self: resi.proxylist.reader): userdata, table, integer

--- A streaming parser, for text that arrives in pieces (a pipe, a socket,
--- several files read in turn into one list): r:feed(chunk) for each
--- piece, in order (a line or JSON object may be split across pieces), then
--- r:finish() -> list, list.errors, count. Rejected lines are in
--- list.errors, as for parse; there is no strict mode here (look at
--- list.errors). Memory is the list's plus the longest line (or JSON
--- object). opts.format: "auto" (default) or one format; opts.scheme: the
--- scheme for lines without one (default "http").
---@param opts? {format?: string, scheme?: string}
---@return resi.proxylist.reader
function M.reader(opts)
  opts = options(opts)
  return core.reader(opts.format or "auto", opts.scheme)
end

--- Parses text (any size) into a list. opts.format: "auto" (default) or one
--- format; opts.scheme: the scheme for lines without one (default "http");
--- opts.strict: raise when any line is rejected (the message names the lines
--- and their reasons, never their text).
---@param text string
---@param opts? {format?: string, scheme?: string, strict?: boolean}
---@return resi.proxylist.list list
function M.parse(text, opts)
  opts = options(opts)
  if type(text) ~= "string" then bad("parse expects a string, got a " .. type(text)) end
  local r = M.reader(opts)
  r:feed(text)
  return enforce((r:finish()), opts, "text")
end

-- Opens path for reading ("-" is stdin); raises naming the file.
local function open_input(path, level)
  if path == "-" then return io.stdin, false end
  local f, err = io.open(path, "rb")
  if not f then bad("cannot read " .. err, level + 1) end
  return f, true
end

--- Reads a file chunk by chunk into a list (path "-" reads stdin). Options
--- as for parse.
---@param path string
---@param opts? {format?: string, scheme?: string, strict?: boolean}
---@return resi.proxylist.list list
function M.load(path, opts)
  opts = options(opts)
  if type(path) ~= "string" then bad("load expects a path") end
  local f, close = open_input(path, 2)
  local r = M.reader(opts)
  while r:pump(f) do end -- C reads each chunk into the list's arena: no Lua string of the file
  if close then f:close() end
  return enforce((r:finish()), opts, path)
end

--- Builds a list from entry tables ({scheme=, host=, port=, user=, pass=}),
--- checked like parsed lines; raises naming the first bad entry.
---@param entries table[]
---@return resi.proxylist.list list
function M.from(entries)
  if type(entries) ~= "table" then bad("from expects a list of entry tables") end
  return core.from(entries)
end

--- A streaming converter: conv:feed(chunk) -> text, errors|nil;
--- conv:finish() -> text, errors|nil, count. Memory stays bounded by the
--- chunk and the longest line (or JSON object), whatever the input size.
---@param opts {from?: string, to: string, scheme?: string}
---@return userdata converter
function M.converter(opts)
  opts = options(opts)
  if opts.to == nil then bad("converter needs opts.to (an output format)") end
  return core.reader(opts.from or "auto", opts.scheme, opts.to)
end

--- Converts text from one format to another in one call; returns the text,
--- the rejected lines ({line=, text=, reason=}, empty when none) and the
--- number of entries written.
---@param text string
---@param opts {from?: string, to: string, scheme?: string}
---@return string text
---@return table errors
---@return integer count
function M.convert(text, opts)
  local conv = M.converter(opts)
  local out, errs = conv:feed(text)
  local tail, errs2, count = conv:finish()
  local all = {}
  for _, list in ipairs { errs or {}, errs2 or {} } do
    for _, e in ipairs(list) do all[#all + 1] = e end
  end
  return out .. tail, all, count
end

-- ---- list methods (the C half holds format, line and dedupe) ----

--- A new list of the entries for which fn(entry, i) is true.
---@param fn fun(entry: table, i: integer): any
---@return resi.proxylist.list list
function methods:filter(fn)
  if type(fn) ~= "function" then bad("filter expects a function") end
  local keep = {}
  for i = 1, #self do
    if fn(self[i], i) then keep[#keep + 1] = i end
  end
  return core.pick(self, keep)
end

--- A new list of fn(entry, i) for every entry; fn returns an entry table,
--- or nil to leave the entry out.
---@param fn fun(entry: table, i: integer): table|nil
---@return resi.proxylist.list list
function methods:map(fn)
  if type(fn) ~= "function" then bad("map expects a function") end
  local out = {}
  for i = 1, #self do
    local e = fn(self[i], i)
    if e ~= nil then out[#out + 1] = e end
  end
  return core.from(out)
end

--- A new list in random order; the same seed (an integer) gives the same order.
---@param seed? integer
---@return resi.proxylist.list list
function methods:shuffle(seed)
  if seed ~= nil and math.type(seed) ~= "integer" then bad("shuffle's seed must be an integer") end
  return core.sample(self, #self, seed)
end

--- A new list of n entries picked at random without repeats (all of them,
--- shuffled, when n >= #list).
---@param n integer
---@param seed? integer
---@return resi.proxylist.list list
function methods:sample(n, seed)
  if math.type(n) ~= "integer" or n < 0 then bad("sample expects a count (an integer >= 0)") end
  if seed ~= nil and math.type(seed) ~= "integer" then bad("sample's seed must be an integer") end
  return core.sample(self, n, seed)
end

--- Splits into lists of at most n entries each, in order.
---@param n integer
---@return resi.proxylist.list[] lists
function methods:chunk(n)
  if math.type(n) ~= "integer" or n < 1 then bad("chunk expects a size (an integer >= 1)") end
  local out = {}
  for i = 1, #self, n do out[#out + 1] = core.slice(self, i, i + n - 1) end
  return out
end

--- The entries as a Lua array of tables (for small lists).
---@return table[]
function methods:totable()
  local out = {}
  for i = 1, #self do out[i] = self[i] end
  return out
end

--- Writes the list to path in fmt (default "list") atomically: into a temp
--- file beside it (streamed, no string of the whole text), fsynced, then
--- renamed over it, so a failed write leaves the old file as it was.
--- Returns true, or raises naming the file (or the entry the format cannot
--- carry). opts.sync = false skips the fsync (a bulk output that may be
--- lost in a power cut, as `resi proxies convert -o` and cp do).
---@param path string
---@param fmt? string
---@param opts? {sync?: boolean}
---@return boolean
function methods:save(path, fmt, opts)
  if type(path) ~= "string" then bad("save expects a path") end
  opts = options(opts)
  local w = require("resi.fs").atomic_writer(path, { sync = opts.sync })
  local ok, err = pcall(self.format, self, fmt or "list", w.file)
  if not ok then
    w:abort()
    error(err, 0)
  end
  w:commit()
  return true
end

--- Sticky-session lists for provider username dialects; see resi.proxylist.sticky.
---@param opts table
---@return resi.proxylist.list list
function M.sticky(opts) return require("resi.proxylist.sticky").build(opts) end

--- New session ids for the sticky entries of a list (Oxylabs sessid,
--- UnknownProxies session passwords); see resi.proxylist.sticky.refresh.
---@param list resi.proxylist.list
---@param opts? {minutes?: integer, seed?: integer}
---@return resi.proxylist.list list
---@return integer refreshed
function M.refresh(list, opts)
  if not M.is_list(list) then bad("refresh expects a proxy list") end
  return require("resi.proxylist.sticky").refresh(list, opts)
end

--- Checks every proxy of a list through a URL; see resi.proxylist.check.
---@param list resi.proxylist.list
---@param opts {url: string, concurrency?: integer, timeout?: number}
---@return table[] results
---@async
function M.check(list, opts) return require("resi.proxylist.check").run(list, opts) end

--- Is x a proxy list?
---@param x any
---@return boolean
function M.is_list(x)
  local mt = getmetatable(x)
  return mt ~= nil and mt.__name == "resi.proxylist.list"
end

return M
