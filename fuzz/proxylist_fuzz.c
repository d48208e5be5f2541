/* proxylist_fuzz.c: libFuzzer target for the proxy-list codec. The first
 * byte picks the input format and how the input is cut into chunks; the
 * rest is the text. Every accepted entry must format in each format that
 * can carry it, and parsing that line back (in that format) must give the
 * same entry; JSON objects go through the chunked JSON reader. A rejected
 * line's reason must quote nothing of the line, and its masked text
 * (list.errors[i].text) must keep no field but a scheme or proxy type. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxylist.h"

typedef struct {
  int fmt;
  resi_buf arena;
  resi_buf ref, kept;  /* pass 1's entries copied one after another; pass 2's, parsed as a list is built */
  resi_pl_entry *refs; /* pass 1's entries (strings in ref), then pass 2's (in kept) after them */
  size_t n, cap;       /* entries in refs */
  size_t first, at;    /* pass 1's count; pass 2's so far */
} state;

/* Are two entries (each with its own arena) the same? */
static int same(const char *a, const resi_pl_entry *x, const char *b, const resi_pl_entry *y) {
  unsigned fx = x->flags & ~RESI_PL_CLEAN, fy = y->flags & ~RESI_PL_CLEAN; /* CLEAN says how it was read */
  return x->scheme == y->scheme && x->port == y->port && fx == fy && x->host_len == y->host_len &&
         x->user_len == y->user_len && x->pass_len == y->pass_len && !memcmp(a + x->host, b + y->host, x->host_len) &&
         !memcmp(a + x->user, b + y->user, x->user_len) && !memcmp(a + x->pass, b + y->pass, x->pass_len);
}

/* An entry marked RESI_PL_CLEAN must format exactly as it does with the
 * checks the mark skips: the parser's claim is checked here. */
static void check_clean(const char *arena, const resi_pl_entry *e) {
  if (!(e->flags & RESI_PL_CLEAN)) return;
  resi_pl_entry plain = *e;
  plain.flags &= (uint8_t)~RESI_PL_CLEAN;
  for (int fmt = RESI_PL_LIST; fmt <= RESI_PL_PROXYCHAINS; fmt++) {
    resi_buf a = {0}, b = {0};
    char why[RESI_PL_REASON];
    int ra = resi_pl_format(&a, arena, e, fmt, why), rb = resi_pl_format(&b, arena, &plain, fmt, why);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))) {
      fprintf(stderr, "an entry marked clean formats differently in %s\n", resi_pl_format_names[fmt]);
      abort();
    }
    resi_buf_free(&a);
    resi_buf_free(&b);
  }
}

/* Checks the round trip of one entry through every format. */
static void round_trip(const char *arena, const resi_pl_entry *e) {
  check_clean(arena, e);
  static const int fmts[] = {RESI_PL_LIST, RESI_PL_USERPASS, RESI_PL_URL, RESI_PL_PROXYCHAINS};
  for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
    resi_buf out = {0}, back = {0};
    char why[RESI_PL_REASON];
    resi_pl_entry e2;
    if (resi_pl_format(&out, arena, e, fmts[k], why) == 0) {
      int rc = resi_pl_parse_line(out.data, out.len, fmts[k], e->scheme, &back, &e2, why);
      resi_pl_entry want = *e; /* proxychains writes socks4a and socks5h as socks4 and socks5 */
      if (fmts[k] == RESI_PL_PROXYCHAINS && want.scheme == RESI_PL_SOCKS4A) want.scheme = RESI_PL_SOCKS4;
      if (fmts[k] == RESI_PL_PROXYCHAINS && want.scheme == RESI_PL_SOCKS5H) want.scheme = RESI_PL_SOCKS5;
      if (rc != 1 || !same(arena, &want, back.data, &e2)) {
        fprintf(stderr, "round trip through %s failed: %.*s (%s)\n", resi_pl_format_names[fmts[k]], (int)out.len,
                out.data, rc < 0 ? why : "differs");
        abort();
      }
    }
    resi_buf_free(&out);
    resi_buf_free(&back);
  }
}

/* Checks that a reason quotes nothing but its own fixed words: with those
 * taken out, no quote is left. */
static void check_reason(const char *why, const char *s, size_t n) {
  static const char *const fixed[] = {"'raw'", "'..'", "'#'", "'%'", "'['", "']'", "'.'", "','",
                                      "'}'",   "':'",  "'-'", "'_'", "'@'"};
  char rest[RESI_PL_REASON];
  snprintf(rest, sizeof rest, "%s", why);
  for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
    for (char *at; (at = strstr(rest, fixed[k])) != NULL;) memset(at, ' ', strlen(fixed[k]));
  if (strchr(rest, '\'') != NULL) {
    fprintf(stderr, "reason quotes the line: %s (line %.*s)\n", why, (int)n, s);
    abort();
  }
}

/* Is c a letter or digit? */
static int alnum(char c) { return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9'); }

/* Checks the masked text of a rejected line (or JSON object): at most
 * 3n + 2 bytes; for a text line, printable and no word but a type. */
static void check_mask(const char *s, size_t n) {
  size_t k = 0;
  while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\v' || s[k] == '\f' || s[k] == '\n')) k++;
  int json = k < n && s[k] == '{';
  char *out = malloc(3 * n + 2 + 1);
  size_t len = resi_pl_mask(s, n, out, 3 * n + 2);
  for (size_t i = 0; i < len && !json;) {
    size_t j = i;
    while (j < len && alnum(out[j])) j++;
    int type = resi_pl_scheme_id(out + i, j - i) >= 0 || (j - i == 3 && strncasecmp(out + i, "raw", 3) == 0);
    if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e || (j > i && !type)) {
      fprintf(stderr, "masked text keeps a field: %.*s (line %.*s)\n", (int)len, out, (int)n, s);
      abort();
    }
    i = j > i ? j : i + 1;
  }
  free(out);
}

