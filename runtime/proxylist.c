/* proxylist.c: resi.proxylist_core, the Lua binding of the proxy-list codec.
 *
 * A list is a userdata (resi.proxylist.list) holding one string arena and
 * an array of fixed-size entries; list[i] builds the entry's table when it
 * is asked for. A reader (resi.proxylist.reader) takes text chunk by chunk
 * and either builds a list or converts straight to another format, so a
 * file of any size converts in bounded memory. resi.proxylist (Lua) wraps
 * both with options, files and the list operations written in Lua. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "host.h"
#include "proxylist.h"

#define LIST_MT "resi.proxylist.list"
#define READER_MT "resi.proxylist.reader"
#define MAX_PENDING (64 * 1024 * 1024) /* largest JSON object (or "proxies" string) held while reading */
#define ERR_TEXT 200                   /* bytes of a rejected line masked into list.errors */
#define PUMP_CHUNK (1024 * 1024)       /* bytes read at a time by reader:pump */

typedef struct {
  resi_pl_buf arena;
  resi_pl_entry *e;
  size_t n, cap;
} pl_list;

/* ---- lists ------------------------------------------------------------- */

/* Pushes a new empty list with an empty errors table as its user value. */
static pl_list *new_list(lua_State *L) {
  pl_list *l = lua_newuserdatauv(L, sizeof *l, 1); /* stack: list */
  memset(l, 0, sizeof *l);
  luaL_setmetatable(L, LIST_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  return l;
}

/* Appends an entry whose strings are in src (copied into l's arena unless
 * src is l's own arena). Returns 0 when memory or the 4 GiB limit runs out. */
static int list_push(pl_list *l, const resi_pl_entry *e, const char *src) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    resi_pl_entry *p = realloc(l->e, cap * sizeof *p);
    if (p == NULL) return 0;
    l->e = p, l->cap = cap;
  }
  resi_pl_entry c = *e;
  if (src != l->arena.data) {
    size_t total = (size_t)e->host_len + e->user_len + e->pass_len;
    if (l->arena.len + total > UINT32_MAX || !resi_pl_buf_reserve(&l->arena, total)) return 0;
    c.host = (uint32_t)l->arena.len;
    resi_pl_buf_add(&l->arena, src + e->host, e->host_len);
    c.user = (uint32_t)l->arena.len;
    resi_pl_buf_add(&l->arena, src + e->user, e->user_len);
    c.pass = (uint32_t)l->arena.len;
    resi_pl_buf_add(&l->arena, src + e->pass, e->pass_len);
  }
  l->e[l->n++] = c;
  return 1;
}

/* Pushes entry e as a table {scheme, host, port, user, pass}. */
static void push_entry(lua_State *L, const char *arena, const resi_pl_entry *e) {
  lua_createtable(L, 0, 5); /* stack: t */
  lua_pushstring(L, resi_pl_scheme_names[e->scheme]);
  lua_setfield(L, -2, "scheme");
  lua_pushlstring(L, arena + e->host, e->host_len);
  lua_setfield(L, -2, "host");
  lua_pushinteger(L, e->port);
  lua_setfield(L, -2, "port");
  if (e->flags & RESI_PL_HAS_USER) {
    lua_pushlstring(L, arena + e->user, e->user_len);
    lua_setfield(L, -2, "user");
  }
  if (e->flags & RESI_PL_HAS_PASS) {
    lua_pushlstring(L, arena + e->pass, e->pass_len);
    lua_setfield(L, -2, "pass");
  }
}

static pl_list *check_list(lua_State *L, int i) { return luaL_checkudata(L, i, LIST_MT); }

/* Checks a format name argument. */
static int check_format(lua_State *L, int i, const char *def, int allow_auto) {
  const char *name = luaL_optstring(L, i, def);
  int f = resi_pl_format_id(name);
  if (f < 0 || (f == RESI_PL_AUTO && !allow_auto))
    luaL_error(L, "resi.proxylist: unknown format '%s' (expected %slist, userpass, url, json, hostport or proxychains)", name,
               allow_auto ? "auto, " : "");
  return f;
}

