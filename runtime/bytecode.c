/* bytecode.c: loads resi's own Lua modules from the bytecode `make` compiles
 * (one .luac per lualib .lua, under CMOD_DIR/luac), so a start-up does not
 * compile them again: compiling resi's ~460 KB of Lua takes ~6 ms, loading
 * the same as bytecode ~0.8 ms (bench/NOTES.md). The bytecode keeps its
 * debug information and the chunk name of its source file, so tracebacks,
 * debug.getinfo and error positions read as they do from source.
 *
 * A module's bytecode is used only while its source file exists and is not
 * newer: an edited source is loaded as source (the searcher after this one)
 * until `make` compiles it again. Bytecode that does not load (another Lua's
 * format, a truncated file) is skipped the same way. Written here because
 * Lua's own searchers take the first file on the path, fresh or not. */
#include "bytecode.h"

#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

/* The modification time of the regular file at path in nanoseconds, or -1. */
static long long mtime_ns(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

/* Tries the module file rel + suffix (rel: "resi/http", suffix "" or
 * "/init"). Sets *source when the source file exists. Returns 1 with the
 * loaded chunk and the bytecode's path pushed when the bytecode is fresh
 * and loads; 0 with nothing pushed. [-0, +0|+2] */
static int try_file(lua_State *L, const char *lualib, const char *luac, const char *rel, const char *suffix,
                    int *source) {
  char src[4096], bc[4096];
  int a = snprintf(src, sizeof src, "%s/%s%s.lua", lualib, rel, suffix);
  int b = snprintf(bc, sizeof bc, "%s/%s%s.luac", luac, rel, suffix);
  if (a < 0 || b < 0 || (size_t)a >= sizeof src || (size_t)b >= sizeof bc) return 0;
  long long src_time = mtime_ns(src);
  *source = src_time >= 0;
  if (!*source) return 0;
  long long bc_time = mtime_ns(bc);
  if (bc_time < src_time) return 0; /* missing (-1) or older than its source */
  if (luaL_loadfilex(L, bc, "b") != LUA_OK) { /* stack: .., err */
    lua_pop(L, 1);
    return 0;
  }
  lua_pushstring(L, bc); /* stack: .., chunk, path */
  return 1;
}

/* package.searchers entry for "resi" and "resi.*" (upvalues: the lualib
 * and bytecode directories): the loader and the bytecode's path, or
 * nothing, which hands the name to the source searcher. [-0, +0|+2] */
static int bytecode_searcher(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  if (!(strcmp(name, "resi") == 0 || strncmp(name, "resi.", 5) == 0) || len >= 256) return 0;
  char rel[256];
  for (size_t i = 0; i <= len; i++) {
    char c = name[i];
    if (c == '.') c = '/';
    else if (c == '/' || c == '\\') return 0; /* a path, not a module name */
    rel[i] = c;
  }
  const char *lualib = lua_tostring(L, lua_upvalueindex(1));
  const char *luac = lua_tostring(L, lua_upvalueindex(2));
  int source = 0;
  if (try_file(L, lualib, luac, rel, "", &source)) return 2;
  if (source) return 0; /* NAME.lua is what the source searcher loads: not NAME/init.lua */
  if (try_file(L, lualib, luac, rel, "/init", &source)) return 2;
  return 0;
}

void resi_push_bytecode_searcher(lua_State *L, const char *lualib_dir, const char *luac_dir) {
  lua_pushstring(L, lualib_dir);
  lua_pushstring(L, luac_dir);                  /* stack: .., lualib, luac */
  lua_pushcclosure(L, bytecode_searcher, 2); /* stack: .., searcher */
}
