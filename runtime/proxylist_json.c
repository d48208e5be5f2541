/* proxylist_json.c: ResiFactory's JSON proxy list -> entries, chunk by chunk.
 *
 * Accepts the array of objects ([{"host":..,"port":..,"username":..,
 * "password":..}, ...]) or a whole POST /proxies response that holds one
 * ({"proxies": [...], "count": ..}), or the response of the list and userpass
 * formats, whose "proxies" is one string of lines (each line read as a text
 * line, its format detected). Per object: host (string), port
 * (integer or digit string), username/user and password/pass (string or
 * null), scheme/protocol/type (optional); other keys are ignored. An object
 * with a bad or missing field is reported and skipped; a syntax error stops
 * the reader. Objects are read whole: the caller hands back what was not
 * consumed, with more text, so only one object needs to be in memory. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "proxylist.h"

enum { J_START, J_WKEY, J_WSEP, J_VALUE, J_SEP, J_END };
enum { OK = 0, MORE = 1, BAD = 2 };

typedef struct {
  const char *p, *end;
  long line;
  char *why;
} cursor;

/* Skips whitespace, counting lines. */
static void ws(cursor *c) {
  while (c->p < c->end) {
    char ch = *c->p;
    if (ch == '\n') c->line++;
    else if (ch != ' ' && ch != '\t' && ch != '\r') return;
    c->p++;
  }
}

/* Records a syntax error. */
static int bad(cursor *c, const char *msg) {
  snprintf(c->why, RESI_PL_REASON, "JSON: %s", msg);
  return BAD;
}

/* Reads a string at c->p (its opening quote); decodes it into out when out
 * is not NULL. */
static int string(cursor *c, resi_buf *out) {
  const char *p = c->p + 1;
  while (p < c->end) {
    const char *run = p;
    while (p < c->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
    if (out && !resi_buf_add(out, run, (size_t)(p - run))) return bad(c, "out of memory");
    if (p >= c->end) return MORE;
    if (*p == '"') {
      c->p = p + 1;
      return OK;
    }
    if (*p != '\\') return bad(c, "control character in a string");
    char u[4];
    size_t n;
    const char *why;
    int used = resi_json_unescape(p, c->end, u, &n, &why);
    if (used == 0) return MORE;
    if (used < 0) return bad(c, why);
    if (n == 1 && u[0] == '\0') return bad(c, "\\u0000 in a string");
    if (out && !resi_buf_add(out, u, n)) return bad(c, "out of memory");
    p += used;
  }
  return MORE;
}

/* Reads a number or literal token; sets *start and *len to its text. */
static int scalar(cursor *c, const char **start, size_t *len) {
  const char *p = c->p;
  while (p < c->end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '+' || *p == '.' ||
                        *p == 'E'))
    p++;
  if (p == c->end) return MORE;
  if (p == c->p) return bad(c, "unexpected character");
  *start = c->p, *len = (size_t)(p - c->p);
  c->p = p;
  if ((*start)[0] >= 'a' && (*start)[0] <= 'z' && !(*len == 4 && memcmp(*start, "true", 4) == 0) &&
      !(*len == 4 && memcmp(*start, "null", 4) == 0) && !(*len == 5 && memcmp(*start, "false", 5) == 0))
    return bad(c, "unexpected word");
  return OK;
}

/* Skips any value (nested arrays and objects included). */
static int skip(cursor *c, int depth) {
  if (depth > 64) return bad(c, "nesting deeper than 64");
  ws(c);
  if (c->p >= c->end) return MORE;
  char ch = *c->p;
  if (ch == '"') return string(c, NULL);
  if (ch != '{' && ch != '[') {
    const char *s;
    size_t n;
    return scalar(c, &s, &n);
  }
  char close = ch == '{' ? '}' : ']';
  c->p++;
  for (int first = 1;; first = 0) {
    ws(c);
    if (c->p >= c->end) return MORE;
    if (*c->p == close) {
      c->p++;
      return OK;
    }
    if (!first) {
      if (*c->p != ',') return bad(c, "expected ',' between values");
      c->p++;
    }
    if (close == '}') {
      ws(c);
      if (c->p >= c->end) return MORE;
      if (*c->p != '"') return bad(c, "expected a key");
      int rc = string(c, NULL);
      if (rc) return rc;
      ws(c);
      if (c->p >= c->end) return MORE;
      if (*c->p != ':') return bad(c, "expected ':' after a key");
      c->p++;
    }
    int rc = skip(c, depth + 1);
    if (rc) return rc;
  }
}