/* Appends e (strings in arena) to st->refs, its strings copied into ref
 * when copy is set. */
static void add_ref(state *st, const resi_pl_entry *e, const char *arena, int copy) {
  if (st->n == st->cap) {
    st->cap = st->cap ? st->cap * 2 : 64;
    st->refs = realloc(st->refs, st->cap * sizeof *st->refs);
  }
  resi_pl_entry c = *e;
  if (copy) {
    c.host = (uint32_t)st->ref.len, resi_buf_add(&st->ref, arena + e->host, e->host_len);
    c.user = (uint32_t)st->ref.len, resi_buf_add(&st->ref, arena + e->user, e->user_len);
    c.pass = (uint32_t)st->ref.len, resi_buf_add(&st->ref, arena + e->pass, e->pass_len);
  }
  st->refs[st->n++] = c;
}

/* Line callback: parse, then round-trip what was accepted, or check what
 * the rejection says. */
static int on_line(void *ud, const char *s, size_t n, long line) {
  state *st = ud;
  char why[RESI_PL_REASON];
  resi_pl_entry e;
  st->arena.len = 0;
  int rc = resi_pl_parse_line(s, n, st->fmt, RESI_PL_HTTP, &st->arena, &e, why);
  if (rc == 1) round_trip(st->arena.data, &e), add_ref(st, &e, st->arena.data, 1);
  if (rc < 0) check_reason(why, s, n), check_mask(s, n > 200 ? 200 : n);
  return 0;
}

/* Pass 2's line callback: parses into one arena that is never reset, as a
 * list is built (a repeated host then points at its last copy); each
 * entry must equal pass 1's, and stay so to the end (checked then). */
static int on_kept_line(void *ud, const char *s, size_t n, long line) {
  state *st = ud;
  char why[RESI_PL_REASON];
  resi_pl_entry e;
  if (resi_pl_parse_line(s, n, st->fmt, RESI_PL_HTTP, &st->kept, &e, why) != 1) return 0;
  if (st->at >= st->first || !same(st->kept.data, &e, st->ref.data, &st->refs[st->at])) {
    fprintf(stderr, "line %ld parses differently into a list's arena\n", line);
    abort();
  }
  st->at++;
  add_ref(st, &e, NULL, 0);
  return 0;
}

/* After pass 2: every entry it kept still reads as pass 1's. */
static void check_kept(const state *st) {
  for (size_t i = 0; i < st->at; i++)
    if (!same(st->kept.data, &st->refs[st->first + i], st->ref.data, &st->refs[i])) {
      fprintf(stderr, "entry %zu changed as the list grew\n", i + 1);
      abort();
    }
}

/* JSON callback: round-trip every accepted object, check rejected ones. */
static int on_object(void *ud, const resi_pl_entry *e, long line, const char *why, const char *text, size_t len) {
  state *st = ud;
  if (e && !why) round_trip(st->arena.data, e);
  if (why) check_reason(why, text, len), check_mask(text, len > 200 ? 200 : len);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  state st = {.fmt = data[0] % RESI_PL_NFORMATS};
  size_t step = 1 + (data[0] >> 3) * 7; /* chunk size, 1..218 */
  const char *text = (const char *)data + 1;
  size_t n = size - 1;
  char why[RESI_PL_REASON];
  if (st.fmt == RESI_PL_JSON) {
    resi_pl_json j;
    resi_buf pending = {0};
    long line;
    resi_pl_json_init(&j, RESI_PL_HTTP);
    for (size_t off = 0; off <= n; off += step) {
      size_t k = off + step <= n ? step : n - off;
      resi_buf_add(&pending, text + off, k);
      int final = off + step > n;
      long used = resi_pl_json_feed(&j, pending.data, pending.len, final, &st.arena, on_object, &st, why, &line);
      if (used < 0) break;
      if (used > 0) memmove(pending.data, pending.data + used, pending.len - (size_t)used);
      pending.len -= (size_t)used;
      if (final) break;
    }
    resi_buf_free(&pending);
  } else {
    resi_pl_lines ls = {0};
    for (size_t off = 0; off <= n; off += step) {
      size_t k = off + step <= n ? step : n - off;
      int final = off + step > n;
      resi_pl_lines_feed(&ls, text + off, k, final, on_line, &st);
      if (final) break;
    }
    resi_buf_free(&ls.carry);
    resi_pl_lines ls2 = {0}; /* pass 2, in one piece */
    st.first = st.n;
    resi_pl_lines_feed(&ls2, text, n, 1, on_kept_line, &st);
    resi_buf_free(&ls2.carry);
    if (st.at != st.first) {
      fprintf(stderr, "pass 2 kept %zu entries of %zu\n", st.at, st.first);
      abort();
    }
    check_kept(&st);
  }
  resi_buf_free(&st.arena);
  resi_buf_free(&st.ref);
  resi_buf_free(&st.kept);
  free(st.refs);
  return 0;
}