/* Checks a scheme name argument (nil = http). */
static int check_scheme(lua_State *L, int i) {
  size_t n;
  const char *s = luaL_optlstring(L, i, "http", &n);
  int id = resi_pl_scheme_id(s, n);
  if (id < 0)
    luaL_error(L, "resi.proxylist: unknown scheme '%s' (expected http, https, socks4, socks4a, socks5, socks5h)", s);
  return id;
}

/* #list */
static int list_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_list(L, 1)->n);
  return 1;
}

/* list[i] -> entry table; list.name -> method (upvalue 1) or list.errors. */
static int list_index(lua_State *L) {
  pl_list *l = check_list(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer i = lua_tointeger(L, 2);
    if (i < 1 || (size_t)i > l->n) return 0;
    push_entry(L, l->arena.data, &l->e[i - 1]); /* stack: entry */
    return 1;
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* stack: method */
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "errors") == 0) {
    lua_getiuservalue(L, 1, 1); /* stack: errors */
    return 1;
  }
  return 0;
}

/* Lists are read-only: list[i] = x is a mistake worth a clear error. */
static int list_newindex(lua_State *L) {
  return luaL_error(L, "resi.proxylist: a list is read-only (build a new one with map, filter or proxylist.from)");
}

/* tostring(list): a count, never credentials. */
static int list_tostring(lua_State *L) {
  pl_list *l = check_list(L, 1);
  lua_pushfstring(L, "resi.proxylist.list (%d entries)", (int)l->n);
  return 1;
}

/* Frees a list's memory. */
static int list_gc(lua_State *L) {
  pl_list *l = check_list(L, 1);
  resi_pl_buf_free(&l->arena);
  free(l->e);
  l->e = NULL;
  l->n = l->cap = 0;
  return 0;
}

/* list:format(fmt) -> text: one entry a line (json: an array, an object a
 * line). Raises naming the entry when the format cannot carry it. */
static int list_format(lua_State *L) {
  pl_list *l = check_list(L, 1);
  int fmt = check_format(L, 2, "list", 0);
  resi_pl_buf out = {0};
  char why[RESI_PL_REASON];
  int ok = 1;
  size_t bad = 0;
  if (fmt == RESI_PL_JSON) ok = resi_pl_buf_add(&out, l->n ? "[\n" : "[]\n", l->n ? 2 : 3);
  for (size_t i = 0; ok && i < l->n; i++) {
    if (resi_pl_format(&out, l->arena.data, &l->e[i], fmt, why)) {
      ok = 0, bad = i + 1;
      break;
    }
    if (fmt == RESI_PL_JSON && i + 1 < l->n) ok = resi_pl_buf_add(&out, ",\n", 2);
    else ok = resi_pl_buf_add(&out, "\n", 1);
  }
  if (ok && fmt == RESI_PL_JSON && l->n) ok = resi_pl_buf_add(&out, "]\n", 2);
  if (ok) lua_pushlstring(L, out.data ? out.data : "", out.len); /* stack: text */
  resi_pl_buf_free(&out);
  if (!ok && bad) {
    const resi_pl_entry *e = &l->e[bad - 1];
    int v6 = (e->flags & RESI_PL_IPV6) != 0;
    return luaL_error(L, "resi.proxylist: entry %d (%s%s%s:%d): %s", (int)bad, v6 ? "[" : "",
                      lua_pushlstring(L, l->arena.data + e->host, e->host_len), v6 ? "]" : "", (int)e->port, why);
  }
  if (!ok) return luaL_error(L, "resi.proxylist: out of memory");
  return 1;
}

