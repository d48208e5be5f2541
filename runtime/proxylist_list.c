/* proxylist_list.c: the list class of resi.proxylist_core
 * (resi.proxylist.list), and the functions that build new lists from one
 * (pick, sample, slice) or from entry tables (from).
 *
 * A list is a read-only userdata holding one string arena and an array of
 * fixed-size entries; list[i] builds the entry's table when it is asked
 * for, and list.errors is its user value. resi.proxylist (Lua) adds the
 * methods written in Lua to core.methods. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include "proxylist.h"

#define LIST_MT "resi.proxylist.list"

/* ---- the list ---------------------------------------------------------- */

/* Pushes a new empty list with an empty errors table as its user value. */
resi_pl_list *resi_pl_list_new(lua_State *L) {
  resi_pl_list *l = lua_newuserdatauv(L, sizeof *l, 1); /* stack: list */
  memset(l, 0, sizeof *l);
  luaL_setmetatable(L, LIST_MT);
  lua_newtable(L);             /* stack: list, errors */
  lua_setiuservalue(L, -2, 1); /* stack: list */
  return l;
}

/* Pushes the errors table of the list at idx. */
void resi_pl_list_errors(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 1); /* stack: .., errors */
}

/* Asks for the 2 MiB-aligned part of [p, p + n) (a list's arena or
 * entries, 4 MiB or more) to be backed by transparent huge pages, which
 * the kernel's "madvise" THP mode gives only to regions that ask: a list
 * fills them from start to end, so a fault maps and zeroes 2 MiB at once
 * instead of 4 KiB (load + save of the 250,000-line bench list: 3 ms less
 * system time, 4 ms less in all). RSS grows by at most one part-filled
 * huge page per region. */
void resi_pl_huge_pages(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
  uintptr_t page = (uintptr_t)2 << 20;
  uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1), end = ((uintptr_t)p + n) & ~(page - 1);
  if (n >= 2 * page && end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
  (void)p, (void)n;
#endif
}

/* Makes room for cap entries in all (a hint: nothing happens when memory
 * is short). 4 MiB or more are taken in whole 2 MiB pieces, 2 MiB-aligned,
 * so that all of them are huge pages. */
void resi_pl_list_reserve(resi_pl_list *l, size_t cap) {
  const size_t huge = (size_t)2 << 20;
  if (cap <= l->cap) return;
  size_t bytes = cap * sizeof *l->e;
  resi_pl_entry *p = NULL;
  if (bytes >= 2 * huge && bytes < SIZE_MAX - huge) {
    bytes = (bytes + huge - 1) & ~(huge - 1);
    if ((p = aligned_alloc(huge, bytes)) != NULL) {
      if (l->n) memcpy(p, l->e, l->n * sizeof *p);
      free(l->e);
      l->e = p, l->cap = bytes / sizeof *p;
      resi_pl_huge_pages(p, bytes);
      return;
    }
  }
  if ((p = realloc(l->e, cap * sizeof *p)) != NULL) l->e = p, l->cap = cap;
}

/* Appends an entry whose strings are in src (copied into l's arena unless
 * src is l's own arena). Returns 0 when memory or the 4 GiB limit runs out. */
int resi_pl_list_push(resi_pl_list *l, const resi_pl_entry *e, const char *src) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    resi_pl_entry *p = realloc(l->e, cap * sizeof *p);
    if (p == NULL) return 0;
    l->e = p, l->cap = cap;
  }
  resi_pl_entry c = *e;
  if (src != l->arena.data) {
    size_t total = (size_t)e->host_len + e->user_len + e->pass_len;
    if (l->arena.len + total > UINT32_MAX || !resi_buf_reserve(&l->arena, total)) return 0;
    c.host = (uint32_t)l->arena.len;
    resi_buf_add(&l->arena, src + e->host, e->host_len);
    c.user = (uint32_t)l->arena.len;
    resi_buf_add(&l->arena, src + e->user, e->user_len);
    c.pass = (uint32_t)l->arena.len;
    resi_buf_add(&l->arena, src + e->pass, e->pass_len);
  }
  l->e[l->n++] = c;
  return 1;
}

