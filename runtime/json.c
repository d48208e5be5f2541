/* json.c: resi.json_core, the C half of resi.json: the encoder, and the
 * module that also offers the decoder (json_decode.c).
 *
 * Encoding is written here: cjson 2.1.0 writes integers beyond 14 digits in
 * exponent form (123456789012345 -> 1.2345678901234e+14) and has no way to
 * mark an empty array; the fixes exist only in openresty's fork, which Debian
 * does not package. A table whose keys are all positive integers is an
 * array, holes written as null ({1, 2, nil, 4} -> [1,2,null,4]), within a
 * sparseness bound (see SPARSE_SAFE). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "json.h"

#define ARRAY_MT RESI_JSON_ARRAY_MT
#define ENCODER_MT "resi.json.encoder"
#define MAX_DEPTH RESI_JSON_MAX_DEPTH

/* ---- encode ------------------------------------------------------------ */

/* Where the walk is, for error messages: one frame per member or item on
 * the C stack, linked to its parent; the text ("$.a.b[1]") is only made
 * when an error is raised. */
typedef struct path_frame {
  const struct path_frame *parent;
  const char *key; /* the member's key, or NULL for an array item */
  lua_Integer i;   /* the item's index */
} path_frame;

/* The encoder: one userdata shared by every call (json_encode's upvalue),
 * so its output buffer keeps its memory between calls; the userdata's __gc
 * frees it. An encode calls no Lua code but the finalizers the collector
 * may run while it allocates; an encode inside one finds the shared
 * encoder busy and gets its own. (luaL_Buffer cannot be used here: it must
 * stay on top of the stack, and the walk pushes values.) */
typedef struct {
  resi_buf b;
  lua_State *L;
  int null_idx;  /* index of json.null */
  int array_idx; /* index of the array metatable */
  int sort_keys; /* emit object keys sorted */
  int indent;    /* pretty-print with two spaces */
  int busy;      /* the shared encoder is in use (see json_encode) */
  const path_frame *at; /* the innermost member or item, NULL at the top */
} encoder;

/* An output buffer that grew beyond this is freed after the call rather
 * than kept for the next. */
#define KEEP_BUFFER (64 * 1024)

static void encode_value(encoder *e, int idx, int depth);

/* Raises the out-of-memory error (the output could not grow). */
static void out_of_memory(encoder *e) {
  e->busy = 0;
  luaL_error(e->L, "resi.json.encode: out of memory");
}

/* Appends bytes to the output, growing it as needed. */
static void put(encoder *e, const char *p, size_t n) {
  if (!resi_buf_add(&e->b, p, n)) out_of_memory(e);
}

static void put_char(encoder *e, char c) { put(e, &c, 1); }
static void put_str(encoder *e, const char *s) { put(e, s, strlen(s)); }

/* Writes the path of frame f ("" at the top, ".a.b[1]") into out (size
 * n), cut at n - 1 characters; returns the length written. */
static size_t path_text(const path_frame *f, char *out, size_t n) {
  if (f == NULL) {
    out[0] = '\0';
    return 0;
  }
  size_t len = path_text(f->parent, out, n);
  if (len < n - 1) {
    int w = f->key ? snprintf(out + len, n - len, ".%s", f->key)
                   : snprintf(out + len, n - len, "[" LUA_INTEGER_FMT "]", f->i);
    len += (size_t)w < n - len ? (size_t)w : n - 1 - len;
  }
  return len;
}

/* Raises an encode error naming the path. */
static int encode_error(encoder *e, const char *what) {
  char path[256];
  path_text(e->at, path, sizeof path);
  e->busy = 0; /* the error ends this encode */
  return luaL_error(e->L, "resi.json.encode: %s at $%s", what, path);
}

/* The bytes a JSON string cannot hold as they are: '"', '\\', controls and DEL. */
static int needs_escape(unsigned char c) { return c == '"' || c == '\\' || c < 0x20 || c == 0x7f; }

/* Appends a JSON string literal. */
static void encode_string(encoder *e, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t plain = 0;
  while (plain < len && !needs_escape((unsigned char)s[plain])) plain++;
  if (plain == len) { /* the usual case: nothing to escape, one copy */
    if (!resi_buf_reserve(&e->b, len + 2)) out_of_memory(e);
    char *d = e->b.data + e->b.len;
    d[0] = '"';
    memcpy(d + 1, s, len);
    d[len + 1] = '"';
    e->b.len += len + 2;
    return;
  }
  put_char(e, '"');
  size_t run = 0;
  for (size_t i = plain; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[7];
    switch (c) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
        esc = u;
      }
    }
    if (esc) {
      if (i > run) put(e, s + run, i - run);
      put_str(e, esc);
      run = i + 1;
    }
  }
  if (len > run) put(e, s + run, len - run);
  put_char(e, '"');
}