/* list:line(i, fmt) -> text of one entry, or nil, reason. */
static int list_line(lua_State *L) {
  pl_list *l = check_list(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  int fmt = check_format(L, 3, "url", 0);
  luaL_argcheck(L, i >= 1 && (size_t)i <= l->n, 2, "no such entry");
  resi_pl_buf out = {0};
  char why[RESI_PL_REASON];
  if (resi_pl_format(&out, l->arena.data, &l->e[i - 1], fmt, why)) {
    resi_pl_buf_free(&out);
    lua_pushnil(L);
    lua_pushstring(L, why); /* stack: nil, why */
    return 2;
  }
  lua_pushlstring(L, out.data, out.len); /* stack: text */
  resi_pl_buf_free(&out);
  return 1;
}

/* Raises after a failed allocation while building list at the stack top. */
static int oom(lua_State *L) { return luaL_error(L, "resi.proxylist: out of memory"); }

/* core.pick(list, indices) -> a new list of those entries, in that order. */
static int list_pick(lua_State *L) {
  pl_list *l = check_list(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  pl_list *r = new_list(L); /* stack: list, idx, new */
  for (lua_Integer k = 1; k <= n; k++) {
    lua_Integer i = (lua_geti(L, 2, k), lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (i < 1 || (size_t)i > l->n) return luaL_error(L, "resi.proxylist: no entry %d", (int)i);
    if (!list_push(r, &l->e[i - 1], l->arena.data)) return oom(L);
  }
  return 1;
}

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
  return h;
}

/* Hash of an entry's normalised fields. */
static uint64_t entry_hash(const char *a, const resi_pl_entry *e) {
  uint64_t h = 14695981039346656037u;
  unsigned char head[4] = {e->scheme, (unsigned char)(e->flags & 3), (unsigned char)(e->port >> 8),
                           (unsigned char)e->port};
  h = fnv(h, (const char *)head, 4);
  h = fnv(h, a + e->host, e->host_len);
  h = fnv(h, a + e->user, e->user_len);
  return fnv(h ^ 0xff, a + e->pass, e->pass_len);
}

/* Are two entries the same proxy with the same credentials? */
static int entry_eq(const char *a, const resi_pl_entry *x, const resi_pl_entry *y) {
  return x->scheme == y->scheme && x->port == y->port && (x->flags & 3) == (y->flags & 3) &&
         x->host_len == y->host_len && x->user_len == y->user_len && x->pass_len == y->pass_len &&
         memcmp(a + x->host, a + y->host, x->host_len) == 0 && memcmp(a + x->user, a + y->user, x->user_len) == 0 &&
         memcmp(a + x->pass, a + y->pass, x->pass_len) == 0;
}

/* list:dedupe() -> a new list without repeats (first occurrence kept).
 * Entries are normalised when parsed (scheme and host lower case, http
 * for lines without a scheme), so "HTTP://H:1" and "h:1" are the same. */
static int list_dedupe(lua_State *L) {
  pl_list *l = check_list(L, 1);
  size_t size = 16;
  while (size < l->n * 2) size *= 2;
  uint32_t *slots = calloc(size, sizeof *slots); /* entry index + 1, 0 = empty */
  if (slots == NULL) return oom(L);
  pl_list *r = new_list(L); /* stack: list, new */
  for (size_t i = 0; i < l->n; i++) {
    const resi_pl_entry *e = &l->e[i];
    size_t s = (size_t)entry_hash(l->arena.data, e) & (size - 1);
    int dup = 0;
    while (slots[s]) {
      if (entry_eq(l->arena.data, &l->e[slots[s] - 1], e)) {
        dup = 1;
        break;
      }
      s = (s + 1) & (size - 1);
    }
    if (dup) continue;
    slots[s] = (uint32_t)(i + 1);
    if (!list_push(r, e, l->arena.data)) {
      free(slots);
      return oom(L);
    }
  }
  free(slots);
  return 1;
}

/* splitmix64: a small, well-mixed generator for shuffle and sample. */
static uint64_t next_random(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* A uniform integer in [0, n). */
static size_t below(uint64_t *s, size_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n, r;
  do r = next_random(s);
  while (r >= limit);
  return (size_t)(r % n);
}

/* The seed argument at i, or one from the kernel when it is nil. */
static uint64_t seed_arg(lua_State *L, int i) {
  if (!lua_isnoneornil(L, i)) return (uint64_t)luaL_checkinteger(L, i);
  uint64_t s;
  if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) s = (uint64_t)time(NULL) ^ (uint64_t)clock();
  return s;
}

/* core.sample(list, n, seed) -> a new list of min(n, #list) entries in random
 * order, each entry at most once (a partial Fisher-Yates shuffle);
 * n = #list gives list:shuffle(seed). */
static int list_sample(lua_State *L) {
  pl_list *l = check_list(L, 1);
  lua_Integer want = luaL_checkinteger(L, 2);
  uint64_t seed = seed_arg(L, 3);
  luaL_argcheck(L, want >= 0, 2, "must not be negative");
  size_t k = (size_t)want < l->n ? (size_t)want : l->n;
  uint32_t *order = malloc((l->n ? l->n : 1) * sizeof *order);
  if (order == NULL) return oom(L);
  for (size_t i = 0; i < l->n; i++) order[i] = (uint32_t)i;
  for (size_t i = 0; i < k; i++) {
    size_t j = i + below(&seed, l->n - i);
    uint32_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
  pl_list *r = new_list(L); /* stack: list, n, seed, new */
  for (size_t i = 0; i < k; i++)
    if (!list_push(r, &l->e[order[i]], l->arena.data)) {
      free(order);
      return oom(L);
    }
  free(order);
  return 1;
}

/* core.slice(list, i, j) -> a new list of entries i..j. */
static int list_slice(lua_State *L) {
  pl_list *l = check_list(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2), j = luaL_checkinteger(L, 3);
  if (i < 1) i = 1;
  if (j > (lua_Integer)l->n) j = (lua_Integer)l->n;
  pl_list *r = new_list(L); /* stack: list, i, j, new */
  for (lua_Integer k = i; k <= j; k++)
    if (!list_push(r, &l->e[k - 1], l->arena.data)) return oom(L);
  return 1;
}

/* Reads entry table t (at index t) into e with strings in arena; returns
 * 0 or -1 with why set. */
static int table_entry(lua_State *L, int t, resi_pl_buf *arena, resi_pl_entry *e, char *why) {
  memset(e, 0, sizeof *e);
  size_t n;
  const char *s;
  if (lua_getfield(L, t, "scheme") == LUA_TNIL) e->scheme = RESI_PL_HTTP;
  else {
    s = lua_tolstring(L, -1, &n);
    int id = s ? resi_pl_scheme_id(s, n) : -1;
    if (id < 0) {
      lua_pop(L, 1);
      snprintf(why, RESI_PL_REASON, "unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)");
      return -1;
    }
    e->scheme = (uint8_t)id;
  }
  lua_pop(L, 1);
  lua_getfield(L, t, "port");
  int isint;
  lua_Integer port = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (!isint || port < 1 || port > 65535) {
    snprintf(why, RESI_PL_REASON, "port must be an integer 1-65535");
    return -1;
  }
  e->port = (uint16_t)port;
  if (lua_getfield(L, t, "host") != LUA_TSTRING) {
    lua_pop(L, 1);
    snprintf(why, RESI_PL_REASON, "host must be a string");
    return -1;
  }
  s = lua_tolstring(L, -1, &n);
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']') s++, n -= 2;
  int rc = resi_pl_set_host(s, n, 1, arena, e, why);
  lua_pop(L, 1);
  if (rc) return -1;
  static const char *const keys[2] = {"user", "pass"};
  for (int k = 0; k < 2; k++) {
    int type = lua_getfield(L, t, keys[k]);
    if (type == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    s = lua_tolstring(L, -1, &n);
    if (type != LUA_TSTRING || (k == 0 && n == 0) || memchr(s, '\0', n) || arena->len + n > UINT32_MAX) {
      lua_pop(L, 1);
      snprintf(why, RESI_PL_REASON, k == 0 ? "user must be a non-empty string" : "pass must be a string");
      return -1;
    }
    uint32_t off = (uint32_t)arena->len;
    if (!resi_pl_buf_add(arena, s, n)) {
      lua_pop(L, 1);
      snprintf(why, RESI_PL_REASON, "out of memory");
      return -1;
    }
    lua_pop(L, 1);
    if (k == 0) e->user = off, e->user_len = (uint32_t)n, e->flags |= RESI_PL_HAS_USER;
    else e->pass = off, e->pass_len = (uint32_t)n, e->flags |= RESI_PL_HAS_PASS;
  }
  if ((e->flags & RESI_PL_HAS_PASS) && !(e->flags & RESI_PL_HAS_USER)) {
    snprintf(why, RESI_PL_REASON, "pass without user");
    return -1;
  }
  return 0;
}

/* core.from(entries) -> list: entry tables checked like parsed lines. */
static int list_from(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  pl_list *r = new_list(L); /* stack: entries, new */
  char why[RESI_PL_REASON];
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 1, i) != LUA_TTABLE) /* stack: entries, new, t */
      return luaL_error(L, "resi.proxylist: entry %d is a %s, not a table", (int)i, luaL_typename(L, -1));
    resi_pl_entry e;
    if (table_entry(L, lua_gettop(L), &r->arena, &e, why))
      return luaL_error(L, "resi.proxylist: entry %d: %s", (int)i, why);
    if (!list_push(r, &e, r->arena.data)) return oom(L);
    lua_pop(L, 1); /* stack: entries, new */
  }
  return 1;
}