/* Reads a key and its ':'; sets *which to the field it names (0 = other). */
enum { F_OTHER, F_HOST, F_PORT, F_USER, F_PASS, F_SCHEME, F_PROXIES };
static int key(cursor *c, int *which) {
  const char *open = c->p;
  int rc = string(c, NULL);
  if (rc) return rc;
  size_t n = (size_t)(c->p - open - 2); /* the raw key between the quotes */
  char small[16];
  *which = F_OTHER;
  if (n < sizeof small && memchr(open + 1, '\\', n) == NULL) {
    memcpy(small, open + 1, n);
    small[n] = '\0';
    if (!strcmp(small, "host")) *which = F_HOST;
    else if (!strcmp(small, "port")) *which = F_PORT;
    else if (!strcmp(small, "username") || !strcmp(small, "user")) *which = F_USER;
    else if (!strcmp(small, "password") || !strcmp(small, "pass")) *which = F_PASS;
    else if (!strcmp(small, "scheme") || !strcmp(small, "protocol") || !strcmp(small, "type")) *which = F_SCHEME;
    else if (!strcmp(small, "proxies")) *which = F_PROXIES;
  }
  ws(c);
  if (c->p >= c->end) return MORE;
  if (*c->p != ':') return bad(c, "expected ':' after a key");
  c->p++;
  ws(c);
  return c->p >= c->end ? MORE : OK;
}

/* Reads a string or null into the arena (a username or password). */
static int credential(cursor *c, resi_buf *arena, uint32_t *off, uint32_t *len, int *present) {
  if (*c->p == '"') {
    size_t start = arena->len;
    int rc = string(c, arena);
    if (rc) return rc;
    if (arena->len > UINT32_MAX) return bad(c, "list too large");
    *off = (uint32_t)start, *len = (uint32_t)(arena->len - start), *present = 1;
    return OK;
  }
  const char *s;
  size_t n;
  int rc = scalar(c, &s, &n);
  if (rc) return rc;
  if (n == 4 && memcmp(s, "null", 4) == 0) {
    *present = 0;
    return OK;
  }
  return bad(c, "a username or password must be a string or null");
}

/* Reads a short string into buf (host, scheme, port as text); sets *n, or
 * leaves *n beyond size when it is too long. */
static int short_string(cursor *c, char *buf, size_t size, size_t *n) {
  resi_buf tmp = {0};
  int rc = string(c, &tmp);
  *n = tmp.len;
  if (rc == OK && tmp.len && tmp.len < size) memcpy(buf, tmp.data, tmp.len);
  resi_buf_free(&tmp);
  return rc;
}

/* The fields of one object, before they are checked. */
typedef struct {
  char host[300], scheme[16], port[24];
  size_t host_n, scheme_n, port_n;
  int has_host, has_port, has_scheme, port_is_text;
} fields;

/* Checks an object's fields and fills e; returns 0 or -1 with why set. */
static int finish_entry(fields *f, resi_buf *arena, resi_pl_entry *e, int default_scheme, char *why) {
  e->scheme = (uint8_t)default_scheme;
  if (f->has_scheme) {
    int s = f->scheme_n < sizeof f->scheme ? resi_pl_scheme_id(f->scheme, f->scheme_n) : -1;
    if (s < 0) {
      snprintf(why, RESI_PL_REASON, "unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)");
      return -1;
    }
    e->scheme = (uint8_t)s;
  }
  if (!f->has_host) {
    snprintf(why, RESI_PL_REASON, "missing \"host\"");
    return -1;
  }
  if (!f->has_port) {
    snprintf(why, RESI_PL_REASON, "missing \"port\"");
    return -1;
  }
  int port = f->port_n < sizeof f->port ? resi_pl_port(f->port, f->port_n, why) : -1;
  if (port < 0) {
    if (f->port_n >= sizeof f->port) snprintf(why, RESI_PL_REASON, "port is out of range 1-65535");
    return -1;
  }
  e->port = (uint16_t)port;
  if ((e->flags & RESI_PL_HAS_PASS) && !(e->flags & RESI_PL_HAS_USER)) {
    snprintf(why, RESI_PL_REASON, "a password without a username");
    return -1;
  }
  if ((e->flags & RESI_PL_HAS_USER) && e->user_len == 0) {
    snprintf(why, RESI_PL_REASON, "empty username");
    return -1;
  }
  size_t hn = f->host_n;
  const char *h = f->host;
  if (hn >= sizeof f->host) {
    snprintf(why, RESI_PL_REASON, "host longer than 253 characters");
    return -1;
  }
  if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') h++, hn -= 2;
  return resi_pl_set_host(h, hn, 1, arena, e, why);
}