/* Appends l's entry i to r; when memory runs out, frees scratch (the
 * caller's working memory, may be NULL) and raises. */
static void copy_entry(lua_State *L, resi_pl_list *r, const resi_pl_list *l, size_t i, void *scratch) {
  if (resi_pl_list_push(r, &l->e[i], l->arena.data)) return;
  free(scratch);
  resi_pl_oom(L);
}

/* Pushes entry e as a table {scheme, host, port, user, pass}. */
void resi_pl_push_entry(lua_State *L, const char *arena, const resi_pl_entry *e) {
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

/* The list argument at i. */
resi_pl_list *resi_pl_check_list(lua_State *L, int i) { return luaL_checkudata(L, i, LIST_MT); }

/* #list */
static int list_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)resi_pl_check_list(L, 1)->n);
  return 1;
}

/* list[i] -> entry table; list.name -> method (upvalue 1) or list.errors. */
static int list_index(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer i = lua_tointeger(L, 2);
    if (i < 1 || (size_t)i > l->n) return 0;
    resi_pl_push_entry(L, l->arena.data, &l->e[i - 1]); /* stack: list, i, entry */
    return 1;
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* stack: list, name, method */
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "errors") == 0) {
    resi_pl_list_errors(L, 1); /* stack: list, name, nil, errors */
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
  resi_pl_list *l = resi_pl_check_list(L, 1);
  lua_pushfstring(L, "resi.proxylist.list (%d entries)", (int)l->n); /* stack: list, text */
  return 1;
}

/* Frees a list's memory. */
static int list_gc(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  resi_buf_free(&l->arena);
  free(l->e);
  l->e = NULL;
  l->n = l->cap = 0;
  return 0;
}

/* ---- writing a list as text ---------------------------------------------- */

/* Bytes list:format(fmt, file) formats before each write. */
#define FORMAT_BATCH (256 * 1024)

/* Writes out's bytes to f (when not NULL) and empties out; returns 0, or
 * -2 with why set. */
static long flush_to(resi_buf *out, FILE *f, char *why) {
  if (f == NULL) return 0;
  if (out->len && fwrite(out->data, 1, out->len, f) != out->len) {
    snprintf(why, RESI_PL_REASON, "%s", strerror(errno));
    return -2;
  }
  out->len = 0;
  return 0;
}

/* Writes every entry of l to out in fmt, one a line (json: an array, an
 * object a line); with f, out is scratch written to f every FORMAT_BATCH
 * bytes. Returns 0; the number (from 1) of the first entry that fmt cannot
 * carry, with why set; -1 when memory ran out; -2 (why set) when a write
 * failed. */
static long format_all(const resi_pl_list *l, int fmt, resi_buf *out, FILE *f, char *why) {
  int json = fmt == RESI_PL_JSON;
  if (json && !resi_buf_add(out, l->n ? "[\n" : "[]\n", l->n ? 2 : 3)) return -1;
  for (size_t i = 0; i < l->n; i++) {
    if (resi_pl_format(out, l->arena.data, &l->e[i], fmt, why)) return (long)(i + 1);
    int ok = json && i + 1 < l->n ? resi_buf_add(out, ",\n", 2) : resi_buf_add(out, "\n", 1);
    if (!ok) return -1;
    if (out->len >= FORMAT_BATCH && flush_to(out, f, why)) return -2;
  }
  if (json && l->n && !resi_buf_add(out, "]\n", 2)) return -1;
  return flush_to(out, f, why);
}

/* Raises naming entry i (from 1) by its host and port, never its
 * credentials, and why the format cannot carry it. */
