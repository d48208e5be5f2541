/* proxylist_format.c: one entry -> one line of text in a given format, and
 * a rejected line masked for list.errors.
 *
 * Formats that cannot carry an entry say so instead of writing something
 * that would parse back differently: list and userpass cannot hold a ':' in
 * the username, whitespace or control characters in credentials, or a
 * username starting with '#' or ';' (userpass: it would read as a comment).
 * url and json carry everything. Formats without a scheme (list, userpass,
 * hostport) leave it out; hostport leaves out the credentials too.
 * proxychains has the types http, socks4 and socks5 only: socks4a and socks5h
 * are written socks4 and socks5 (proxychains resolves names through the proxy
 * when proxy_dns is set), https cannot be written; fields are split by
 * spaces, so credentials cannot hold whitespace, nor a password be empty. */
#include <stdio.h>
#include <string.h>

#include "proxylist.h"

/* Does s hold a byte that a line-based format cannot carry? */
static int has_unsafe(const char *s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) { /* eight bytes at a time: any <= ' ' or 0x7f? */
    uint64_t w, d;
    memcpy(&w, s + i, 8);
    d = w ^ 0x7f7f7f7f7f7f7f7fu;
    if (((w - 0x2121212121212121u) & ~w & 0x8080808080808080u) || ((d - 0x0101010101010101u) & ~d & 0x8080808080808080u))
      break;
  }
  for (; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ' ') return 1;
  return 0;
}

/* Checks that a line-based format can carry the credentials. */
static int check_plain(const char *arena, const resi_pl_entry *e, int fmt, char *why) {
  const char *u = arena + e->user, *name = resi_pl_format_names[fmt];
  int clean = (e->flags & RESI_PL_CLEAN) != 0; /* checked when parsed (proxylist.h) */
  if (!clean && fmt != RESI_PL_PROXYCHAINS && resi_pl_find(u, u + e->user_len, ':')) {
    snprintf(why, RESI_PL_REASON, "the %s format cannot carry a ':' in the username (use url or json)", name);
    return -1;
  }
  if (!clean &&
      (has_unsafe(u, e->user_len) || ((e->flags & RESI_PL_HAS_PASS) && has_unsafe(arena + e->pass, e->pass_len)))) {
    snprintf(why, RESI_PL_REASON,
             "the %s format cannot carry spaces or control characters in credentials (use url or json)", name);
    return -1;
  }
  if (fmt == RESI_PL_PROXYCHAINS && (e->flags & RESI_PL_HAS_PASS) && e->pass_len == 0) {
    snprintf(why, RESI_PL_REASON, "the proxychains format cannot carry an empty password (use url or json)");
    return -1;
  }
  if (fmt == RESI_PL_USERPASS && (u[0] == '#' || u[0] == ';')) {
    snprintf(why, RESI_PL_REASON, "the userpass format cannot carry a username starting with '%c' (use url or json)",
             u[0]);
    return -1;
  }
  return 0;
}

/* The last port written, as text: a provider's list has one port on every
 * line (one runtime thread, so one cache, as the parser's last host). */
static struct {
  unsigned port;
  char text[8];
  size_t n;
} last_port = {0, "0", 1};

/* Appends a port in decimal: the last one's text again, or its digits. */
static void put_port(char **w, unsigned port) {
  if (port != last_port.port) {
    char digits[RESI_INT_DIGITS], *p = resi_int_digits(digits + sizeof digits, (lua_Integer)port);
    last_port.port = port, last_port.n = (size_t)(digits + sizeof digits - p);
    memcpy(last_port.text, p, last_port.n); /* a port has at most 5 */
  }
  memcpy(*w, last_port.text, 8); /* room for it is reserved (resi_pl_format's need) */
  *w += last_port.n;
}

/* Appends the host ([v6] bracketed; zone '%' written %25 in URLs) and ":port". */
static inline void put_endpoint(char **w, const char *arena, const resi_pl_entry *e, int url) {
  char *p = *w;
  const char *h = arena + e->host;
  if (e->flags & RESI_PL_IPV6) {
    *p++ = '[';
    for (size_t i = 0; i < e->host_len; i++) {
      *p++ = h[i];
      if (url && h[i] == '%') *p++ = '2', *p++ = '5';
    }
    *p++ = ']';
  } else {
    memcpy(p, h, e->host_len);
    p += e->host_len;
  }
  *p++ = ':';
  *w = p;
  put_port(w, e->port);
}

/* Copies n bytes at *w. */
static void put(char **w, const char *s, size_t n) {
  memcpy(*w, s, n);
  *w += n;
}

/* Is c left as it is in a URL's userinfo (RFC 3986 unreserved)? */
static int unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/* Percent-encodes s at *w (room for 3 bytes per byte must be reserved). */
static void put_encoded(char **w, const char *s, size_t n) {
  static const char digits[] = "0123456789ABCDEF";
  char *p = *w;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      *p++ = (char)c;
    } else {
      *p++ = '%', *p++ = digits[c >> 4], *p++ = digits[c & 15];
    }
  }
  *w = p;
}