/* Reads one object; OK with *rejected set when its fields are wrong. */
static int object(cursor *c, resi_buf *arena, resi_pl_entry *e, int default_scheme, int *rejected) {
  fields f;
  f.has_host = f.has_port = f.has_scheme = 0;
  memset(e, 0, sizeof *e);
  int present = 0, wrong = 0;
  *rejected = 0;
  c->p++; /* { */
  for (int first = 1;; first = 0) {
    ws(c);
    if (c->p >= c->end) return MORE;
    if (*c->p == '}') {
      c->p++;
      break;
    }
    if (!first) {
      if (*c->p != ',') return bad(c, "expected ',' or '}' in an object");
      c->p++;
      ws(c);
      if (c->p >= c->end) return MORE;
    }
    if (*c->p != '"') return bad(c, "expected a key in an object");
    int which, rc = key(c, &which);
    if (rc) return rc;
    char ch = *c->p;
    if (which == F_HOST && ch == '"') {
      rc = short_string(c, f.host, sizeof f.host, &f.host_n), f.has_host = 1;
    } else if (which == F_SCHEME && ch == '"') {
      rc = short_string(c, f.scheme, sizeof f.scheme, &f.scheme_n), f.has_scheme = 1;
    } else if (which == F_PORT && ch == '"') {
      rc = short_string(c, f.port, sizeof f.port, &f.port_n), f.has_port = 1;
    } else if (which == F_PORT && ch != '{' && ch != '[') {
      const char *s;
      size_t n;
      rc = scalar(c, &s, &n);
      if (rc == OK) {
        f.has_port = 1, f.port_n = n;
        if (n < sizeof f.port) memcpy(f.port, s, n);
      }
    } else if (which == F_USER && (ch == '"' || ch == 'n')) {
      rc = credential(c, arena, &e->user, &e->user_len, &present);
      if (rc == OK) {
        e->flags = present ? (e->flags | RESI_PL_HAS_USER) : (e->flags & ~RESI_PL_HAS_USER);
        if (!present) e->user = e->user_len = 0; /* null after a string: absent */
      }
    } else if (which == F_PASS && (ch == '"' || ch == 'n')) {
      rc = credential(c, arena, &e->pass, &e->pass_len, &present);
      if (rc == OK) {
        e->flags = present ? (e->flags | RESI_PL_HAS_PASS) : (e->flags & ~RESI_PL_HAS_PASS);
        if (!present) e->pass = e->pass_len = 0;
      }
    } else {
      if (which != F_OTHER && which != F_PROXIES && !wrong) wrong = which; /* a field of the wrong type */
      rc = skip(c, 1);
    }
    if (rc) return rc;
  }
  if (wrong) {
    static const char *const names[] = {"", "host", "port", "username", "password", "scheme"};
    snprintf(c->why, RESI_PL_REASON, "\"%s\" has the wrong type", names[wrong]);
    *rejected = 1;
    return OK;
  }
  if (finish_entry(&f, arena, e, default_scheme, c->why)) *rejected = 1;
  return OK;
}

/* Where the lines of a "proxies" string go (see proxies_string). */
typedef struct {
  resi_buf *arena;
  int default_scheme;
  resi_pl_sink sink;
  void *ud;
  long line; /* where the string starts in the document */
  char *why;
} string_lines;

/* Line callback for a "proxies" string: an entry or a rejected line to the
 * sink; non-zero when the sink ran out of memory. */
static int string_line(void *ud, const char *s, size_t n, long k) {
  string_lines *sl = ud;
  char why[RESI_PL_REASON];
  resi_pl_entry e;
  int got = resi_pl_parse_line(s, n, RESI_PL_AUTO, sl->default_scheme, sl->arena, &e, why);
  if (got == 0) return 0;
  if (got < 0) snprintf(sl->why, RESI_PL_REASON, "\"proxies\" line %ld: %.*s", k, RESI_PL_REASON - 40, why);
  return sl->sink(sl->ud, got > 0 ? &e : NULL, sl->line, got > 0 ? NULL : sl->why, s, n);
}

/* Reads "proxies": "LINES" (the list and userpass formats' answer): the
 * string is decoded whole, then split into lines as text input is. */