/* ---- readers: text in chunks -> a list, or -> text in another format ---- */

typedef struct {
  int from, to;           /* formats; to < 0: build a list */
  int scheme;             /* for entries without one */
  int decided;            /* AUTO resolved to json or text */
  int json_in;
  int done;               /* finish() was called */
  long count;             /* entries produced */
  resi_pl_lines lines;
  resi_pl_json json;
  resi_pl_buf pending;    /* JSON text not consumed yet */
  resi_pl_buf scratch;    /* arena for one line when converting */
  resi_pl_buf out;        /* converted text of the current chunk */
  char *inbuf;            /* reader:pump's input buffer */
  pl_list *list;          /* when building (anchored in user value 1) */
  lua_State *L;           /* set while feeding */
  int errs;               /* stack index of the errors table while feeding */
  int failed;             /* memory ran out */
  int broken;             /* a JSON syntax error was reported for this input */
} pl_reader;

/* Adds {line=, text=, reason=} to the errors table; text is the line (or
 * JSON object) with its credentials masked (resi_pl_mask). */
static void add_error(pl_reader *r, long line, const char *text, size_t len, const char *why) {
  lua_State *L = r->L;
  lua_createtable(L, 0, 3); /* stack: .., err */
  lua_pushinteger(L, line);
  lua_setfield(L, -2, "line");
  char masked[3 * ERR_TEXT + 2]; /* the line may hold a password: credentials never leave as text */
  lua_pushlstring(L, masked, resi_pl_mask(text, len > ERR_TEXT ? ERR_TEXT : len, masked, sizeof masked));
  lua_setfield(L, -2, "text");
  lua_pushstring(L, why);
  lua_setfield(L, -2, "reason");
  lua_rawseti(L, r->errs, (lua_Integer)luaL_len(L, r->errs) + 1); /* stack: .. */
}