/* Writes "user[:pass]@" at *w when e has a user, percent-encoded for a URL. */
static void put_userinfo(char **w, const char *arena, const resi_pl_entry *e, int url) {
  if (!(e->flags & RESI_PL_HAS_USER)) return;
  int pass = (e->flags & RESI_PL_HAS_PASS) != 0;
  if (url) {
    put_encoded(w, arena + e->user, e->user_len);
    if (pass) *(*w)++ = ':', put_encoded(w, arena + e->pass, e->pass_len);
  } else { /* the common case: plain copies the compiler inlines */
    put(w, arena + e->user, e->user_len);
    if (pass) *(*w)++ = ':', put(w, arena + e->pass, e->pass_len);
  }
  *(*w)++ = '@';
}

/* Writes s as a JSON string at *w (room for 6 bytes per byte + 2 reserved). */
static void put_json_string(char **w, const char *s, size_t n) {
  static const char digits[] = "0123456789abcdef";
  char *p = *w;
  *p++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *p++ = '\\', *p++ = (char)c;
    } else if (c >= 0x20) {
      *p++ = (char)c;
    } else if (c == '\n') {
      *p++ = '\\', *p++ = 'n';
    } else if (c == '\t') {
      *p++ = '\\', *p++ = 't';
    } else if (c == '\r') {
      *p++ = '\\', *p++ = 'r';
    } else {
      *p++ = '\\', *p++ = 'u', *p++ = '0', *p++ = '0', *p++ = digits[c >> 4], *p++ = digits[c & 15];
    }
  }
  *p++ = '"';
  *w = p;
}

int resi_pl_format(resi_buf *out, const char *arena, const resi_pl_entry *e, int fmt, char *why) {
  int user = (e->flags & RESI_PL_HAS_USER) != 0, pass = (e->flags & RESI_PL_HAS_PASS) != 0;
  if (user && (fmt == RESI_PL_LIST || fmt == RESI_PL_USERPASS || fmt == RESI_PL_PROXYCHAINS) &&
      check_plain(arena, e, fmt, why))
    return -1;
  if (fmt == RESI_PL_PROXYCHAINS && e->scheme == RESI_PL_HTTPS) {
    snprintf(why, RESI_PL_REASON, "the proxychains format has no https proxies (http, socks4, socks5 only)");
    return -1;
  }
  /* the most any format needs: json escapes take 6 bytes per byte, and its
   * keys, quotes, scheme and port up to 80 (a short host leaves no slack) */
  size_t need = 2 * (size_t)e->host_len + 96 + 6 * ((size_t)e->user_len + e->pass_len);
  if (out->cap - out->len < need && !resi_buf_reserve(out, need)) {
    snprintf(why, RESI_PL_REASON, "out of memory");
    return -1;
  }
  char *w = out->data + out->len;
  const char *u = arena + e->user, *pw = arena + e->pass;
  switch (fmt) {
  case RESI_PL_LIST:
    put_endpoint(&w, arena, e, 0);
    if (user) *w++ = ':', put(&w, u, e->user_len);
    if (pass) *w++ = ':', put(&w, pw, e->pass_len);
    break;
  case RESI_PL_USERPASS:
    put_userinfo(&w, arena, e, 0);
    put_endpoint(&w, arena, e, 0);
    break;
  case RESI_PL_URL: {
    const char *scheme = resi_pl_scheme_names[e->scheme];
    put(&w, scheme, strlen(scheme));
    put(&w, "://", 3);
    put_userinfo(&w, arena, e, 1);
    put_endpoint(&w, arena, e, 1);
    break;
  }
  case RESI_PL_JSON: {
    *w++ = '{';
    if (e->scheme != RESI_PL_HTTP) {
      put(&w, "\"scheme\":\"", 10);
      put(&w, resi_pl_scheme_names[e->scheme], strlen(resi_pl_scheme_names[e->scheme]));
      put(&w, "\",", 2);
    }
    put(&w, "\"host\":", 7);
    put_json_string(&w, arena + e->host, e->host_len);
    put(&w, ",\"port\":", 8);
    char *colon_at = w;
    resi_pl_entry bare = *e;
    bare.flags &= (uint8_t)~RESI_PL_IPV6;
    bare.host_len = 0;
    put_endpoint(&w, arena, &bare, 0); /* writes ":port" */
    memmove(colon_at, colon_at + 1, (size_t)(w - colon_at - 1));
    w--;
    if (user) put(&w, ",\"username\":", 12), put_json_string(&w, u, e->user_len);
    if (pass) put(&w, ",\"password\":", 12), put_json_string(&w, pw, e->pass_len);
    *w++ = '}';
    break;
  }
  case RESI_PL_HOSTPORT: put_endpoint(&w, arena, e, 0); break;
  case RESI_PL_PROXYCHAINS: {
    const char *type = e->scheme == RESI_PL_SOCKS4A   ? "socks4"
                       : e->scheme == RESI_PL_SOCKS5H ? "socks5"
                                                      : resi_pl_scheme_names[e->scheme];
    put(&w, type, strlen(type));
    *w++ = ' ';
    put(&w, arena + e->host, e->host_len); /* IPv6 bare: proxychains reads it so */
    *w++ = ' ';
    put_port(&w, e->port);
    if (user) *w++ = ' ', put(&w, u, e->user_len);
    if (pass) *w++ = ' ', put(&w, pw, e->pass_len);
    break;
  }
  default: snprintf(why, RESI_PL_REASON, "no such output format"); return -1;
  }
  out->len = (size_t)(w - out->data);
  return 0;
}

