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
#include <string.h>

#include "host.h"
#include "json.h"

/* Values gathered on the stack before their table is made; a longer array
 * or object is made at this size and then filled as it goes. */
#define CHUNK 32

typedef struct {
  lua_State *L;
  const char *text, *p, *end;
  int depth;
  const char *err, *err_at; /* the first failure and where, NULL while fine */
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

/* The value of one hex digit, or -1. */
static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)(c | 0x20);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Reads the 4 hex digits after "\u" at p; returns the code unit or -1. */
static long hex4(const decoder *d, const char *p) {
  if (d->end - p < 6) return -1;
  long v = 0;
  for (int i = 2; i < 6; i++) {
    int h = hex_digit(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* Appends code point cp to b as UTF-8. */
static void add_utf8(luaL_Buffer *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) u[0] = (char)cp, n = 1;
  else if (cp < 0x800) u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
  else
    u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
  luaL_addlstring(b, u, n);
}

/* Decodes the \u escape at d->p (one code unit, or a surrogate pair) into b. */
static int add_unicode_escape(decoder *d, luaL_Buffer *b) {
  long hi = hex4(d, d->p);
  if (hi < 0) return fail(d, "invalid \\u escape", d->p);
  if (hi >= 0xDC00 && hi <= 0xDFFF) return fail(d, "lone low surrogate in a \\u escape", d->p);
  if (hi < 0xD800 || hi > 0xDBFF) {
    add_utf8(b, (unsigned long)hi);
    d->p += 6;
    return 1;
  }
  long lo = d->end - d->p >= 12 && d->p[6] == '\\' && d->p[7] == 'u' ? hex4(d, d->p + 6) : -1;
  if (lo < 0xDC00 || lo > 0xDFFF) return fail(d, "high surrogate not followed by a low one in a \\u escape", d->p);
  add_utf8(b, 0x10000 + (((unsigned long)hi - 0xD800) << 10) + ((unsigned long)lo - 0xDC00));
  d->p += 12;
  return 1;
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
    if (d->end - d->p < 2) return fail(d, "unterminated string", d->end);
    char c = d->p[1], out;
    switch (c) {
    case '"': out = '"'; break;
    case '\\': out = '\\'; break;
    case '/': out = '/'; break;
    case 'b': out = '\b'; break;
    case 'f': out = '\f'; break;
    case 'n': out = '\n'; break;
    case 'r': out = '\r'; break;
    case 't': out = '\t'; break;
    case 'u':
      if (!add_unicode_escape(d, &b)) return 0;
      q = d->p;
      while (q < d->end && *q != '"' && *q != '\\') q++;
      continue;
    default: return fail(d, "invalid escape in a string", d->p);
    }
    luaL_addchar(&b, out);
    d->p += 2;
    q = d->p;
    while (q < d->end && *q != '"' && *q != '\\') q++;
  }
  d->p++; /* closing quote */
  luaL_pushresult(&b); /* stack: .., string */
  return 1;
}

/* Decodes the string at d->p (its opening quote) and pushes it. */
static int decode_string(decoder *d) {
  const char *open = d->p++, *q = d->p;
  while (q < d->end && *q != '"' && *q != '\\') q++;
  if (q >= d->end) return fail(d, "unterminated string", open);
  if (*q == '\\') return decode_escaped(d, q);
  lua_pushlstring(d->L, d->p, (size_t)(q - d->p)); /* stack: .., string */
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
 * 18 digits by a loop (it cannot overflow), any other through Lua's own
 * conversion (an integer when it fits, else a float; locale-proof). */
static int decode_number(decoder *d) {
  const char *s = d->p;
  int neg = *d->p == '-';
  d->p += neg;
  if (d->p >= d->end || *d->p < '0' || *d->p > '9') return fail(d, "invalid number", s);
  size_t n = *d->p == '0' ? (d->p++, 1) : digits(d);
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
    lua_Integer v = 0;
    for (const char *c = s + neg; c < d->p; c++) v = v * 10 + (*c - '0');
    lua_pushinteger(d->L, neg ? -v : v); /* stack: .., number */
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

/* Enters a nested array or object, refusing past MAX_DEPTH: makes room on
 * the Lua stack for its gathered values and pushes the slot its table will
 * take (at *slot), so that making the table moves nothing. */
static int enter(decoder *d, int *slot) {
  if (++d->depth > RESI_JSON_MAX_DEPTH) return fail(d, "more than 1000 nested arrays and objects", d->p);
  luaL_checkstack(d->L, 2 * CHUNK + 8, "resi.json.decode: nesting too deep");
  lua_pushnil(d->L); /* stack: .., slot */
  *slot = lua_gettop(d->L);
  d->p++; /* [ or { */
  skip_ws(d);
  return 1;
}

/* Makes the array table in its slot and moves the n values above it in. */
static void make_array(lua_State *L, int slot, int n, int size) {
  lua_createtable(L, size, 0);
  lua_replace(L, slot); /* stack: .., t, v1 .. vn */
  for (int i = n; i >= 1; i--) lua_rawseti(L, slot, i);
}

/* Decodes the array at d->p and pushes it. */
static int decode_array(decoder *d) {
  lua_State *L = d->L;
  int slot, n = 0, made = 0;
  if (!enter(d, &slot)) return 0;
  if (d->p < d->end && *d->p == ']') {
    d->p++, d->depth--;
    lua_createtable(L, 0, 0);
    luaL_setmetatable(L, RESI_JSON_ARRAY_MT);
    lua_replace(L, slot); /* stack: .., [] (marked, so it encodes as []) */
    return 1;
  }
  for (;;) {
    if (!made && n == CHUNK) make_array(L, slot, n, 2 * CHUNK), made = 1;
    if (!decode_value(d)) return 0; /* stack: .., slot, values.., v */
    n++;
    if (made) lua_rawseti(L, slot, n);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
    } else if (d->p < d->end && *d->p == ']') {
      d->p++;
      break;
    } else {
      return fail(d, "expected ',' or ']'", d->p);
    }
  }
  if (!made) make_array(L, slot, n, n); /* stack: .., t */
  d->depth--;
  return 1;
}

/* Makes the object table in its slot and sets the n key/value pairs above
 * it in order, so that a repeated key keeps its last value. */
static void make_object(lua_State *L, int slot, int n, int size) {
  lua_createtable(L, 0, size);
  lua_replace(L, slot); /* stack: .., t, k1, v1 .. kn, vn */
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, slot + 1 + 2 * i);
    lua_pushvalue(L, slot + 2 + 2 * i); /* stack: .., t, pairs.., k, v */
    lua_rawset(L, slot);
  }
  lua_settop(L, slot); /* stack: .., t */
}

