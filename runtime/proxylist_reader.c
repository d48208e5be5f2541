/* proxylist_reader.c: the reader class of resi.proxylist_core
 * (resi.proxylist.reader): text in chunks -> a list, or -> text in another
 * format.
 *
 * A reader takes text chunk by chunk (feed, or pump between two files),
 * splits it into lines or JSON objects and either builds a list (anchored
 * in its user value 1) or converts each entry straight to the output
 * format, so a file of any size converts in bounded memory: the chunk, the
 * longest line and the largest JSON object. Rejected lines go to an errors
 * table: the list's own when building, a fresh one per call when
 * converting (nil when there are none). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "proxylist.h"

#define READER_MT "resi.proxylist.reader"
#define MAX_PENDING (64 * 1024 * 1024) /* largest JSON object (or "proxies" string) held while reading */
#define ERR_TEXT 200                   /* bytes of a rejected line masked into list.errors */
#define PUMP_CHUNK (1024 * 1024)       /* bytes read at a time by reader:pump */

typedef struct {
  int from, to;           /* formats; to < 0: build a list */
  int scheme;             /* for entries without one */
  int decided;            /* AUTO resolved to json or text */
  int json_in;
  int done;               /* finish() was called */
  long count;             /* entries produced */
  resi_pl_lines lines;
  resi_pl_json json;
  resi_buf pending;       /* JSON text not consumed yet */
  resi_buf scratch;       /* arena for one line when converting */
  resi_buf out;           /* converted text of the current chunk */
  char *inbuf;            /* reader:pump's input buffer */
  resi_pl_list *list;     /* when building (anchored in user value 1) */
  lua_State *L;           /* set while feeding */
  int errs;               /* stack index of the errors table while feeding */
  int failed;             /* memory ran out */
  int broken;             /* a JSON syntax error was reported for this input */
} pl_reader;

/* ---- from text to entries ---------------------------------------------- */

/* Where parsed strings go: the list's arena when building, the scratch
 * arena (one line or object) when converting. */
static resi_buf *arena_of(pl_reader *r) { return r->to < 0 ? &r->list->arena : &r->scratch; }

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

/* Adds a parsed entry (its strings already in the list's arena) to the
 * list being built. mark is where the entry's strings start in the arena,
 * or SIZE_MAX when unknown: a host that starts there and repeats the one
 * before it is kept once, the entry's other strings moved down over the
 * copy (the parser already points a repeated host name at its last copy,
 * resi_pl_set_host: this is for the rest, an IPv6 gateway's). */
static int keep(pl_reader *r, resi_pl_entry *e, size_t mark) {
  resi_pl_list *l = r->list;
  size_t hl = e->host_len;
  if (l->n && e->host == mark && hl == l->e[l->n - 1].host_len &&
      memcmp(l->arena.data + l->e[l->n - 1].host, l->arena.data + mark, hl) == 0) {
    memmove(l->arena.data + mark, l->arena.data + mark + hl, l->arena.len - mark - hl);
    if (e->user >= mark + hl) e->user -= (uint32_t)hl;
    if (e->pass >= mark + hl) e->pass -= (uint32_t)hl;
    e->host = l->e[l->n - 1].host;
    l->arena.len -= hl;
  }
  if (l->n < l->cap) { /* room reserved (presize_entries): the common case, inline */
    if (e != l->e + l->n) l->e[l->n] = *e; /* else parsed in its place (on_line): no copy, whose wide
                                            * loads of the entry's fresh narrow stores would stall */
    l->n++;
  } else if (!resi_pl_list_push(l, e, l->arena.data)) {
    return r->failed = 1;
  }
  r->count++;
  return 0;
}

/* Formats one parsed entry into the output (a reader that converts). */
static inline int take(pl_reader *r, const resi_pl_entry *e, const char *arena, long line, const char *text,
                       size_t len) {
  char why[RESI_PL_REASON];
  size_t mark = r->out.len;
  if (r->to == RESI_PL_JSON && !resi_buf_add(&r->out, r->count ? ",\n" : "[\n", 2)) return r->failed = 1;
  if (resi_pl_format(&r->out, arena, e, r->to, why)) {
    r->out.len = mark;
    add_error(r, line, text, len, why);
    return 0;
  }
  if (r->to != RESI_PL_JSON) { /* resi_pl_format leaves room for it, so no call for one byte */
    if (r->out.len < r->out.cap) r->out.data[r->out.len++] = '\n';
    else if (!resi_buf_add(&r->out, "\n", 1)) return r->failed = 1;
  }
  r->count++;
  return 0;
}