static int entry_error(lua_State *L, const resi_pl_list *l, size_t i, const char *why) {
  const resi_pl_entry *e = &l->e[i - 1];
  int v6 = (e->flags & RESI_PL_IPV6) != 0;
  return luaL_error(L, "resi.proxylist: entry %d (%s%s%s:%d): %s", (int)i, v6 ? "[" : "",
                    lua_pushlstring(L, l->arena.data + e->host, e->host_len), v6 ? "]" : "", (int)e->port, why);
}

/* list:format(fmt) -> text: one entry a line (json: an array, an object a
 * line). list:format(fmt, file) writes the same text to a Lua file handle
 * in FORMAT_BATCH pieces instead (no string of the whole) and returns true.
 * Raises naming the entry when the format cannot carry it (a file then
 * holds the entries before it), or on a write error. */
static int list_format(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  int fmt = resi_pl_check_format(L, 2, "list", 0);
  luaL_Stream *file = lua_isnoneornil(L, 3) ? NULL : luaL_checkudata(L, 3, LUA_FILEHANDLE);
  if (file && file->closef == NULL) return luaL_error(L, "resi.proxylist: format to a closed file");
  resi_buf out = {0};
  char why[RESI_PL_REASON];
  long bad = format_all(l, fmt, &out, file ? file->f : NULL, why);
  if (bad == 0 && !file) lua_pushlstring(L, out.data ? out.data : "", out.len); /* stack: list, fmt, text */
  resi_buf_free(&out);
  if (bad > 0) return entry_error(L, l, (size_t)bad, why);
  if (bad == -2) return luaL_error(L, "resi.proxylist: write error: %s", why);
  if (bad < 0) return resi_pl_oom(L);
  if (file) lua_pushboolean(L, 1); /* stack: list, fmt, file, true */
  return 1;
}

/* list:line(i, fmt) -> text of one entry, or nil, reason. */
static int list_line(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  int fmt = resi_pl_check_format(L, 3, "url", 0);
  luaL_argcheck(L, i >= 1 && (size_t)i <= l->n, 2, "no such entry");
  resi_buf out = {0};
  char why[RESI_PL_REASON];
  if (resi_pl_format(&out, l->arena.data, &l->e[i - 1], fmt, why)) {
    resi_buf_free(&out);
    lua_pushnil(L);
    lua_pushstring(L, why); /* stack: list, i, [fmt,] nil, why */
    return 2;
  }
  lua_pushlstring(L, out.data, out.len); /* stack: list, i, [fmt,] text */
  resi_buf_free(&out);
  return 1;
}

/* ---- dedupe ------------------------------------------------------------ */

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

/* Has an entry equal to l's entry i been kept already? slots (size a power
 * of two, open addressing) holds kept entry indexes + 1, 0 = empty; when
 * not, i is recorded there. */
static int seen(uint32_t *slots, size_t size, const resi_pl_list *l, size_t i) {
  const resi_pl_entry *e = &l->e[i];
  size_t s = (size_t)entry_hash(l->arena.data, e) & (size - 1);
  for (; slots[s]; s = (s + 1) & (size - 1))
    if (entry_eq(l->arena.data, &l->e[slots[s] - 1], e)) return 1;
  slots[s] = (uint32_t)(i + 1);
  return 0;
}

/* list:dedupe() -> a new list without repeats (first occurrence kept).
 * Entries are normalised when parsed (scheme and host lower case, http
 * for lines without a scheme), so "HTTP://H:1" and "h:1" are the same. */
static int list_dedupe(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  size_t size = 16;
  while (size < l->n * 2) size *= 2;
  uint32_t *slots = calloc(size, sizeof *slots);
  if (slots == NULL) return resi_pl_oom(L);
  resi_pl_list *r = resi_pl_list_new(L); /* stack: list, new */
  for (size_t i = 0; i < l->n; i++)
    if (!seen(slots, size, l, i)) copy_entry(L, r, l, i, slots);
  free(slots);
  return 1;
}

/* ---- pick, sample, slice: new lists of some entries ------------------------ */