/* Appends an integer's decimal digits. */
static void encode_integer(encoder *e, lua_Integer v) {
  char buf[RESI_INT_DIGITS], *p = resi_int_digits(buf + sizeof buf, v);
  put(e, p, (size_t)(buf + sizeof buf - p));
}

/* Appends a number: integers as digits, floats in the shortest form that
 * reads back as the same double. */
static void encode_number(encoder *e, int idx) {
  char buf[64];
  if (lua_isinteger(e->L, idx)) {
    encode_integer(e, lua_tointeger(e->L, idx));
    return;
  } else {
    double d = lua_tonumber(e->L, idx);
    if (isnan(d) || isinf(d)) encode_error(e, "cannot encode NaN or infinity");
    if (d == 0 && signbit(d)) {
      snprintf(buf, sizeof buf, "-0.0"); /* "-0" would read back as the integer 0 */
    } else if (d == floor(d) && fabs(d) < 1e15) {
      snprintf(buf, sizeof buf, "%.0f", d); /* 3.0 -> 3: JSON has one number type */
    } else {
      for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
      }
    }
  }
  put_str(e, buf);
}

/* Holes a Lua sequence may have and still encode as an array (with null in
 * each hole, as JavaScript and Python write [1, , 4] / [1, None, 4]): any
 * number up to index SPARSE_SAFE, beyond it at most one hole per value
 * (cjson's encode_sparse_array defaults). A sparser table, such as
 * {[1e9] = 1}, raises rather than write a billion nulls or silently become
 * an object. */
#define SPARSE_SAFE 10
#define SPARSE_RATIO 2

/* Is the table at idx marked with the array metatable? */
static int is_marked(encoder *e, int idx) {
  lua_State *L = e->L;
  if (!lua_getmetatable(L, idx)) return 0; /* stack: .., mt */
  int marked = lua_rawequal(L, -1, e->array_idx);
  lua_pop(L, 1);
  return marked;
}

/* Scans the keys of the table at idx: returns 1 when every key is a
 * positive integer, setting *max to the largest and *count to how many;
 * returns 0 at the first other key, leaving it on top of the stack. */
static int scan_indices(lua_State *L, int idx, lua_Integer *max, lua_Integer *count) {
  *max = 0, *count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: .., key, value */
    lua_pop(L, 1);           /* stack: .., key */
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) return 0;
    lua_Integer k = lua_tointeger(L, -1);
    if (k > *max) *max = k;
    (*count)++;
  }
  return 1; /* stack: .. */
}

/* Raises unless an array of n slots holding count values is dense enough. */
static void check_sparse(encoder *e, lua_Integer n, lua_Integer count) {
  if (n <= SPARSE_SAFE || n <= count * SPARSE_RATIO) return;
  char what[160];
  snprintf(what, sizeof what,
           "excessively sparse array (largest index " LUA_INTEGER_FMT ", " LUA_INTEGER_FMT
           " value%s; use string keys for a map)",
           n, count, count == 1 ? "" : "s");
  encode_error(e, what);
}

/* Is the table at idx an array? Marked ones are (any other key raises), and
 * so are unmarked ones whose keys are all positive integers (a sequence,
 * holes allowed within the sparseness bound); any other table, the empty
 * unmarked one included, is an object. Sets *n to the array's length. */
static int table_is_array(encoder *e, int idx, lua_Integer *n) {
  lua_State *L = e->L;
  lua_Integer count;
  int marked = is_marked(e, idx);
  if (!scan_indices(L, idx, n, &count)) { /* stack: .., key */
    if (marked) {
      char what[120]; /* lua_tostring may turn a number key into a string: we raise anyway */
      if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        snprintf(what, sizeof what, "json.array has a key that is not an index ('%.60s')", lua_tostring(L, -1));
      else
        snprintf(what, sizeof what, "json.array has a key that is not an index (a %s)", luaL_typename(L, -1));
      encode_error(e, what);
    }
    lua_pop(L, 1); /* stack: .. */
    return 0;
  }
  if (!marked && count == 0) return 0;
  check_sparse(e, *n, count);
  return 1;
}