/* Line callback: parses one line of text. */
static int on_line(void *ud, const char *s, size_t n, long line) {
  pl_reader *r = ud;
  char why[RESI_PL_REASON];
  resi_pl_entry local, *e = &local;
  resi_buf *arena = arena_of(r);
  if (r->to >= 0) r->scratch.len = 0;
  else if (r->list->n < r->list->cap) e = &r->list->e[r->list->n]; /* parsed where it is kept (keep) */
  size_t mark = arena->len;
  int rc = resi_pl_parse_line(s, n, r->from == RESI_PL_AUTO ? RESI_PL_AUTO : r->from, r->scheme, arena, e, why);
  if (rc < 0) {
    add_error(r, line, s, n, why);
    return 0;
  }
  if (rc == 0) return 0;
  if (r->to < 0) return keep(r, e, mark);
  return take(r, e, arena->data, line, s, n);
}

/* JSON callback: one object read (or rejected). */
static int on_object(void *ud, const resi_pl_entry *e, long line, const char *why, const char *text, size_t len) {
  pl_reader *r = ud;
  if (why) {
    add_error(r, line, text, len, why);
    return 0;
  }
  if (r->to < 0) {
    resi_pl_entry c = *e;
    return keep(r, &c, SIZE_MAX);
  }
  int rc = take(r, e, r->scratch.data, line, text, len);
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

/* Feeds JSON text: what the reader does not consume waits in pending. */
static int feed_json(pl_reader *r, const char *s, size_t n, int final, char *why, long *err_line) {
  if (r->pending.len == 0 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 && r->json.state == 0 &&
      r->json.line == 1)
    s += 3, n -= 3;
  const char *text = s;
  size_t len = n;
  if (r->pending.len) {
    if (!resi_buf_add(&r->pending, s, n)) return r->failed = 1, -1;
    text = r->pending.data, len = r->pending.len;
  }
  long used = resi_pl_json_feed(&r->json, text, len, final, arena_of(r), on_object, r, why, err_line);
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
  } else if (rest && !resi_buf_add(&r->pending, text + used, rest)) {
    return r->failed = 1, -1;
  }
  return 0;
}

/* Feeds text lines: first the blank text held back while auto was
 * undecided, then s. Sets r->failed when memory runs out. */
static void feed_text(pl_reader *r, const char *s, size_t n, int final) {
  if (r->pending.len) {
    resi_buf held = r->pending;
    r->pending = (resi_buf){0};
    int rc = resi_pl_lines_feed(&r->lines, held.data, held.len, 0, on_line, r);
    resi_buf_free(&held);
    if (rc) r->failed = 1;
  }
  if (!r->failed && resi_pl_lines_feed(&r->lines, s, n, final, on_line, r)) r->failed = 1;
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
    feed_text(r, s, n, final);
  } else if (!resi_buf_add(&r->pending, s, n)) {
    r->failed = 1;
  }
  if (r->failed) luaL_error(L, "resi.proxylist: out of memory");
}

/* Ends the current input: the next one starts at line 1, its format
 * (auto) decided afresh, in the same output. */
static void restart(pl_reader *r) {
  resi_buf_free(&r->lines.carry);
  memset(&r->lines, 0, sizeof r->lines);
  r->pending.len = 0;
  resi_pl_json_init(&r->json, r->scheme);
  r->decided = r->from != RESI_PL_AUTO;
  r->json_in = 0;
  r->done = r->broken = 0;
}

/* ---- the methods ------------------------------------------------------- */

/* The reader argument (self). */
static pl_reader *check_reader(lua_State *L) { return luaL_checkudata(L, 1, READER_MT); }

