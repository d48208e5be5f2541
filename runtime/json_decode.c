/* json_decode.c: resi.json_core.decode, the JSON decoder of resi.json.
 *
 * Why not lua-cjson (Debian's 2.1.0), which resi decoded with until now: it
 * hands back every number as a double, so under Lua 5.4 the literal 5 comes
 * back as the float 5.0 and 123456789012345678 loses digits, and it returns
 * [] and {} as the same empty table. resi walked the text a second time to
 * mend both, and that walk was a JSON scanner of its own: together they cost
 * about 40 k instructions for the bench's 311-byte token record, more than
 * half of what libcurl spends on the whole request (bench/NOTES.md). This
 * decoder does it in one pass: integer literals become exact Lua integers,
 * [] gets the array metatable, and each table is created at its final size
 * from the values gathered on the Lua stack (no rehash while it fills).
 * lua-cjson stays what it is tested against (spec/json_spec.lua,
 * fuzz/json_fuzz.c): where both accept a text, they must give the same value.
 *
 * Grammar: RFC 8259, strict outside strings (no leading zeros, '+', ".5",
 * "1.", NaN, Infinity, hex, comments or trailing commas). Inside a string any
 * byte but '"' and '\\' is taken as it is, as cjson does, so a sloppy server's
 * raw tab still decodes. \u escapes become UTF-8; a lone surrogate is an
 * error. Errors name the position ("at character N", 1-based, as cjson's do)
 * and never quote the input, which can hold a secret. */
#include <stdint.h>
#include <string.h>

#include "host.h"
#include "json.h"

/* Values gathered on the stack before their table is made; a longer array
 * or object is made at this size and then filled as it goes. */
#define CHUNK 32

/* Object keys recently made into Lua strings, so that a key seen before
 * (API responses repeat the same few) is pushed from here instead of being
 * hashed and looked up in Lua's string table again (~150 instructions a
 * key). A direct-mapped cache: a slot keeps one key's bytes, and the
 * string itself sits at [slot + 1] of the decoder's uservalue table, which
 * keeps it alive. A key that misses takes its slot over. */
#define KEY_SLOTS 256
#define KEY_MAX 32 /* longer keys are not cached */
typedef struct {
  unsigned char len[KEY_SLOTS]; /* 0: the slot is empty */
  char bytes[KEY_SLOTS][KEY_MAX];
} key_cache;

typedef struct {
  lua_State *L;
  const char *text, *p, *end;
  int depth;
  const char *err, *err_at; /* the first failure and where, NULL while fine */
  key_cache *keys;
  int keys_idx; /* the stack index of the table holding the cached key strings */
} decoder;

/* Records the failure (the first one wins); returns 0 for `return fail(...)`. */
static int fail(decoder *d, const char *what, const char *at) {
  if (d->err == NULL) d->err = what, d->err_at = at;
  return 0;
}

/* Skips JSON whitespace. */
static inline void skip_ws(decoder *d) {
  while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t')) d->p++;
}

static int decode_value(decoder *d);

/* The first '"' or '\\' at or after q, or end: eight bytes at a time while
 * eight remain (a byte equal to either makes its word's mask non-zero, and
 * the mask's lowest set bit is the first such byte), then byte by byte. */
static inline const char *string_end(const char *q, const char *end) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  while (end - q >= 8) {
    uint64_t w;
    memcpy(&w, q, 8);
    uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
    uint64_t hit = (((quote - ones) & ~quote) | ((slash - ones) & ~slash)) & highs;
    if (hit) return q + (__builtin_ctzll(hit) >> 3);
    q += 8;
  }
  while (q < end && *q != '"' && *q != '\\') q++;
  return q;
}

/* Decodes a string with escapes from d->p (just past the opening quote,
 * with the unescaped run up to q already known) and pushes it. */
static int decode_escaped(decoder *d, const char *q) {
  luaL_Buffer b;
  luaL_buffinit(d->L, &b); /* stack: .., buffer */
  for (;;) {
    luaL_addlstring(&b, d->p, (size_t)(q - d->p));
    d->p = q;
    if (d->p >= d->end) return fail(d, "unterminated string", d->p);
    if (*d->p == '"') break;
    char out[4];
    size_t n;
    const char *why;
    int used = resi_json_unescape(d->p, d->end, out, &n, &why);
    if (used == 0) return fail(d, "unterminated string", d->end);
    if (used < 0) return fail(d, why, d->p);
    luaL_addlstring(&b, out, n);
    d->p += used;
    q = string_end(d->p, d->end);
  }
  d->p++; /* closing quote */
  luaL_pushresult(&b); /* stack: .., string */
  return 1;
}

/* The cache slot of a key of len (1..KEY_MAX) bytes. */
static unsigned key_slot(const char *s, size_t len) {
  uint32_t h = (uint32_t)len * 0x9e3779b1u;
  h = (h ^ (unsigned char)s[0]) * 0x85ebca6bu;
  h = (h ^ (unsigned char)s[len - 1]) * 0xc2b2ae35u;
  h ^= (unsigned char)s[len >> 1];
  return (h ^ (h >> 15)) & (KEY_SLOTS - 1);
}

