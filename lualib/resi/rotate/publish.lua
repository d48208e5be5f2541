--- resi.rotate.publish: where a rotation's live credentials go: a proxy
--- list (any resi.proxylist format) and a JSON manifest, each written
--- atomically with mode 0600, then a command (`systemctl reload squid`)
--- run only once both files are in place. Never silent: what was written,
--- what was left out and why, and a command's failure are all said.
local fs = require "resi.fs"
local json = require "resi.json"
local proxylist = require "resi.proxylist"

local M = {}

-- Writes data to path atomically (mode 0600); raises naming the option.
local function write_out(option, path, data)
  local ok, err = pcall(fs.write_atomic, path, data, 384)
  if not ok then error({ user = true, message = ("%s %s: %s"):format(option, path, tostring(err)) }, 0) end
end

-- The manifest's record of one live credential.
local function manifest_entry(c)
  local t, e = c.token, c.entry
  return { provider = t.provider, account = c.account.label, id = t.id, username = e and e.user or t.username,
    password = e and e.pass or json.null, host = e and e.host or c.account.gateway.host,
    port = e and e.port or c.account.gateway.port, replaces = c.replaces, limit_bytes = t.limit_bytes,
    used_bytes = t.used_bytes, expires_at = t.expires_at, published = e ~= nil, reason = c.why }
end

--- Writes the credentials out. opts: out, format (default "list"),
--- manifest, exec. Returns {published = N (entries in the list), written =
--- {paths}, exec = resi.process.result|nil}. A file that cannot be
--- written raises {user = true, message}.
---@param creds table[]  resi.rotate.steps.live's records
---@param opts {out?: string, format?: string, manifest?: string, exec?: string}
---@return table
function M.write(creds, opts)
  local entries, written = {}, {}
  for _, c in ipairs(creds) do
    if c.entry then entries[#entries + 1] = c.entry end
  end
  if opts.out then
    write_out("--out", opts.out, proxylist.from(entries):format(opts.format or "list"))
    written[#written + 1] = opts.out
  end
  if opts.manifest then
    local recs = {}
    for i, c in ipairs(creds) do recs[i] = manifest_entry(c) end
    write_out("--manifest", opts.manifest, json.encode({ generated_at = os.time(), credentials = json.array(recs) },
      { sort_keys = true, indent = 2 }) .. "\n")
    written[#written + 1] = opts.manifest
  end
  local result = { published = #entries, written = written }
  if opts.exec then result.exec = M.exec(opts.exec) end
  return result
end

--- Runs the post-publish command (resi.process: the loop goes on while
--- it runs; 60 s at most).
---@param cmd string
---@return resi.process.result
function M.exec(cmd) return require("resi.process").run(cmd, { timeout = 60 }) end

return M
