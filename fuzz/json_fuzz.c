/* json_fuzz.c: libFuzzer target for resi.json (resi's decoder and encoder,
 * runtime/json_decode.c and json.c). Any input: decode must either fail
 * cleanly or give a value that Debian's lua-cjson also decodes the text to
 * (resi is stricter about numbers, so the reverse need not hold; a text with
 * a NUL byte is not compared, as cjson stops at it), whose encoding decodes
 * and re-encodes to the same text; and the same value with each null inside
 * an array made a hole (nil) must encode as it does with its trailing nulls
 * dropped, or raise "excessively sparse". Run from the repository root (it
 * loads lualib/). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"

static const char check[] =
    "local json = require 'resi.json'\n"
    "local text = ...\n"
    "local v, err = json.safe_decode(text)\n"
    "if err then return end\n"
    "if not CJSON then\n"
    "  CJSON = require('cjson.safe').new()\n"
    "  CJSON.decode_invalid_numbers(false)\n"
    "  CJSON.decode_max_depth(1000)\n"
    "end\n"
    "local function same(a, b)\n"
    "  if type(a) == 'table' then\n"
    "    if type(b) ~= 'table' then return false end\n"
    "    for k, x in pairs(a) do if not same(x, b[k]) then return false end end\n"
    "    for k in pairs(b) do if a[k] == nil then return false end end\n"
    "    return true\n"
    "  elseif math.type(a) == 'integer' then\n"
    "    return a + 0.0 == b\n"
    "  end\n"
    "  return a == b or (a ~= a and b ~= b)\n"
    "end\n"
    "if not text:find('\\0', 1, true) then\n"
    "  local theirs, cerr = CJSON.decode(text)\n"
    "  if theirs == nil then error('resi decodes a text cjson refuses (' .. tostring(cerr) .. ')') end\n"
    "  if not same(v, theirs) then error('resi and cjson decode to different values') end\n"
    "end\n"
    "local ok, once = pcall(json.encode, v, {sort_keys = true})\n"
    "if not ok then return end -- e.g. a float NaN cannot come from valid JSON, but depth can\n"
    "local back, err2 = json.safe_decode(once)\n"
    "if err2 then error('cannot decode our own output ' .. once .. ': ' .. err2) end\n"
    "local twice = json.encode(back, {sort_keys = true})\n"
    "if once ~= twice then error('round trip differs: ' .. once .. ' vs ' .. twice) end\n"
    "-- holes(v): arrays with nulls as nil; trimmed(v): trailing nulls dropped\n"
    "local function is_list(t) return json.is_array(t) or (next(t) ~= nil and t[1] ~= nil) end\n"
    "local function copy(t, holes)\n"
    "  if type(t) ~= 'table' then return t end\n"
    "  local out, list = {}, is_list(t)\n"
    "  local n = list and #t or 0\n"
    "  while list and n > 0 and t[n] == json.null do n = n - 1 end\n"
    "  for k, x in pairs(t) do\n"
    "    if not (list and x == json.null and (holes or k > n)) then out[k] = copy(x, holes) end\n"
    "  end\n"
    "  if list and next(out) == nil then json.array(out) end\n"
    "  return out\n"
    "end\n"
    "local want = json.encode(copy(back, false), {sort_keys = true})\n"
    "local ok2, got = pcall(json.encode, copy(back, true), {sort_keys = true})\n"
    "if not ok2 and not got:find('excessively sparse', 1, true) then error('holes: ' .. got) end\n"
    "if ok2 and got ~= want then error('holes differ: ' .. got .. ' vs ' .. want) end\n";

static lua_State *L;
static int check_ref;

/* Creates the Lua state once, with resi's JSON modules reachable. */
static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "./lualib/?.lua;./lualib/?/init.lua");
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_resi_json_core);
  lua_setfield(L, -2, "resi.json_core");
  lua_pop(L, 2);
  if (luaL_loadstring(L, check) != LUA_OK) abort();
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) setup();
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "json_fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