/* core.pick(list, indices) -> a new list of those entries, in that order. */
static int list_pick(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  resi_pl_list *r = resi_pl_list_new(L); /* stack: list, idx, new */
  for (lua_Integer k = 1; k <= n; k++) {
    lua_Integer i = (lua_geti(L, 2, k), lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (i < 1 || (size_t)i > l->n) return luaL_error(L, "resi.proxylist: no entry %d", (int)i);
    copy_entry(L, r, l, (size_t)i - 1, NULL);
  }
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
  if (!resi_random_bytes(&s, sizeof s)) s = (uint64_t)time(NULL) ^ (uint64_t)clock();
  return s;
}

/* The first k of n indexes in random order, each at most once (a partial
 * Fisher-Yates shuffle of 0..n-1); NULL when memory runs out. */
static uint32_t *random_order(size_t n, size_t k, uint64_t *seed) {
  uint32_t *order = malloc((n ? n : 1) * sizeof *order);
  if (order == NULL) return NULL;
  for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
  for (size_t i = 0; i < k; i++) {
    size_t j = i + below(seed, n - i);
    uint32_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
  return order;
}

/* core.sample(list, n, seed) -> a new list of min(n, #list) entries in random
 * order, each entry at most once; n = #list gives list:shuffle(seed). */
static int list_sample(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  lua_Integer want = luaL_checkinteger(L, 2);
  uint64_t seed = seed_arg(L, 3);
  luaL_argcheck(L, want >= 0, 2, "must not be negative");
  size_t k = (size_t)want < l->n ? (size_t)want : l->n;
  uint32_t *order = random_order(l->n, k, &seed);
  if (order == NULL) return resi_pl_oom(L);
  resi_pl_list *r = resi_pl_list_new(L); /* stack: list, n, seed, new */
  for (size_t i = 0; i < k; i++) copy_entry(L, r, l, order[i], order);
  free(order);
  return 1;
}

/* core.slice(list, i, j) -> a new list of entries i..j. */
static int list_slice(lua_State *L) {
  resi_pl_list *l = resi_pl_check_list(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2), j = luaL_checkinteger(L, 3);
  if (i < 1) i = 1;
  if (j > (lua_Integer)l->n) j = (lua_Integer)l->n;
  resi_pl_list *r = resi_pl_list_new(L); /* stack: list, i, j, new */
  for (lua_Integer k = i; k <= j; k++) copy_entry(L, r, l, (size_t)k - 1, NULL);
  return 1;
}

/* ---- from: entry tables -> a list ---------------------------------------- */

/* Reads t.scheme into e (nil: http); returns 0, or -1 with why set. */
static int table_scheme(lua_State *L, int t, resi_pl_entry *e, char *why) {
  int id = RESI_PL_HTTP;
  if (lua_getfield(L, t, "scheme") != LUA_TNIL) { /* stack: .., scheme */
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    id = s ? resi_pl_scheme_id(s, n) : -1;
  }
  lua_pop(L, 1); /* stack: .. */
  if (id < 0) {
    snprintf(why, RESI_PL_REASON, "unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)");
    return -1;
  }
  e->scheme = (uint8_t)id;
  return 0;
}

/* Reads t.port into e; returns 0, or -1 with why set. */
static int table_port(lua_State *L, int t, resi_pl_entry *e, char *why) {
  int isint;
  lua_getfield(L, t, "port"); /* stack: .., port */
  lua_Integer port = lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1); /* stack: .. */
  if (!isint || port < 1 || port > 65535) {
    snprintf(why, RESI_PL_REASON, "port must be an integer 1-65535");
    return -1;
  }
  e->port = (uint16_t)port;
  return 0;
}

/* Reads t.host (IPv6 with or without brackets) into e, checked as a parsed
 * line's host and appended to arena; returns 0, or -1 with why set. */
static int table_host(lua_State *L, int t, resi_buf *arena, resi_pl_entry *e, char *why) {
  if (lua_getfield(L, t, "host") != LUA_TSTRING) { /* stack: .., host */
    lua_pop(L, 1);
    snprintf(why, RESI_PL_REASON, "host must be a string");
    return -1;
  }
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']') s++, n -= 2;
  int rc = resi_pl_set_host(s, n, 1, arena, e, why);
  lua_pop(L, 1); /* stack: .. */
  return rc ? -1 : 0;
}

