/* cron_fuzz.c: libFuzzer target for resi.cron, which is pure Lua (its
 * parser, its searches and its TZif/POSIX-TZ reader), driven through an
 * embedded lua_State the way json_fuzz.c drives resi.json.
 *
 * An input is one of:
 *   "TZif..."      raw bytes for the TZif reader: a zone or a message, and
 *                  a zone answers offset() for times from year 1 to 9999;
 *   "posix:STR"    a POSIX TZ string, as the footer of a minimal TZif v2
 *                  file: same checks (exercises the rule's year generator);
 *   anything else  a cron expression, in UTC, Europe/Berlin,
 *                  America/New_York and Australia/Lord_Howe in turn.
 *                  parse() gives a schedule or a message; for a schedule and
 *                  several t (DST days among them): next(t) > t,
 *                  matches(next(t)), prev(next(t)) <= t and
 *                  next(prev(next(t))) == next(t).
 * A Lua error (a raised error instead of a value, or a broken invariant)
 * aborts. Run from the repository root (it loads lualib/).
 *
 * The code under test is Lua, which libFuzzer's compile-time coverage
 * cannot see (liblua is not instrumented). A line hook feeds it instead:
 * each (previous line, line) pair of the Lua code bumps a counter in
 * libFuzzer's extra-counters section, so new paths through resi.cron count
 * as new coverage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

static const char check[] =
    "local cron = require 'resi.cron'\n"
    "local tz = require 'resi.cron.tz'\n"
    "local data = ...\n"
    "-- Probe times: 1870, 1970, 2016, around the 2024 changes of the three\n"
    "-- zones (Berlin spring and autumn, New York spring and autumn, Lord Howe\n"
    "-- autumn), 2100 and past year 9999.\n"
    "local T = { -86400 * 365 * 100, 0, 1481241600, 1711846799, 1711846800, 1729990800,\n"
    "  1710054000, 1730609000, 1730613600, 1730617200, 1712412000, 4102444800, 253402300000 }\n"
    "-- Checks a zone: an integer offset within a day for every probe time.\n"
    "local function check_zone(z)\n"
    "  for _, t in ipairs(T) do\n"
    "    local off, abbr = z:offset(t)\n"
    "    if math.type(off) ~= 'integer' or off < -93600 or off > 93600 or type(abbr) ~= 'string' then\n"
    "      error('bad offset ' .. tostring(off) .. ' at ' .. t)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "-- Parses TZif bytes; a failure must be a message.\n"
    "local function tzif(bytes)\n"
    "  local z, err = tz.parse_tzif(bytes, 'fuzz')\n"
    "  if not z then\n"
    "    if type(err) ~= 'string' then error('parse_tzif gave no message') end\n"
    "    return\n"
    "  end\n"
    "  check_zone(z)\n"
    "end\n"
    "if data:sub(1, 4) == 'TZif' then return tzif(data) end\n"
    "if data:sub(1, 6) == 'posix:' then\n"
    "  local footer = data:sub(7):gsub('\\n', '')\n"
    "  local head = 'TZif2' .. ('\\0'):rep(15) .. string.pack('>I4I4I4I4I4I4', 0, 0, 0, 0, 1, 4)\n"
    "  local v1 = head .. string.pack('>i4BB', 0, 0, 0) .. 'UTC\\0'\n"
    "  return tzif(v1 .. v1 .. '\\n' .. footer .. '\\n')\n"
    "end\n"
    "-- Checks one schedule at every probe time.\n"
    "local function check_schedule(s, zone)\n"
    "  for _, t in ipairs(T) do\n"
    "    local x = s:next(t)\n"
    "    if x then\n"
    "      local where = ('%q tz=%s t=%d next=%d'):format(data, tostring(zone), t, x)\n"
    "      if not (x > t) then error('next not after t: ' .. where) end\n"
    "      if not s:matches(x) then error('next does not match: ' .. where) end\n"
    "      local p = s:prev(x)\n"
    "      if p and p > t then error('a fire time between t and next: ' .. where .. ' prev=' .. p) end\n"
    "      if p and s:next(p) ~= x then error('next(prev(x)) ~= x: ' .. where .. ' prev=' .. p) end\n"
    "    end\n"
    "  end\n"
    "  s:explain(T[4], 3)\n"
    "end\n"
    "for _, zone in ipairs { 'UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe' } do\n"
    "  local s, err = cron.parse(data, { tz = zone })\n"
    "  if not s then\n"
    "    if type(err) ~= 'string' then error('parse gave no message') end\n"
    "    return\n"
    "  end\n"
    "  check_schedule(s, zone)\n"
    "end\n";

static lua_State *L;
static int check_ref;

#define LUA_COVERAGE 65536
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_coverage[LUA_COVERAGE];
static uint32_t previous_line;

/* The line hook: hashes (function source, line) and bumps the counter of
 * the pair it forms with the previous line. */
static void coverage_hook(lua_State *L1, lua_Debug *ar) {
  if (lua_getinfo(L1, "S", ar) == 0) return;
  uint32_t here = (uint32_t)(((uintptr_t)ar->source >> 3) * 2654435761u) ^ (uint32_t)ar->currentline * 40503u;
  uint8_t *c = &lua_coverage[(here ^ (previous_line >> 1)) % LUA_COVERAGE];
  if (*c < 255) (*c)++;
  previous_line = here;
}

/* Creates the Lua state once, with resi's Lua library reachable. */
static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "./lualib/?.lua;./lualib/?/init.lua");
  lua_setfield(L, -2, "path"); /* stack: package */
  lua_pop(L, 1);
  if (luaL_loadstring(L, check) != LUA_OK) {
    fprintf(stderr, "cron_fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_sethook(L, coverage_hook, LUA_MASKLINE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) setup();
  if (size > 4096) return 0; /* expressions and zone files are small */
  previous_line = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
  lua_pushlstring(L, (const char *)data, size); /* stack: check, data */
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "cron_fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