static int proxies_string(cursor *c, resi_buf *arena, int default_scheme, resi_pl_sink sink, void *ud) {
  string_lines sl = {arena, default_scheme, sink, ud, c->line, c->why};
  resi_buf text = {0};
  int rc = string(c, &text);
  if (rc == OK) {
    resi_pl_lines lines = {0};
    const char *data = text.data ? text.data : ""; /* an empty string has no buffer */
    if (resi_pl_lines_feed(&lines, data, text.len, 1, string_line, &sl)) rc = bad(c, "out of memory");
    resi_buf_free(&lines.carry);
  }
  resi_buf_free(&text);
  return rc;
}

void resi_pl_json_init(resi_pl_json *j, int default_scheme) {
  memset(j, 0, sizeof *j);
  j->state = J_START;
  j->line = 1;
  j->default_scheme = default_scheme;
}

/* Takes the character at the cursor when it is one of the two a stream
 * may have there: a moves j to a_next, b to b_next; anything else fails
 * with what. */
static int take_one_of(resi_pl_json *j, cursor *c, char a, int a_next, char b, int b_next, const char *what) {
  if (*c->p == a) j->state = a_next;
  else if (*c->p == b) j->state = b_next;
  else return bad(c, what);
  c->p++;
  return OK;
}

long resi_pl_json_feed(resi_pl_json *j, const char *s, size_t n, int final, resi_buf *arena,
                       resi_pl_sink sink, void *ud, char *why, long *err_line) {
  if (s == NULL) s = ""; /* an empty buffer */
  cursor c = {s, s + n, j->line, why};
  const char *done = s; /* everything before this is consumed */
  int rc = OK;
  for (;;) {
    ws(&c);
    done = c.p, j->line = c.line;
    if (c.p >= c.end) break;
    char ch = *c.p;
    if (j->state == J_START) {
      if ((rc = take_one_of(j, &c, '[', J_VALUE, '{', J_WKEY, "expected a JSON array of proxy objects"))) break;
    } else if (j->state == J_WKEY) {
      if (ch == '}') {
        c.p++, j->state = J_END;
        continue;
      }
      if (ch != '"') {
        rc = bad(&c, "expected a key in an object");
        break;
      }
      int which;
      if ((rc = key(&c, &which))) break;
      if (which == F_PROXIES && *c.p == '[') {
        c.p++, j->state = J_VALUE, j->wrapped = 1;
      } else if (which == F_PROXIES && *c.p == '"') {
        if ((rc = proxies_string(&c, arena, j->default_scheme, sink, ud))) break;
        j->state = J_WSEP;
      } else if ((rc = skip(&c, 1)) == OK) {
        j->state = J_WSEP;
      } else {
        break;
      }
    } else if (j->state == J_WSEP) {
      if ((rc = take_one_of(j, &c, ',', J_WKEY, '}', J_END, "expected ',' or '}'"))) break;
    } else if (j->state == J_VALUE || j->state == J_SEP) {
      if (ch == ']') {
        c.p++, j->state = j->wrapped ? J_WSEP : J_END;
        continue;
      }
      if (j->state == J_SEP) {
        if (ch != ',') {
          rc = bad(&c, "expected ',' or ']' between proxies");
          break;
        }
        c.p++, j->state = J_VALUE;
        continue;
      }
      if (ch != '{') {
        rc = bad(&c, "expected an object for each proxy");
        break;
      }
      const char *start = c.p;
      long line = c.line;
      size_t mark = arena->len;
      resi_pl_entry e;
      int rejected;
      if ((rc = object(&c, arena, &e, j->default_scheme, &rejected))) {
        arena->len = mark;
        break;
      }
      if (rejected) arena->len = mark; /* a rejected entry keeps nothing, only its reason */
      if (sink(ud, rejected ? NULL : &e, line, rejected ? why : NULL, start, (size_t)(c.p - start))) {
        rc = BAD;
        snprintf(why, RESI_PL_REASON, "out of memory");
        break;
      }
      j->state = J_SEP;
    } else { /* J_END */
      rc = bad(&c, "text after the end of the JSON document");
      break;
    }
  }
  if (rc == MORE || (rc == OK && c.p >= c.end)) {
    if (!final) return (long)(done - s);
    if (j->state == J_END) return (long)n;
    if (rc == OK && j->state == J_START) return (long)n; /* empty input: no proxies */
    snprintf(why, RESI_PL_REASON, "JSON: the document ends early");
    *err_line = c.line;
    return -1;
  }
  *err_line = c.line;
  return -1;
}
