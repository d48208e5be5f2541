--- resi.libdir: the directory resi's Lua library is read from, as the
--- running resi found it (package.path's first entries, set by the host).
--- Not a chunk's name: the bytecode of an installed module is named after
--- where the package puts its source (runtime/bytecode.c), which is not
--- where a staged (DESTDIR) or moved install reads it from.
local M = {}

--- The directory holding resi/ (lualib/ in a checkout,
--- PREFIX/share/resi/lualib installed), or "lualib" when not found.
---@return string
function M.lualib()
  local init = package.searchpath("resi", package.path)
  return init and init:match("^(.*)/resi/init%.lua$") or "lualib"
end

return M