/* Formats one parsed entry into the output (a reader that converts). */
static int take(pl_reader *r, const resi_pl_entry *e, const char *arena, long line, const char *text, size_t len) {
  char why[RESI_PL_REASON];
  size_t mark = r->out.len;
  if (r->to == RESI_PL_JSON && !resi_pl_buf_add(&r->out, r->count ? ",\n" : "[\n", 2)) return r->failed = 1;
  if (resi_pl_format(&r->out, arena, e, r->to, why)) {
    r->out.len = mark;
    add_error(r, line, text, len, why);
    return 0;
  }
  if (r->to != RESI_PL_JSON && !resi_pl_buf_add(&r->out, "\n", 1)) return r->failed = 1;
  r->count++;
  return 0;
}

/* Line callback: parses one line of text. */
static int on_line(void *ud, const char *s, size_t n, long line) {
  pl_reader *r = ud;
  char why[RESI_PL_REASON];
  resi_pl_entry e;
  resi_pl_buf *arena = r->to < 0 ? &r->list->arena : &r->scratch;
  if (r->to >= 0) r->scratch.len = 0;
  int rc = resi_pl_parse_line(s, n, r->from == RESI_PL_AUTO ? RESI_PL_AUTO : r->from, r->scheme, arena, &e, why);
  if (rc < 0) {
    add_error(r, line, s, n, why);
    return 0;
  }
  if (rc == 0) return 0;
  if (r->to < 0) { /* the strings are already in the list's arena */
    if (!list_push(r->list, &e, arena->data)) return r->failed = 1;
    r->count++;
    return 0;
  }
  return take(r, &e, arena->data, line, s, n);
}