/* Pushes the table rejected lines go to: the list's own errors when
 * building, a fresh table per call when converting. */
static void push_errors(lua_State *L, pl_reader *r) {
  if (r->to >= 0) {
    lua_newtable(L); /* stack: .., errors */
    return;
  }
  lua_getiuservalue(L, 1, 1); /* stack: .., list */
  resi_pl_list_errors(L, -1); /* stack: .., list, errors */
  lua_remove(L, -2);          /* stack: .., errors */
}

/* Pushes the text converted by this call. */
static void push_out(lua_State *L, pl_reader *r) {
  lua_pushlstring(L, r->out.data ? r->out.data : "", r->out.len); /* stack: .., out */
}

/* Ends a call: the value on the top goes before the errors table under it,
 * and when converting an empty errors table becomes nil (a list keeps its
 * own). stack: .., errors, value -> .., value, errors|nil. Returns 2. */
static int results(lua_State *L, pl_reader *r) {
  lua_insert(L, -2); /* stack: .., value, errors */
  if (r->to >= 0 && luaL_len(L, -1) == 0) {
    lua_pop(L, 1);
    lua_pushnil(L); /* stack: .., value, nil */
  }
  return 2;
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
  push_out(L, r);       /* stack: reader, chunk, errors, out */
  return results(L, r); /* stack: reader, chunk, out, errors|nil */
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
    if (r->to == RESI_PL_JSON && !resi_buf_add(&r->out, r->count ? "\n]\n" : "[]\n", 3)) return resi_pl_oom(L);
    r->done = 1;
  }
  if (r->to >= 0) push_out(L, r); /* stack: reader, errors, out */
  else lua_getiuservalue(L, 1, 1); /* stack: reader, errors, list */
  results(L, r);                   /* stack: reader, out|list, errors|nil */
  lua_pushinteger(L, r->count);    /* stack: reader, out|list, errors|nil, count */
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
  restart(r);
  if (r->to < 0) return 0;
  push_out(L, r);       /* stack: reader, errors, out */
  return results(L, r); /* stack: reader, out, errors|nil */
}

/* The size of a regular file f, or 0 (a pipe, a terminal). */
static size_t file_size(FILE *f) {
  struct stat st;
  return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
}

/* Asks the kernel to map the pages of [p, p + n) now, in one call, rather
 * than fault them in one at a time as they are first written. */