/* ---- a rejected line as list.errors shows it ---- */

/* Where a masked copy goes: bytes that do not fit are left out whole. */
typedef struct {
  char *p;
  size_t len, cap;
  int full;
} mask_out;

/* Appends n bytes, or stops the copy when they do not fit. */
static void emit(mask_out *o, const char *s, size_t n) {
  if (o->full || o->len + n > o->cap) {
    o->full = 1;
    return;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

/* Whitespace (written as one space). */
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n'; }

/* The separators a masked text line keeps. */
static int text_sep(char c) {
  return is_space(c) || c == ':' || c == '@' || c == '/' || c == '[' || c == ']' || c == '|';
}

/* Is s[0..n) a scheme or proxychains type name ("raw" too)? */
static int is_type(const char *s, size_t n) {
  return resi_pl_scheme_id(s, n) >= 0 || (n == 3 && (s[0] | 0x20) == 'r' && (s[1] | 0x20) == 'a' && (s[2] | 0x20) == 'w');
}

/* Masks a text line: separators stay, a scheme before "://" and a type
 * first on the line (proxychains) stay, every other field is "***". */
static void mask_text(mask_out *o, const char *s, size_t n) {
  int first = 1;
  for (size_t i = 0; i < n;) {
    if (text_sep(s[i])) {
      emit(o, is_space(s[i]) ? " " : s + i, 1);
      i++;
      continue;
    }
    size_t j = i;
    while (j < n && !text_sep(s[j])) j++;
    int keep = is_type(s + i, j - i) &&
               ((j + 3 <= n && memcmp(s + j, "://", 3) == 0) || (first && j < n && is_space(s[j])));
    emit(o, keep ? s + i : "***", keep ? j - i : 3);
    first = 0;
    i = j;
  }
}

/* Is s[0..n) printable ASCII? */
static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
  return 1;
}

/* The structure a masked JSON object keeps. */
static int json_sep(char c) {
  return is_space(c) || c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':';
}

/* Is the JSON key s[0..n) (quotes included) one whose value is never a
 * credential? */
static int open_key(const char *s, size_t n) {
  return (n == 6 && memcmp(s, "\"host\"", 6) == 0) || (n == 6 && memcmp(s, "\"port\"", 6) == 0) ||
         (n == 8 && memcmp(s, "\"scheme\"", 8) == 0);
}

/* Masks a JSON object's text: keys, structure and the values of "host",
 * "port" and "scheme" stay, every other value is "***" (in quotes for a
 * string). */
static void mask_json(mask_out *o, const char *s, size_t n) {
  int open = 0; /* the value being read belongs to an open key */
  for (size_t i = 0; i < n;) {
    char c = s[i];
    size_t j = i + 1;
    if (c == '"') {
      while (j < n && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
      size_t end = j < n ? j + 1 : n, k = end;
      while (k < n && is_space(s[k])) k++;
      int key = j < n && k < n && s[k] == ':';
      if ((key || open) && printable(s + i, end - i)) emit(o, s + i, end - i);
      else emit(o, end - i == 2 ? "\"\"" : "\"***\"", end - i == 2 ? 2 : 5);
      open = key && open_key(s + i, end - i);
      i = end;
    } else if (json_sep(c)) {
      emit(o, is_space(c) ? " " : s + i, 1);
      if (c == ',' || c == '{' || c == '[') open = 0;
      i = j;
    } else { /* a number, true, false, null or garbage */
      while (j < n && !json_sep(s[j]) && s[j] != '"') j++;
      if (open && printable(s + i, j - i)) emit(o, s + i, j - i);
      else emit(o, "***", 3);
      open = 0;
      i = j;
    }
  }
}

size_t resi_pl_mask(const char *s, size_t n, char *out, size_t cap) {
  mask_out o = {out, 0, cap, 0};
  while (n > 0 && is_space(*s)) s++, n--;
  while (n > 0 && is_space(s[n - 1])) n--;
  if (n > 0 && s[0] == '{') mask_json(&o, s, n);
  else mask_text(&o, s, n);
  return o.len;
}