/* JSON callback: one object read (or rejected). */
static int on_object(void *ud, const resi_pl_entry *e, long line, const char *why, const char *text, size_t len) {
  pl_reader *r = ud;
  if (why) {
    add_error(r, line, text, len, why);
    return 0;
  }
  resi_pl_buf *arena = r->to < 0 ? &r->list->arena : &r->scratch;
  if (r->to < 0) {
    if (!list_push(r->list, e, arena->data)) return r->failed = 1;
    r->count++;
    return 0;
  }
  int rc = take(r, e, arena->data, line, text, len);
  r->scratch.len = 0;
  return rc;
}

/* Decides, for format auto, whether the input is a JSON document: its first
 * non-blank byte is '{', or '[' followed by '{' or ']'. */
static void decide(pl_reader *r, const char *s, size_t n) {
  if (r->decided) return;
  size_t i = 0;
  if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
  if (i == n) return; /* nothing to go by yet */
  r->decided = 1;
  if (s[i] == '{') r->json_in = 1;
  if (s[i] == '[') {
    size_t j = i + 1;
    while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n')) j++;
    r->json_in = j == n || s[j] == '{' || s[j] == ']';
  }
}

static pl_reader *check_reader(lua_State *L) { return luaL_checkudata(L, 1, READER_MT); }

/* Feeds JSON text: what the reader does not consume waits in pending. */
static int feed_json(pl_reader *r, const char *s, size_t n, int final, char *why, long *err_line) {
  if (r->pending.len == 0 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 && r->json.state == 0 &&
      r->json.line == 1)
    s += 3, n -= 3;
  const char *text = s;
  size_t len = n;
  if (r->pending.len) {
    if (!resi_pl_buf_add(&r->pending, s, n)) return r->failed = 1, -1;
    text = r->pending.data, len = r->pending.len;
  }
  long used = resi_pl_json_feed(&r->json, text, len, final, r->to < 0 ? &r->list->arena : &r->scratch, on_object, r,
                                why, err_line);
  if (used < 0) return -1;
  size_t rest = len - (size_t)used;
  if (rest > MAX_PENDING) {
    snprintf(why, RESI_PL_REASON, "JSON: a value larger than %d MiB", MAX_PENDING >> 20);
    *err_line = r->json.line;
    return -1;
  }
  if (r->pending.len) {
    memmove(r->pending.data, r->pending.data + used, rest);
    r->pending.len = rest;
  } else if (rest && !resi_pl_buf_add(&r->pending, text + used, rest)) {
    return r->failed = 1, -1;
  }
  return 0;
}

/* Runs one chunk through the reader; the errors table is on the stack top. */
static void feed(lua_State *L, pl_reader *r, const char *s, size_t n, int final) {
  if (r->done) luaL_error(L, "resi.proxylist: the reader is finished");
  r->L = L, r->errs = lua_gettop(L);
  if (r->broken) return;
  if (r->from == RESI_PL_AUTO) decide(r, s, n);
  if (final && r->from == RESI_PL_AUTO && !r->decided) r->decided = 1;
  if (r->json_in || r->from == RESI_PL_JSON) {
    char why[RESI_PL_REASON];
    long line = 0;
    if (feed_json(r, s, n, final, why, &line) && !r->failed) {
      add_error(r, line, "", 0, why);
      r->broken = 1; /* a syntax error ends the document: the rest is ignored */
    }
  } else if (r->decided || r->from != RESI_PL_AUTO) {
    if (r->pending.len) { /* blank text held back while auto was undecided */
      resi_pl_buf held = r->pending;
      r->pending = (resi_pl_buf){0};
      int rc = resi_pl_lines_feed(&r->lines, held.data, held.len, 0, on_line, r);
      resi_pl_buf_free(&held);
      if (rc) r->failed = 1;
    }
    if (!r->failed && resi_pl_lines_feed(&r->lines, s, n, final, on_line, r)) r->failed = 1;
  } else if (!resi_pl_buf_add(&r->pending, s, n)) {
    r->failed = 1;
  }
  if (r->failed) luaL_error(L, "resi.proxylist: out of memory");
}