static void prefault(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
  uintptr_t page = 4096, start = ((uintptr_t)p + page - 1) & ~(page - 1), end = ((uintptr_t)p + n) & ~(page - 1);
  if (end > start) (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
  (void)p, (void)n;
#endif
}

/* Before a list's first chunk of file f: room in its arena for the whole
 * file (parsed strings never outgrow their text), so it is allocated once
 * and never copied as it grows, in huge pages when it is big; touched
 * pages only count. */
static void presize_arena(resi_pl_list *l, FILE *f) {
  size_t size = file_size(f);
  if (size > PUMP_CHUNK && size < UINT32_MAX && resi_buf_reserve(&l->arena, size))
    resi_pl_huge_pages(l->arena.data, l->arena.cap);
}

/* After a list's first chunk (n bytes) of file f: room for the entries the
 * whole file holds at that chunk's rate, and a few more (in huge pages when
 * they are many: resi_pl_list_reserve), their pages and the arena's that
 * the rest of the file will fill mapped at once. */
static void presize_entries(resi_pl_list *l, FILE *f, size_t n) {
  size_t size = file_size(f);
  if (n == 0 || size <= n || l->n == 0) return;
  resi_pl_list_reserve(l, (size_t)((double)size / (double)n * (double)l->n * 1.02) + 64);
  prefault(l->e, l->cap * sizeof *l->e);
  double arena_rate = (double)l->arena.len / (double)n;
  size_t arena_need = (size_t)((double)size * arena_rate * 1.02);
  if (arena_need > l->arena.cap) arena_need = l->arena.cap;
  if (arena_need > l->arena.len) prefault(l->arena.data + l->arena.len, arena_need - l->arena.len);
}

/* reader:pump(infile, outfile) -> more, errors: converts the next chunk of
 * infile straight into outfile (Lua file handles), without making Lua
 * strings of either; more is false at the end of infile. A reader that
 * builds a list takes no outfile: reader:pump(infile) -> more parses the
 * chunk into the list's arena. */
static int reader_pump(lua_State *L) {
  pl_reader *r = check_reader(L);
  luaL_Stream *in = luaL_checkudata(L, 2, LUA_FILEHANDLE);
  luaL_Stream *out = r->to < 0 ? NULL : luaL_checkudata(L, 3, LUA_FILEHANDLE);
  if (in->closef == NULL || (out && out->closef == NULL)) return luaL_error(L, "resi.proxylist: pump on a closed file");
  if (r->inbuf == NULL && (r->inbuf = malloc(PUMP_CHUNK)) == NULL) return resi_pl_oom(L);
  size_t n = fread(r->inbuf, 1, PUMP_CHUNK, in->f);
  if (n == 0 && ferror(in->f)) return luaL_error(L, "resi.proxylist: read error: %s", strerror(errno));
  lua_settop(L, 3);
  push_errors(L, r); /* stack: reader, in, out, errors */
  r->out.len = 0;
  size_t before = r->list && r->list->n == 0 && r->list->arena.cap == 0 ? 1 : 0;
  if (before) presize_arena(r->list, in->f);
  if (n > 0) feed(L, r, r->inbuf, n, 0);
  if (before) presize_entries(r->list, in->f, n);
  if (out == NULL) {
    lua_pushboolean(L, n > 0); /* stack: reader, in, out, errors, more */
    return 1;
  }
  if (r->out.len && fwrite(r->out.data, 1, r->out.len, out->f) != r->out.len)
    return luaL_error(L, "resi.proxylist: write error: %s", strerror(errno));
  lua_pushboolean(L, n > 0); /* stack: reader, in, out, errors, more */
  return results(L, r);      /* stack: reader, in, out, more, errors|nil */
}

/* Frees a reader's buffers. */
static int reader_gc(lua_State *L) {
  pl_reader *r = check_reader(L);
  resi_buf_free(&r->lines.carry);
  resi_buf_free(&r->pending);
  resi_buf_free(&r->scratch);
  resi_buf_free(&r->out);
  free(r->inbuf);
  r->inbuf = NULL;
  return 0;
}

/* ---- the class ------------------------------------------------------------ */

/* Checks a scheme name argument (nil = http). */
static int check_scheme(lua_State *L, int i) {
  size_t n;
  const char *s = luaL_optlstring(L, i, "http", &n);
  int id = resi_pl_scheme_id(s, n);
  if (id < 0)
    luaL_error(L, "resi.proxylist: unknown scheme '%s' (expected http, https, socks4, socks4a, socks5, socks5h)", s);
  return id;
}

/* core.reader(from, scheme, to) -> reader: to nil builds a list. */
static int new_reader(lua_State *L) {
  int from = resi_pl_check_format(L, 1, "auto", 1);
  int scheme = check_scheme(L, 2);
  int to = lua_isnoneornil(L, 3) ? -1 : resi_pl_check_format(L, 3, "list", 0);
  pl_reader *r = lua_newuserdatauv(L, sizeof *r, 1); /* stack: .., reader */
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  r->from = from, r->to = to, r->scheme = scheme;
  r->decided = from != RESI_PL_AUTO;
  resi_pl_json_init(&r->json, scheme);
  if (to < 0) {
    r->list = resi_pl_list_new(L); /* stack: .., reader, list */
    lua_setiuservalue(L, -2, 1);   /* stack: .., reader */
  }
  return 1;
}

/* Registers resi.proxylist.reader and adds core.reader to the core table
 * on the top. */
void resi_pl_reader_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"feed", reader_feed},
                                     {"finish", reader_finish},
                                     {"next_input", reader_next_input},
                                     {"pump", reader_pump},
                                     {NULL, NULL}};
  resi_new_gc_class(L, READER_MT, methods, reader_gc); /* stack: core */
  lua_pushcfunction(L, new_reader);            /* stack: core, reader */
  lua_setfield(L, -2, "reader");               /* stack: core */
}