/* Appends a newline and indentation in pretty mode. */
static void newline(encoder *e, int depth) {
  if (!e->indent) return;
  put_char(e, '\n');
  for (int i = 0; i < depth; i++) put(e, "  ", 2);
}

/* Appends an array from the table at idx. */
static void encode_array(encoder *e, int idx, lua_Integer n, int depth) {
  path_frame f = {e->at, NULL, 0};
  put_char(e, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) put_char(e, ',');
    newline(e, depth + 1);
    f.i = i;
    e->at = &f;
    lua_rawgeti(e->L, idx, i); /* stack: .., item */
    encode_value(e, lua_gettop(e->L), depth + 1);
    lua_pop(e->L, 1);
    e->at = f.parent;
  }
  if (n > 0) newline(e, depth);
  put_char(e, ']');
}

/* Appends one member: the key's text, then the value at value_idx. */
static void encode_member(encoder *e, const char *key, size_t len, int value_idx, int depth) {
  path_frame f = {e->at, key, 0};
  encode_string(e, key, len);
  put_char(e, ':');
  if (e->indent) put_char(e, ' ');
  e->at = &f;
  encode_value(e, value_idx, depth + 1);
  e->at = f.parent;
}

/* Raises unless every key of the table at idx is a string or a number
 * (checked before any member is written, so a bad key is what is named). */
static void check_keys(encoder *e, int idx) {
  lua_State *L = e->L;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: .., key, value */
    lua_pop(L, 1);           /* stack: .., key */
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) encode_error(e, "object keys must be strings or numbers");
  }
}

/* Appends an object from the table at idx in the order lua_next gives its
 * members (no sort_keys): each value is encoded as it is reached. */
static void encode_object_unsorted(encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  check_keys(e, idx);
  int first = 1;
  put_char(e, '{');
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: .., key, value */
    if (!first) put_char(e, ',');
    first = 0;
    newline(e, depth + 1);
    size_t len;
    const char *text;
    int number_key = lua_type(L, -2) != LUA_TSTRING;
    if (number_key) {
      lua_pushvalue(L, -2);              /* stack: .., key, value, key */
      text = lua_tolstring(L, -1, &len); /* the key as text; next needs the original */
      lua_insert(L, -2);                 /* stack: .., key, text, value */
    } else {
      text = lua_tolstring(L, -2, &len);
    }
    encode_member(e, text, len, lua_gettop(L), depth);
    lua_pop(L, number_key ? 2 : 1); /* stack: .., key */
  }
  if (!first) newline(e, depth);
  put_char(e, '}');
}

/* One object member while encoding: the key as text and where the
 * original key (string or number) sits on the stack. */
typedef struct {
  const char *text;
  size_t len;
  int key_idx;
} member;

/* Comparator for sorted keys. */
static int cmp_members(const void *a, const void *b) {
  const member *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->text, y->text, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Appends an object from the table at idx with its keys sorted (string
 * keys; numbers as text, like cjson). Keys are first copied to the stack as
 * (original, text) pairs so they can be sorted and stay alive while their
 * values are encoded. */
static void encode_object_sorted(encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  int base = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: .., pairs.., key, value */
    lua_pop(L, 1);
    int kt = lua_type(L, -1);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) encode_error(e, "object keys must be strings or numbers");
    luaL_checkstack(L, 4, "resi.json: too many keys");
    lua_pushvalue(L, -1);         /* stack: .., key, key */
    lua_pushvalue(L, -1);         /* stack: .., key, key, key */
    lua_tolstring(L, -1, NULL);   /* stack: .., key, key, text */
    lua_rotate(L, -3, 1);         /* stack: .., text, key, key */
    lua_rotate(L, -3, 1);         /* stack: .., key, text, key: next continues from the top */
    n++;
  }
  /* stack: .., (original, text) x n */
  member *m = n ? lua_newuserdatauv(L, sizeof(member) * (size_t)n, 0) : NULL;
  for (lua_Integer i = 0; i < n; i++) {
    int ki = base + 1 + 2 * (int)i;
    m[i].text = lua_tolstring(L, ki + 1, &m[i].len);
    m[i].key_idx = ki;
  }
  if (n > 1) qsort(m, (size_t)n, sizeof *m, cmp_members);
  put_char(e, '{');
  for (lua_Integer i = 0; i < n; i++) {
    if (i > 0) put_char(e, ',');
    newline(e, depth + 1);
    lua_pushvalue(L, m[i].key_idx);
    lua_rawget(L, idx); /* stack: .., value */
    encode_member(e, m[i].text, m[i].len, lua_gettop(L), depth);
    lua_pop(L, 1);
  }
  if (n > 0) newline(e, depth);
  put_char(e, '}');
  lua_settop(L, base);
}