/* Pushes the unescaped key s (len bytes) from the cache, or makes it and
 * caches it. */
static void push_key(decoder *d, const char *s, size_t len) {
  lua_State *L = d->L;
  if (len == 0 || len > KEY_MAX) {
    lua_pushlstring(L, s, len);
    return;
  }
  key_cache *c = d->keys;
  unsigned slot = key_slot(s, len);
  if (c->len[slot] == len && memcmp(c->bytes[slot], s, len) == 0) {
    lua_rawgeti(L, d->keys_idx, (lua_Integer)slot + 1); /* stack: .., key */
    return;
  }
  lua_pushlstring(L, s, len); /* stack: .., key */
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->keys_idx, (lua_Integer)slot + 1);
  c->len[slot] = (unsigned char)len;
  memcpy(c->bytes[slot], s, len);
}

/* Decodes the string at d->p (its opening quote) and pushes it; a key
 * (is_key) without escapes comes from the key cache. */
static int decode_string(decoder *d, int is_key) {
  const char *open = d->p++, *q = string_end(d->p, d->end);
  if (q >= d->end) return fail(d, "unterminated string", open);
  if (*q == '\\') return decode_escaped(d, q);
  if (is_key) push_key(d, d->p, (size_t)(q - d->p));
  else lua_pushlstring(d->L, d->p, (size_t)(q - d->p)); /* stack: .., string */
  d->p = q + 1;
  return 1;
}

/* Skips a run of digits; returns how many. */
static size_t digits(decoder *d) {
  const char *s = d->p;
  while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
  return (size_t)(d->p - s);
}

/* Decodes the number at d->p and pushes it: an integer literal of up to
 * 18 digits exactly, from the value gathered while its digits are scanned
 * (it cannot overflow; a longer run wraps harmlessly and is not used), any
 * other through Lua's own conversion (an integer when it fits, else a
 * float; locale-proof). */
static int decode_number(decoder *d) {
  const char *s = d->p;
  int neg = *d->p == '-';
  d->p += neg;
  if (d->p >= d->end || *d->p < '0' || *d->p > '9') return fail(d, "invalid number", s);
  const char *first = d->p;
  uint64_t v = 0;
  if (*d->p == '0') d->p++;
  else
    while (d->p < d->end && *d->p >= '0' && *d->p <= '9') v = v * 10 + (uint64_t)(*d->p++ - '0');
  size_t n = (size_t)(d->p - first);
  int is_int = 1;
  if (d->p < d->end && *d->p == '.') {
    d->p++, is_int = 0;
    if (digits(d) == 0) return fail(d, "invalid number", s);
  }
  if (d->p < d->end && (*d->p | 0x20) == 'e') {
    d->p++, is_int = 0;
    if (d->p < d->end && (*d->p == '+' || *d->p == '-')) d->p++;
    if (digits(d) == 0) return fail(d, "invalid number", s);
  }
  if (is_int && n <= 18) {
    lua_pushinteger(d->L, neg ? -(lua_Integer)v : (lua_Integer)v); /* stack: .., number */
    return 1;
  }
  lua_pushlstring(d->L, s, (size_t)(d->p - s)); /* stack: .., text (NUL-terminated) */
  if (lua_stringtonumber(d->L, lua_tostring(d->L, -1)) == 0) return fail(d, "invalid number", s);
  lua_remove(d->L, -2); /* stack: .., number */
  return 1;
}

/* Matches the literal word (true, false, null) at d->p. */
static int literal(decoder *d, const char *word, size_t len) {
  if ((size_t)(d->end - d->p) < len || memcmp(d->p, word, len) != 0) return fail(d, "expected a value", d->p);
  d->p += len;
  return 1;
}

/* Enters the array or object at d->p (close is its closing byte), refusing
 * past MAX_DEPTH: makes room on the Lua stack for its gathered values and
 * pushes the slot its table will take (at *slot), so that making the table
 * moves nothing. An empty one is made at once (an array marked, so that it
 * encodes as []): returns 2 for it, 1 when members follow, 0 on failure. */
static int enter(decoder *d, int *slot, char close) {
  if (++d->depth > RESI_JSON_MAX_DEPTH) return fail(d, "more than 1000 nested arrays and objects", d->p);
  luaL_checkstack(d->L, 2 * CHUNK + 8, "resi.json.decode: nesting too deep");
  lua_pushnil(d->L); /* stack: .., slot */
  *slot = lua_gettop(d->L);
  d->p++; /* [ or { */
  skip_ws(d);
  if (d->p >= d->end || *d->p != close) return 1;
  d->p++, d->depth--;
  lua_createtable(d->L, 0, 0);
  if (close == ']') luaL_setmetatable(d->L, RESI_JSON_ARRAY_MT);
  lua_replace(d->L, *slot); /* stack: .., [] or {} */
  return 2;
}

/* After an array element or object member: takes the ',' before the next
 * one (returns 1) or the closing byte (returns 2); else fails with what was
 * expected (returns 0). */