/* Reads t.user (pass: 0) or t.pass (1), when present, into e with its
 * bytes appended to arena; returns 0, or -1 with why set. */
static int table_credential(lua_State *L, int t, int pass, resi_buf *arena, resi_pl_entry *e, char *why) {
  int type = lua_getfield(L, t, pass ? "pass" : "user"); /* stack: .., value */
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (type != LUA_TSTRING || (!pass && n == 0) || memchr(s, '\0', n) || arena->len + n > UINT32_MAX) {
    lua_pop(L, 1);
    snprintf(why, RESI_PL_REASON, pass ? "pass must be a string" : "user must be a non-empty string");
    return -1;
  }
  uint32_t off = (uint32_t)arena->len;
  int ok = resi_buf_add(arena, s, n);
  lua_pop(L, 1); /* stack: .. */
  if (!ok) {
    snprintf(why, RESI_PL_REASON, "out of memory");
    return -1;
  }
  if (!pass) e->user = off, e->user_len = (uint32_t)n, e->flags |= RESI_PL_HAS_USER;
  else e->pass = off, e->pass_len = (uint32_t)n, e->flags |= RESI_PL_HAS_PASS;
  return 0;
}

/* Reads entry table t (at index t) into e with strings in arena; returns
 * 0 or -1 with why set. */
static int table_entry(lua_State *L, int t, resi_buf *arena, resi_pl_entry *e, char *why) {
  memset(e, 0, sizeof *e);
  if (table_scheme(L, t, e, why) || table_port(L, t, e, why) || table_host(L, t, arena, e, why) ||
      table_credential(L, t, 0, arena, e, why) || table_credential(L, t, 1, arena, e, why))
    return -1;
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
  resi_pl_list *r = resi_pl_list_new(L); /* stack: entries, new */
  char why[RESI_PL_REASON];
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, 1, i) != LUA_TTABLE) /* stack: entries, new, t */
      return luaL_error(L, "resi.proxylist: entry %d is a %s, not a table", (int)i, luaL_typename(L, -1));
    resi_pl_entry e;
    if (table_entry(L, lua_gettop(L), &r->arena, &e, why))
      return luaL_error(L, "resi.proxylist: entry %d: %s", (int)i, why);
    if (!resi_pl_list_push(r, &e, r->arena.data)) return resi_pl_oom(L);
    lua_pop(L, 1); /* stack: entries, new */
  }
  return 1;
}

/* ---- the class ------------------------------------------------------------ */

/* Registers resi.proxylist.list, whose __index is a closure over the
 * methods table (entries by number, methods and errors by name), and adds
 * the list functions and core.methods to the core table on the top. */
void resi_pl_list_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"format", list_format}, {"line", list_line}, {"dedupe", list_dedupe}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__newindex", list_newindex}, {"__len", list_len}, {"__tostring", list_tostring},
                                  {"__gc", list_gc},             {NULL, NULL}};
  static const luaL_Reg funcs[] = {
      {"pick", list_pick}, {"sample", list_sample}, {"slice", list_slice}, {"from", list_from}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);            /* stack: core */
  resi_new_class(L, LIST_MT, NULL, meta); /* stack: core */
  luaL_newlib(L, methods);               /* stack: core, methods */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "methods"); /* core.methods: the Lua module adds to it */
  luaL_getmetatable(L, LIST_MT);  /* stack: core, methods, mt */
  lua_insert(L, -2);              /* stack: core, mt, methods */
  lua_pushcclosure(L, list_index, 1);
  lua_setfield(L, -2, "__index"); /* stack: core, mt */
  lua_pop(L, 1);                  /* stack: core */
}