/* Decodes the object at d->p and pushes it. */
static int decode_object(decoder *d) {
  lua_State *L = d->L;
  int slot, n = 0, made = 0;
  if (!enter(d, &slot)) return 0;
  if (d->p < d->end && *d->p == '}') {
    d->p++, d->depth--;
    lua_createtable(L, 0, 0);
    lua_replace(L, slot); /* stack: .., {} */
    return 1;
  }
  for (;;) {
    if (d->p >= d->end || *d->p != '"') return fail(d, "expected a string key", d->p);
    if (!made && n == CHUNK) make_object(L, slot, n, 2 * CHUNK), made = 1;
    if (!decode_string(d)) return 0; /* stack: .., slot, pairs.., k */
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return fail(d, "expected ':'", d->p);
    d->p++;
    skip_ws(d);
    if (!decode_value(d)) return 0; /* stack: .., slot, pairs.., k, v */
    n++;
    if (made) lua_rawset(L, slot);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      skip_ws(d);
    } else if (d->p < d->end && *d->p == '}') {
      d->p++;
      break;
    } else {
      return fail(d, "expected ',' or '}'", d->p);
    }
  }
  if (!made) make_object(L, slot, n, n); /* stack: .., t */
  d->depth--;
  return 1;
}

/* Decodes the value at d->p and pushes it. */
static int decode_value(decoder *d) {
  if (d->p >= d->end) return fail(d, "expected a value", d->p);
  switch (*d->p) {
  case '{': return decode_object(d);
  case '[': return decode_array(d);
  case '"': return decode_string(d);
  case 't': return literal(d, "true", 4) && (lua_pushboolean(d->L, 1), 1);
  case 'f': return literal(d, "false", 5) && (lua_pushboolean(d->L, 0), 1);
  case 'n': return literal(d, "null", 4) && (lua_pushlightuserdata(d->L, NULL), 1); /* json.null */
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return decode_number(d);
    return fail(d, "expected a value", d->p);
  }
}

/* core.decode(text) -> value | nil, message: one JSON value (with optional
 * whitespace around it); the message names the position, never the text. */
int resi_json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  decoder d = {L, text, text, text + len, 0, NULL, NULL};
  lua_settop(L, 1);
  skip_ws(&d);
  if (decode_value(&d)) {
    skip_ws(&d);
    if (d.p >= d.end) return 1; /* stack: text, value */
    fail(&d, "unexpected text after the value", d.p);
  }
  lua_settop(L, 1);
  lua_pushnil(L);
  if (d.err_at >= d.end)
    lua_pushfstring(L, "%s, but the text ended at character %I", d.err, (lua_Integer)(d.err_at - text) + 1);
  else
    lua_pushfstring(L, "%s at character %I", d.err, (lua_Integer)(d.err_at - text) + 1);
  return 2; /* stack: text, nil, message */
}