static int after_member(decoder *d, char close, const char *expected) {
  skip_ws(d);
  if (d->p < d->end && *d->p == ',') {
    d->p++;
    skip_ws(d);
    return 1;
  }
  if (d->p < d->end && *d->p == close) {
    d->p++;
    return 2;
  }
  return fail(d, expected, d->p);
}

/* Makes the table of the n members gathered above its slot (values for an
 * array, key/value pairs for an object) with room for size, and moves them
 * in; an object's pairs in order, so that a repeated key keeps its last
 * value. */
static void make_table(lua_State *L, int object, int slot, int n, int size) {
  if (!object) {
    lua_createtable(L, size, 0);
    lua_replace(L, slot); /* stack: .., t, v1 .. vn */
    for (int i = n; i >= 1; i--) lua_rawseti(L, slot, i);
    return;
  }
  lua_createtable(L, 0, size);
  lua_replace(L, slot); /* stack: .., t, k1, v1 .. kn, vn */
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, slot + 1 + 2 * i);
    lua_pushvalue(L, slot + 2 + 2 * i); /* stack: .., t, pairs.., k, v */
    lua_rawset(L, slot);
  }
  lua_settop(L, slot); /* stack: .., t */
}

/* Decodes one object member ("key": value) and pushes the key and the value. */
static int decode_member(decoder *d) {
  if (d->p >= d->end || *d->p != '"') return fail(d, "expected a string key", d->p);
  if (!decode_string(d, 1)) return 0; /* stack: .., k */
  skip_ws(d);
  if (d->p >= d->end || *d->p != ':') return fail(d, "expected ':'", d->p);
  d->p++;
  skip_ws(d);
  return decode_value(d); /* stack: .., k, v */
}

/* Decodes the array or object at d->p (close: ']' or '}') and pushes it.
 * The first CHUNK members are gathered on the stack and the table made at
 * their count; a longer one is made then and filled as it goes. */
static int decode_container(decoder *d, char close) {
  lua_State *L = d->L;
  int object = close == '}', slot, n = 0, made = 0;
  int members = enter(d, &slot, close);
  if (members != 1) return members != 0;
  for (;;) {
    if (!made && n == CHUNK) make_table(L, object, slot, n, 2 * CHUNK), made = 1;
    if (!(object ? decode_member(d) : decode_value(d))) return 0; /* stack: .., slot, members.., member */
    n++;
    if (made && object) lua_rawset(L, slot);
    else if (made) lua_rawseti(L, slot, n);
    int more = after_member(d, close, object ? "expected ',' or '}'" : "expected ',' or ']'");
    if (more == 0) return 0;
    if (more == 2) break;
  }
  if (!made) make_table(L, object, slot, n, n); /* stack: .., t */
  d->depth--;
  return 1;
}

/* Decodes the value at d->p and pushes it. */
static int decode_value(decoder *d) {
  if (d->p >= d->end) return fail(d, "expected a value", d->p);
  switch (*d->p) {
  case '{': return decode_container(d, '}');
  case '[': return decode_container(d, ']');
  case '"': return decode_string(d, 0);
  case 't': return literal(d, "true", 4) && (lua_pushboolean(d->L, 1), 1);
  case 'f': return literal(d, "false", 5) && (lua_pushboolean(d->L, 0), 1);
  case 'n': return literal(d, "null", 4) && (lua_pushlightuserdata(d->L, NULL), 1); /* json.null */
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return decode_number(d);
    return fail(d, "expected a value", d->p);
  }
}

/* core.decode(text) -> value | nil, message: one JSON value (with optional
 * whitespace around it); the message ("resi.json.decode: ...", the words
 * resi.json.safe_decode returns) names the position, never the text.
 * Upvalue 1: the key cache (resi_json_push_decode). */
static int json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_settop(L, 1);
  lua_getiuservalue(L, lua_upvalueindex(1), 1); /* stack: text, cached keys */
  decoder d = {L, text, text, text + len, 0, NULL, NULL, lua_touserdata(L, lua_upvalueindex(1)), 2};
  skip_ws(&d);
  if (decode_value(&d)) {
    skip_ws(&d);
    if (d.p >= d.end) return 1; /* stack: text, cached keys, value */
    fail(&d, "unexpected text after the value", d.p);
  }
  lua_settop(L, 1);
  lua_pushnil(L);
  if (d.err_at >= d.end)
    lua_pushfstring(L, "resi.json.decode: %s, but the text ended at character %I", d.err,
                    (lua_Integer)(d.err_at - text) + 1);
  else
    lua_pushfstring(L, "resi.json.decode: %s at character %I", d.err, (lua_Integer)(d.err_at - text) + 1);
  return 2; /* stack: text, nil, message */
}

/* Pushes core.decode: the decoder with a key cache of its own (one per Lua
 * state, which the cache's strings belong to). */
void resi_json_push_decode(lua_State *L) {
  key_cache *c = lua_newuserdatauv(L, sizeof *c, 1); /* stack: cache */
  memset(c->len, 0, sizeof c->len);
  lua_createtable(L, KEY_SLOTS, 0);
  lua_setiuservalue(L, -2, 1);
  lua_pushcclosure(L, json_decode, 1); /* stack: decode */
}