/* Appends any value. */
static void encode_value(encoder *e, int idx, int depth) {
  lua_State *L = e->L;
  if (depth > MAX_DEPTH) encode_error(e, "nesting deeper than 1000 (a cycle?)");
  luaL_checkstack(L, 8, "resi.json: nesting too deep");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: put_str(e, "null"); break;
  case LUA_TBOOLEAN: put_str(e, lua_toboolean(L, idx) ? "true" : "false"); break;
  case LUA_TNUMBER: encode_number(e, idx); break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    encode_string(e, s, len);
    break;
  }
  case LUA_TTABLE: {
    lua_Integer n;
    if (table_is_array(e, idx, &n)) encode_array(e, idx, n, depth);
    else if (e->sort_keys) encode_object_sorted(e, idx, depth);
    else encode_object_unsorted(e, idx, depth);
    break;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_rawequal(L, idx, e->null_idx)) {
      put_str(e, "null");
      break;
    }
    /* fall through */
  default: {
    char what[64];
    snprintf(what, sizeof what, "cannot encode a %s", luaL_typename(L, idx));
    encode_error(e, what);
  }
  }
}

/* __gc of an encoder: frees its output buffer (also after an error). */
static int encoder_gc(lua_State *L) {
  encoder *e = lua_touserdata(L, 1);
  resi_buf_free(&e->b);
  return 0;
}

/* Pushes a new encoder userdata (stack: +1) and returns it. */
static encoder *new_encoder(lua_State *L) {
  encoder *e = lua_newuserdatauv(L, sizeof *e, 0); /* stack: .., e */
  memset(e, 0, sizeof *e);
  luaL_setmetatable(L, ENCODER_MT);
  return e;
}

/* core.encode(value, null, sort_keys, indent) -> string. Uses the shared
 * encoder (upvalue 1) unless it is busy: an encode that a finalizer run
 * by the collector in the middle of another one makes, or one after an
 * error the encoder could not see (out of stack), gets its own. */
static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 4);
  luaL_getmetatable(L, ARRAY_MT); /* stack: value, null, sort, indent, array_mt */
  encoder *e = lua_touserdata(L, lua_upvalueindex(1));
  if (e->busy) e = new_encoder(L); /* stack: .., array_mt, e */
  e->busy = 1;
  e->L = L;
  e->null_idx = 2;
  e->array_idx = 5;
  e->sort_keys = lua_toboolean(L, 3);
  e->indent = lua_toboolean(L, 4);
  e->at = NULL;
  e->b.len = 0;
  encode_value(e, 1, 0);
  lua_pushlstring(L, e->b.data ? e->b.data : "", e->b.len); /* stack: .., json */
  if (e->b.cap > KEEP_BUFFER) resi_buf_free(&e->b);
  e->busy = 0;
  return 1;
}

/* core.array_mt(): the metatable that marks arrays. */
static int json_array_mt(lua_State *L) {
  luaL_getmetatable(L, ARRAY_MT);
  return 1;
}

static const luaL_Reg json_funcs[] = {
    {"array_mt", json_array_mt},
    {NULL, NULL},
};

int luaopen_resi_json_core(lua_State *L) {
  resi_new_class(L, ARRAY_MT, NULL, NULL); /* only __name: it marks tables, it has no methods */
  resi_new_gc_class(L, ENCODER_MT, NULL, encoder_gc);
  luaL_newlib(L, json_funcs); /* stack: core */
  new_encoder(L);             /* stack: core, shared encoder */
  lua_pushcclosure(L, json_encode, 1); /* stack: core, encode */
  lua_setfield(L, -2, "encode");
  resi_json_push_decode(L); /* stack: core, decode */
  lua_setfield(L, -2, "decode");
  lua_pushlightuserdata(L, NULL); /* stack: core, null (the value cjson's null is too) */
  lua_setfield(L, -2, "null");
  return 1;
}