/* Pushes the table rejected lines go to: the list's own errors when
 * building, a fresh table per call when converting. */
static void push_errors(lua_State *L, pl_reader *r) {
  if (r->to >= 0) {
    lua_newtable(L); /* stack: .., errors */
    return;
  }
  lua_getiuservalue(L, 1, 1);  /* stack: .., list */
  lua_getiuservalue(L, -1, 1); /* stack: .., list, errors */
  lua_remove(L, -2);           /* stack: .., errors */
}

/* reader:feed(chunk) -> out, errors: converting, the text for this chunk
 * and the lines it rejected (nil when none); building, nothing. */
static int reader_feed(lua_State *L) {
  pl_reader *r = check_reader(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_settop(L, 2);
  push_errors(L, r); /* stack: reader, chunk, errors */
  r->out.len = 0;
  feed(L, r, s, n, 0);
  if (r->to < 0) return 0;
  lua_pushlstring(L, r->out.data ? r->out.data : "", r->out.len); /* stack: reader, chunk, errors, out */
  lua_insert(L, 3); /* stack: reader, chunk, out, errors */
  if (luaL_len(L, 4) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 2;
}

/* reader:finish() -> out, errors, count when converting (errors of the last
 * bytes, or nil); list, list.errors, count when building. */
static int reader_finish(lua_State *L) {
  pl_reader *r = check_reader(L);
  lua_settop(L, 1);
  push_errors(L, r); /* stack: reader, errors */
  r->out.len = 0;
  if (!r->done) {
    feed(L, r, "", 0, 1);
    if (r->to == RESI_PL_JSON && !resi_pl_buf_add(&r->out, r->count ? "\n]\n" : "[]\n", 3)) return oom(L);
    r->done = 1;
  }
  if (r->to >= 0) lua_pushlstring(L, r->out.data ? r->out.data : "", r->out.len); /* stack: .., out */
  else lua_getiuservalue(L, 1, 1); /* stack: reader, errors, list */
  lua_insert(L, 2); /* stack: reader, out|list, errors */
  if (r->to >= 0 && luaL_len(L, 3) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  lua_pushinteger(L, r->count); /* stack: reader, out|list, errors, count */
  return 3;
}

/* reader:next_input() -> out, errors: ends the current input (its last
 * line, or the end of its JSON document) and starts the next one at line 1,
 * in the same output (one JSON array across files). */
static int reader_next_input(lua_State *L) {
  pl_reader *r = check_reader(L);
  lua_settop(L, 1);
  push_errors(L, r); /* stack: reader, errors */
  r->out.len = 0;
  if (!r->done) feed(L, r, "", 0, 1);
  resi_pl_buf_free(&r->lines.carry);
  memset(&r->lines, 0, sizeof r->lines);
  r->pending.len = 0;
  resi_pl_json_init(&r->json, r->scheme);
  r->decided = r->from != RESI_PL_AUTO;
  r->json_in = 0;
  r->done = r->broken = 0;
  if (r->to < 0) return 0;
  lua_pushlstring(L, r->out.data ? r->out.data : "", r->out.len); /* stack: reader, errors, out */
  lua_insert(L, 2); /* stack: reader, out, errors */
  if (luaL_len(L, 3) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 2;
}

/* reader:pump(infile, outfile) -> more, errors: converts the next chunk of
 * infile straight into outfile (Lua file handles), without making Lua
 * strings of either; more is false at the end of infile. */
static int reader_pump(lua_State *L) {
  pl_reader *r = check_reader(L);
  luaL_Stream *in = luaL_checkudata(L, 2, LUA_FILEHANDLE);
  luaL_Stream *out = luaL_checkudata(L, 3, LUA_FILEHANDLE);
  if (in->closef == NULL || out->closef == NULL) return luaL_error(L, "resi.proxylist: pump on a closed file");
  if (r->to < 0) return luaL_error(L, "resi.proxylist: pump needs a converting reader");
  if (r->inbuf == NULL && (r->inbuf = malloc(PUMP_CHUNK)) == NULL) return oom(L);
  size_t n = fread(r->inbuf, 1, PUMP_CHUNK, in->f);
  if (n == 0 && ferror(in->f)) return luaL_error(L, "resi.proxylist: read error: %s", strerror(errno));
  lua_settop(L, 3);
  push_errors(L, r); /* stack: reader, in, out, errors */
  r->out.len = 0;
  if (n > 0) feed(L, r, r->inbuf, n, 0);
  if (r->out.len && fwrite(r->out.data, 1, r->out.len, out->f) != r->out.len)
    return luaL_error(L, "resi.proxylist: write error: %s", strerror(errno));
  lua_pushboolean(L, n > 0); /* stack: reader, in, out, errors, more */
  lua_insert(L, 4);          /* stack: reader, in, out, more, errors */
  if (luaL_len(L, 5) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 2;
}

/* Frees a reader's buffers. */
static int reader_gc(lua_State *L) {
  pl_reader *r = check_reader(L);
  resi_pl_buf_free(&r->lines.carry);
  resi_pl_buf_free(&r->pending);
  resi_pl_buf_free(&r->scratch);
  resi_pl_buf_free(&r->out);
  free(r->inbuf);
  r->inbuf = NULL;
  return 0;
}

/* core.reader(from, scheme, to) -> reader: to nil builds a list. */
static int new_reader(lua_State *L) {
  int from = check_format(L, 1, "auto", 1);
  int scheme = check_scheme(L, 2);
  int to = lua_isnoneornil(L, 3) ? -1 : check_format(L, 3, "list", 0);
  pl_reader *r = lua_newuserdatauv(L, sizeof *r, 1); /* stack: .., reader */
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  r->from = from, r->to = to, r->scheme = scheme;
  r->decided = from != RESI_PL_AUTO;
  resi_pl_json_init(&r->json, scheme);
  if (to < 0) {
    r->list = new_list(L); /* stack: .., reader, list */
    lua_setiuservalue(L, -2, 1);
  }
  return 1;
}

/* core.random_bytes(n) -> n bytes from the kernel's generator. */
static int random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 65536, 1, "must be 0..65536");
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  size_t got = 0;
  while (got < (size_t)n) {
    ssize_t k = getrandom(p + got, (size_t)n - got, 0);
    if (k <= 0) return luaL_error(L, "resi.proxylist: getrandom failed");
    got += (size_t)k;
  }
  luaL_pushresultsize(&b, (size_t)n); /* stack: bytes */
  return 1;
}

int luaopen_resi_proxylist_core(lua_State *L) {
  static const luaL_Reg list_methods[] = {
      {"format", list_format}, {"line", list_line}, {"dedupe", list_dedupe}, {NULL, NULL}};
  static const luaL_Reg reader_methods[] = {{"feed", reader_feed}, {"finish", reader_finish}, {"next_input", reader_next_input}, {"pump", reader_pump}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"reader", new_reader}, {"pick", list_pick},         {"sample", list_sample},
                                   {"slice", list_slice},  {"from", list_from},         {"random_bytes", random_bytes},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs); /* stack: core */
  lua_newtable(L);       /* stack: core, methods */
  luaL_setfuncs(L, list_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "methods"); /* core.methods: the Lua module adds to it */
  luaL_newmetatable(L, LIST_MT);  /* stack: core, methods, mt */
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, list_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, list_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, list_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, list_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, list_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 2); /* stack: core */
  luaL_newmetatable(L, READER_MT); /* stack: core, mt */
  lua_newtable(L);
  luaL_setfuncs(L, reader_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, reader_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1); /* stack: core */
  return 1;
}
