/* proxylist_stream.c: splits text that arrives in chunks into lines, so a
 * list of any size is parsed with memory bounded by the chunk size and the
 * longest line (RESI_PL_MAX_LINE). */
#include <string.h>

#include "proxylist.h"

/* Hands one line to fn: drops the CR of a CRLF, and a UTF-8 BOM on line 1. */
static int emit(resi_pl_lines *ls, const char *s, size_t n, resi_pl_line_fn fn, void *ud) {
  ls->line++;
  if (n > 0 && s[n - 1] == '\r' && n <= RESI_PL_MAX_LINE) n--;
  if (ls->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, n -= 3;
  return fn(ud, s, n, ls->line);
}

/* Emits carry + s[0..n) as one line, cut at RESI_PL_MAX_LINE + 1 bytes. */
static int emit_joined(resi_pl_lines *ls, const char *s, size_t n, resi_pl_line_fn fn, void *ud) {
  size_t room = RESI_PL_MAX_LINE + 1 - ls->carry.len;
  if (!resi_buf_add(&ls->carry, s, n < room ? n : room)) return -1;
  int rc = emit(ls, ls->carry.data, ls->carry.len, fn, ud);
  ls->carry.len = 0;
  return rc ? -1 : 0;
}

int resi_pl_lines_feed(resi_pl_lines *ls, const char *s, size_t n, int final, resi_pl_line_fn fn, void *ud) {
  const char *p = s, *end = s + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (ls->skipping) { /* the rest of a line already reported as too long */
      if (nl == NULL) return 0;
      ls->skipping = 0;
      p = nl + 1;
      continue;
    }
    if (nl == NULL) break;
    if (ls->carry.len) {
      if (emit_joined(ls, p, (size_t)(nl - p), fn, ud)) return -1;
    } else if (emit(ls, p, (size_t)(nl - p), fn, ud)) {
      return -1;
    }
    p = nl + 1;
  }
  if (p < end && !ls->skipping) {
    size_t rest = (size_t)(end - p);
    if (ls->carry.len + rest > RESI_PL_MAX_LINE) {
      if (emit_joined(ls, p, rest, fn, ud)) return -1;
      ls->skipping = 1;
    } else if (!resi_buf_add(&ls->carry, p, rest)) {
      return -1;
    }
  }
  if (final) {
    ls->skipping = 0;
    if (ls->carry.len) {
      int rc = emit(ls, ls->carry.data, ls->carry.len, fn, ud);
      ls->carry.len = 0;
      if (rc) return -1;
    }
  }
  return 0;
}
