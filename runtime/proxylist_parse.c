/* proxylist_parse.c: one text line of a proxy list -> one entry.
 *
 * Forms (DESIGN.md §3, anchors-ecosystem.md Area 3):
 *   list      host:port[:user[:pass]]   (pass may hold ':' and '@')
 *   userpass  [user[:pass]@]host:port    (split at the last '@', then the first ':')
 *   url       scheme://[user[:pass]@]host:port[/]  (credentials percent-decoded)
 *   hostport  host:port
 *   proxychains  type host port [user [pass]]  (proxychains.conf's [ProxyList]:
 *             fields split by spaces or tabs, a bare IPv6 host allowed)
 *   auto      any of the above per line, plus user:pass:host:port and
 *             host:port@user:pass (decided by which side holds a valid port)
 * IPv6 hosts go in [brackets] (zone "%eth0", "%25eth0" in URLs).
 *
 * Annotations. In every form but proxychains the proxy is the line's first
 * whitespace-separated token. What may follow it, after whitespace, is an
 * annotation, and only these are:
 *   - a comment: text starting with '#' or ';' (anything may follow);
 *   - the status columns of public free-proxy lists (clarketm/proxy-list,
 *     spys.me): "CC-A[!][-S][!]" and an optional "+" or "-", as in
 *     "200.2.125.90:8080 AR-N-S! +".
 * A proxy may also carry metadata after a '|' ("host:port|Ireland|Dublin",
 * monosans' geolocation lists) when the whole token is not a proxy.
 * Anything else after the proxy rejects the line: it may be a username or
 * a password ("host:port user pass") that the line's form has no place for,
 * and a field is never dropped without a word.
 *
 * Reasons never quote the line: a line read in the wrong form (or with an
 * unexpected separator) puts a password in any field, the host's included
 * ("h@user|pass:80"), so a reason names the field and what is wrong with it,
 * and the line number says where. */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include "proxylist.h"

const char *const resi_pl_scheme_names[RESI_PL_NSCHEMES] = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
const char *const resi_pl_format_names[RESI_PL_NFORMATS] = {"auto",     "list",     "userpass",   "url",
                                                           "json",     "hostport", "proxychains"};

/* Whitespace that separates a proxy from its annotation. */
static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* ASCII lower case. */
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Value of a hex digit, or -1. */
static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int resi_pl_format_id(const char *name) {
  for (int i = 0; i < RESI_PL_NFORMATS; i++)
    if (strcmp(name, resi_pl_format_names[i]) == 0) return i;
  return -1;
}

int resi_pl_scheme_id(const char *s, size_t n) {
  char low[8];
  if (n == 0 || n >= sizeof low || memchr(s, '\0', n)) return -1; /* "https\0x" is not https */
  for (size_t i = 0; i < n; i++) low[i] = lower(s[i]);
  low[n] = '\0';
  if (strcmp(low, "socks") == 0) return RESI_PL_SOCKS5;
  for (int i = 0; i < RESI_PL_NSCHEMES; i++)
    if (strcmp(low, resi_pl_scheme_names[i]) == 0) return i;
  return -1;
}

/* Says why s[0..n) is not a port (resi_pl_port found it is not). */
static int bad_port(const char *s, size_t n, char *why) {
  if (n == 0) {
    snprintf(why, RESI_PL_REASON, "missing port");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i])) { /* the field may be a password: say what it holds, not what it is */
      snprintf(why, RESI_PL_REASON, memchr(s, '@', n) ? "port is not a number (the field holds a '@': is the line "
                                                        "user:pass@host:port?)"
                                                      : "port is not a number");
      return -1;
    }
  snprintf(why, RESI_PL_REASON, "port is out of range 1-65535");
  return -1;
}

/* resi_pl_port, inlined into this file's parsers. */
static inline int port_of(const char *s, size_t n, char *why) {
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(unsigned char)s[i] - '0';
    if (d > 9) return bad_port(s, n, why);
    if (v < 100000) v = v * 10 + d;
  }
  return v >= 1 && v <= 65535 ? (int)v : bad_port(s, n, why); /* n == 0 leaves v at 0 */
}

int resi_pl_port(const char *s, size_t n, char *why) { return port_of(s, n, why); }

/* Appends n bytes to the arena (room reserved by the caller) and returns
 * their offset in *off. */
static void put(resi_buf *a, const char *s, size_t n, uint32_t *off) {
  *off = (uint32_t)a->len;
  memcpy(a->data + a->len, s, n);
  a->len += n;
}

/* room() when the arena must grow, or may not. */
static int grow(resi_buf *a, size_t n, char *why) {
  if (a->len + n > UINT32_MAX) {
    snprintf(why, RESI_PL_REASON, "list too large (more than 4 GiB of names and credentials)");
    return -1;
  }
  if (!resi_buf_reserve(a, n)) {
    snprintf(why, RESI_PL_REASON, "out of memory");
    return -1;
  }
  return 0;
}

/* Makes room for n more bytes within the 4 GiB an arena may hold: a
 * compare when there is room already (every line but a few). */
static inline int room(resi_buf *a, size_t n, char *why) {
  return a->cap - a->len >= n && a->len + n <= UINT32_MAX ? 0 : grow(a, n, why);
}

/* Checks a dotted IPv4 address strictly (no leading zeros: 010 is octal to some). */
static int check_ipv4(const char *s, size_t n, char *why) {
  int parts = 0;
  size_t i = 0;
  while (i <= n) {
    size_t start = i;
    int v = 0;
    while (i < n && is_digit(s[i]) && i - start < 4) v = v * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || len > 3 || v > 255 || (i < n && s[i] != '.')) {
      snprintf(why, RESI_PL_REASON, "host is not a valid IPv4 address (four numbers 0-255 and dots)");
      return -1;
    }
    if (len > 1 && s[start] == '0') {
      snprintf(why, RESI_PL_REASON, "host is an IPv4 address with a leading zero (octal or decimal?)");
      return -1;
    }
    parts++;
    i++; /* the dot, or past the end */
  }
  if (parts != 4) {
    snprintf(why, RESI_PL_REASON, "host is not a valid IPv4 address (four numbers 0-255 and dots)");
    return -1;
  }
  return 0;
}

/* Checks an IPv6 address with an optional zone ("fe80::1%eth0"). */
static int check_ipv6(const char *s, size_t n, char *why) {
  char addr[64];
  const char *pct = memchr(s, '%', n);
  size_t alen = pct ? (size_t)(pct - s) : n;
  unsigned char bin[16];
  if (alen == 0 || alen >= sizeof addr) goto bad;
  memcpy(addr, s, alen);
  addr[alen] = '\0';
  if (inet_pton(AF_INET6, addr, bin) != 1) goto bad;
  if (pct) {
    if (pct + 1 == s + n) goto bad;
    for (const char *z = pct + 1; z < s + n; z++)
      if (!((*z >= 'a' && *z <= 'z') || (*z >= 'A' && *z <= 'Z') || is_digit(*z) || *z == '.' || *z == '_' ||
            *z == '-' || *z == '~'))
        goto bad;
  }
  return 0;
bad:
  snprintf(why, RESI_PL_REASON, "host is not a valid IPv6 address");
  return -1;
}

/* Checks a DNS name: letters, digits, '-', '_', non-empty labels of <= 63. */
static int check_hostname(const char *s, size_t n, char *why) {
  size_t label = 0;
  const char *fault = "an empty label: '..', or a '.' at an end";
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '.') {
      if (label == 0) goto bad;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_')) {
      fault = "letters, digits, '-', '_' and '.' only";
      goto bad;
    }
    if (++label > 63) {
      fault = "a label longer than 63 characters";
      goto bad;
    }
  }
  if (label == 0) goto bad;
  return 0;
bad:
  snprintf(why, RESI_PL_REASON, "host is not a valid host name (%s)", fault);
  return -1;
}

/* Character classes for host names: 1 letter, 2 digit, 3 '-' or '_', 4 '.'. */
static unsigned char host_class[256];

/* Fills host_class once. */
static void init_classes(void) {
  for (int c = 'a'; c <= 'z'; c++) host_class[c] = host_class[c - 32] = 1;
  for (int c = '0'; c <= '9'; c++) host_class[c] = 2;
  host_class['-'] = host_class['_'] = 3;
  host_class['.'] = 4;
}

/* Do a[0..n) and b[0..n) hold the same bytes? Two overlapping sixteen-byte
 * compares for 16 to 32 bytes (SSE2), where a call to memcmp costs more. */
static int same_bytes(const char *a, const char *b, size_t n) {
#ifdef __SSE2__
  if (n >= 16 && n <= 32) {
    __m128i x = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)a),
                               _mm_loadu_si128((const __m128i *)(const void *)b));
    __m128i y = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(a + n - 16)),
                               _mm_loadu_si128((const __m128i *)(const void *)(b + n - 16)));
    return _mm_movemask_epi8(_mm_and_si128(x, y)) == 0xffff;
  }
#endif
  return memcmp(a, b, n) == 0;
}

/* The last host name or IPv4 address that passed, as given and as stored
 * (lower case): a provider's list repeats one gateway host on every line,
 * so most lines skip the checks. It also says where it was last stored
 * (arena and offset): while those bytes are still it, below the arena's
 * end, a repeat points there instead of storing another copy. One runtime
 * thread, so one cache. */
static struct {
  size_t n;
  const resi_buf *arena;
  size_t at;
  char in[254], out[254];
} last_host;

/* resi_pl_set_host for a host other than the last one: checks it (kept
 * out of line, so the call for a repeated host stays small). */
__attribute__((noinline)) static int set_new_host(const char *s, size_t n, int allow_v6, resi_buf *arena,
                                                  resi_pl_entry *e, char *why) {
  if (n == 0) {
    snprintf(why, RESI_PL_REASON, "empty host");
    return -1;
  }
  if (n > 253) {
    snprintf(why, RESI_PL_REASON, "host longer than 253 characters");
    return -1;
  }
  if (host_class['a'] == 0) init_classes();
  if (room(arena, n, why)) return -1;
  /* the common case in one pass: a host name or IPv4 address, copied lower case */
  char *h = arena->data + arena->len;
  unsigned seen = 0;
  size_t label = 0;
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i], k = host_class[c];
    h[i] = (char)(k == 1 ? (c | 0x20) : c);
    seen |= 1u << k;
    if (k == 4) {
      ok &= label > 0;
      label = 0;
    } else {
      ok &= ++label <= 63;
    }
  }
  if (!ok || label == 0 || (seen & 1u)) { /* an empty or long label, or another character */
    int v6 = memchr(s, ':', n) != NULL;
    if (v6 && !allow_v6) {
      snprintf(why, RESI_PL_REASON, "expected host:port (an IPv6 host goes in [brackets])");
      return -1;
    }
    if (!v6) { /* not a valid name: say why */
      int digits_only = 1;
      for (size_t i = 0; i < n && digits_only; i++) digits_only = is_digit(s[i]) || s[i] == '.';
      if ((digits_only ? check_ipv4(s, n, why) : check_hostname(s, n, why)) == 0)
        snprintf(why, RESI_PL_REASON, "invalid host");
      return -1;
    }
    if (check_ipv6(s, n, why)) return -1;
    const char *zone = memchr(s, '%', n);
    for (size_t i = 0; i < n; i++) h[i] = zone && s + i >= zone ? s[i] : lower(s[i]);
    e->flags |= RESI_PL_IPV6;
  } else if (!(seen & (1u << 1 | 1u << 3)) && check_ipv4(s, n, why)) { /* digits and dots only */
    return -1;
  }
  if (!(e->flags & RESI_PL_IPV6)) {
    memcpy(last_host.in, s, n);
    memcpy(last_host.out, h, n);
    last_host.n = n;
    last_host.arena = arena, last_host.at = arena->len;
  }
  e->host = (uint32_t)arena->len;
  e->host_len = (uint16_t)n;
  arena->len += n;
  return 0;
}

/* resi_pl_set_host, inlined into this file's parsers. */
static inline int set_host(const char *s, size_t n, int allow_v6, resi_buf *arena, resi_pl_entry *e, char *why) {
  if (n == 0 || n != last_host.n || !same_bytes(s, last_host.in, n)) return set_new_host(s, n, allow_v6, arena, e, why);
  e->host_len = (uint16_t)n;
  if (arena == last_host.arena && last_host.at + n <= arena->len &&
      same_bytes(arena->data + last_host.at, last_host.out, n)) { /* the copy stored last is still there */
    e->host = (uint32_t)last_host.at;
    return 0;
  }
  if (room(arena, n, why)) return -1; /* the last host again: copied as it was stored */
  memcpy(arena->data + arena->len, last_host.out, n);
  e->host = (uint32_t)arena->len;
  last_host.arena = arena, last_host.at = arena->len;
  arena->len += n;
  return 0;
}

int resi_pl_set_host(const char *s, size_t n, int allow_v6, resi_buf *arena, resi_pl_entry *e, char *why) {
  return set_host(s, n, allow_v6, arena, e, why);
}

/* Parses host:port or [v6]:port exactly. In a URL the zone separator is
 * written %25. */
static int endpoint(const char *s, size_t n, int in_url, resi_buf *arena, resi_pl_entry *e, char *why) {
  const char *end = s + n, *host, *hend, *port;
  int v6 = 0;
  if (n > 0 && s[0] == '[') {
    const char *rb = memchr(s, ']', n);
    if (rb == NULL) {
      snprintf(why, RESI_PL_REASON, "'[' without ']' in the host");
      return -1;
    }
    host = s + 1, hend = rb, v6 = 1;
    if (rb + 1 == end) {
      snprintf(why, RESI_PL_REASON, "missing port");
      return -1;
    }
    if (rb[1] != ':') {
      snprintf(why, RESI_PL_REASON, "expected ':' and a port after ']'");
      return -1;
    }
    port = rb + 2;
  } else {
    const char *colon = memchr(s, ':', n);
    if (colon == NULL) {
      snprintf(why, RESI_PL_REASON, n ? "missing port" : "empty host");
      return -1;
    }
    host = s, hend = colon, port = colon + 1;
  }
  int p = port_of(port, (size_t)(end - port), why);
  if (p < 0) return -1;
  if (v6 && in_url) { /* "%25" -> "%" in the zone */
    char buf[256];
    size_t hn = (size_t)(hend - host), j = 0;
    if (hn >= sizeof buf) hn = sizeof buf - 1;
    for (size_t i = 0; i < hn; i++) {
      buf[j++] = host[i];
      if (host[i] == '%' && i + 2 < hn && host[i + 1] == '2' && host[i + 2] == '5') i += 2;
    }
    if (resi_pl_set_host(buf, j, 1, arena, e, why)) return -1;
  } else if (set_host(host, (size_t)(hend - host), v6, arena, e, why)) {
    return -1;
  }
  e->port = (uint16_t)p;
  return 0;
}

/* Stores raw credentials (user may not be empty). */
static inline int set_creds(const char *u, size_t un, const char *p, size_t pn, int has_pass, resi_buf *arena,
                     resi_pl_entry *e, char *why) {
  if (un == 0) {
    snprintf(why, RESI_PL_REASON, "empty username");
    return -1;
  }
  put(arena, u, un, &e->user);
  e->user_len = (uint32_t)un;
  e->flags |= RESI_PL_HAS_USER;
  if (has_pass) {
    put(arena, p, pn, &e->pass);
    e->pass_len = (uint32_t)pn;
    e->flags |= RESI_PL_HAS_PASS;
  }
  return 0;
}

/* Percent-decodes s into the arena (a URL's username or password). */
static int decode(const char *s, size_t n, const char *what, resi_buf *arena, uint32_t *off, uint32_t *len,
                  char *why) {
  char *out = arena->data + arena->len; /* room reserved for the whole line */
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hex(s[i + 1]) : -1;
      int lo = i + 2 < n ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        snprintf(why, RESI_PL_REASON, "bad percent-escape in the %s (write %% as %%25)", what);
        return -1;
      }
      c = (char)(hi * 16 + lo);
      if (c == '\0') {
        snprintf(why, RESI_PL_REASON, "%%00 (a NUL byte) in the %s", what);
        return -1;
      }
      i += 2;
    }
    out[j++] = c;
  }
  *off = (uint32_t)arena->len;
  *len = (uint32_t)j;
  arena->len += j;
  return 0;
}

/* scheme://[user[:pass]@]host:port[/] */
static int parse_url(const char *s, size_t n, const char *sep, resi_buf *arena, resi_pl_entry *e, char *why) {
  int scheme = resi_pl_scheme_id(s, (size_t)(sep - s));
  if (scheme < 0) { /* not quoted: "h:1:u:pa://ss" puts a password before the "://" */
    snprintf(why, RESI_PL_REASON, "unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)");
    return -1;
  }
  e->scheme = (uint8_t)scheme;
  const char *a = sep + 3, *end = s + n, *aend = a;
  while (aend < end && *aend != '/' && *aend != '?' && *aend != '#') aend++;
  if (aend < end && !(aend + 1 == end && *aend == '/')) {
    snprintf(why, RESI_PL_REASON, "a proxy URL has no path, query or fragment");
    return -1;
  }
  const char *at = NULL;
  for (const char *q = a; q < aend; q++)
    if (*q == '@') at = q;
  const char *hp = a;
  if (at) {
    const char *colon = memchr(a, ':', (size_t)(at - a));
    const char *uend = colon ? colon : at;
    if (uend == a) {
      snprintf(why, RESI_PL_REASON, "empty username");
      return -1;
    }
    if (decode(a, (size_t)(uend - a), "username", arena, &e->user, &e->user_len, why)) return -1;
    e->flags |= RESI_PL_HAS_USER;
    if (colon) {
      if (decode(colon + 1, (size_t)(at - colon - 1), "password", arena, &e->pass, &e->pass_len, why)) return -1;
      e->flags |= RESI_PL_HAS_PASS;
    }
    hp = at + 1;
  }
  if (memchr(hp, '%', (size_t)(aend - hp)) && hp < aend && *hp != '[') {
    snprintf(why, RESI_PL_REASON, "'%%' in the host");
    return -1;
  }
  return endpoint(hp, (size_t)(aend - hp), 1, arena, e, why);
}

/* Splits userinfo at its first ':' and stores the credentials. */
static int userinfo(const char *s, size_t n, resi_buf *arena, resi_pl_entry *e, char *why) {
  const char *colon = memchr(s, ':', n);
  if (colon == NULL) return set_creds(s, n, NULL, 0, 0, arena, e, why);
  return set_creds(s, (size_t)(colon - s), colon + 1, (size_t)(s + n - colon - 1), 1, arena, e, why);
}

/* [user[:pass]@]host:port; in auto mode also host:port@user:pass. */
static int parse_userpass(const char *s, size_t n, int automatic, resi_buf *arena, resi_pl_entry *e, char *why) {
  const char *at = NULL;
  for (const char *q = s + n; q > s;)
    if (*--q == '@') {
      at = q;
      break;
    }
  if (at == NULL) return endpoint(s, n, 0, arena, e, why);
  size_t mark = arena->len;
  if (endpoint(at + 1, (size_t)(s + n - at - 1), 0, arena, e, why) == 0)
    return userinfo(s, (size_t)(at - s), arena, e, why);
  if (automatic) { /* host:port@user:pass */
    char why2[RESI_PL_REASON];
    const char *first = memchr(s, '@', n);
    arena->len = mark;
    if (endpoint(s, (size_t)(first - s), 0, arena, e, why2) == 0)
      return userinfo(first + 1, (size_t)(s + n - first - 1), arena, e, why);
    arena->len = mark;
  }
  return -1;
}

/* The first three ':' of a token (all of them when fewer), found while its
 * end is looked for. */
typedef struct {
  const char *at[3];
  int n;
} colon_set;

/* Finds the first three ':' in [p, end) (fewer when there are fewer) and
 * returns how many. */
static int colons(const char *p, const char *end, const char *c[3]) {
  int k = 0;
  for (; p < end && k < 3; p++)
    if (*p == ':') c[k++] = p;
  return k;
}

/* host:port[:user[:pass]]; in auto mode also user:pass:host:port. cs
 * holds the token's first ':' (the token may go on after s + n). */
static int parse_list(const char *s, size_t n, int automatic, const colon_set *cs, resi_buf *arena, resi_pl_entry *e,
                      char *why) {
  const char *end = s + n, *p = s, *host, *hend;
  int v6 = 0;
  if (n > 0 && *p == '[') {
    const char *rb = memchr(p, ']', n);
    if (rb == NULL) {
      snprintf(why, RESI_PL_REASON, "'[' without ']' in the host");
      return -1;
    }
    host = p + 1, hend = rb, v6 = 1, p = rb + 1;
    if (p < end && *p != ':') {
      snprintf(why, RESI_PL_REASON, "expected ':' and a port after ']'");
      return -1;
    }
  }
  const char *after_v6[3], *const *colon = cs->at; /* the ':' after the host, the port and the username */
  int found = cs->n;
  if (v6) { /* the token's first ':' are the address's */
    found = colons(p, end, after_v6);
    colon = after_v6;
  } else {
    while (found > 0 && colon[found - 1] >= end) found--; /* the token goes on after a '|' */
    host = s, hend = p = found ? colon[0] : end;
  }
  if (p == end) {
    snprintf(why, RESI_PL_REASON, hend == host ? "empty host" : "missing port (expected host:port:user:pass)");
    return -1;
  }
  p++; /* ':' */
  const char *pend = found > 1 ? colon[1] : end;
  int port = port_of(p, (size_t)(pend - p), why);
  if (port < 0) {
    /* user:pass:host:port, told apart by where the valid port is */
    const char *c[3];
    int k = 0;
    for (const char *q = s; q < end && k < 4; q++)
      if (*q == ':') {
        if (k < 3) c[k] = q;
        k++;
      }
    char why2[RESI_PL_REASON];
    if (automatic && !v6 && k == 3 && resi_pl_port(c[2] + 1, (size_t)(end - c[2] - 1), why2) > 0) {
      size_t mark = arena->len;
      if (endpoint(c[1] + 1, (size_t)(end - c[1] - 1), 0, arena, e, why) == 0 &&
          set_creds(s, (size_t)(c[0] - s), c[0] + 1, (size_t)(c[1] - c[0] - 1), 1, arena, e, why) == 0)
        return 0;
      arena->len = mark;
    }
    return -1;
  }
  if (set_host(host, (size_t)(hend - host), v6, arena, e, why)) return -1;
  e->port = (uint16_t)port;
  if (pend == end) return 0;
  const char *u = pend + 1;
  const char *uend = found > 2 ? colon[2] : NULL;
  if (uend == NULL) return set_creds(u, (size_t)(end - u), NULL, 0, 0, arena, e, why);
  return set_creds(u, (size_t)(uend - u), uend + 1, (size_t)(end - uend - 1), 1, arena, e, why);
}

/* type host port [user [pass]] (proxychains): n is the whole line, trimmed.
 * "raw" (proxychains' direct connection) is refused: it is not a proxy. */
static int parse_proxychains(const char *s, size_t n, resi_buf *arena, resi_pl_entry *e, char *why) {
  const char *f[6], *p = s, *end = s + n;
  size_t len[6];
  int k = 0, control = 0;
  while (p < end && k < 6) { /* a sixth field is only reported */
    while (p < end && is_ws(*p)) p++;
    if (p == end) break;
    f[k] = p;
    while (p < end && !is_ws(*p)) {
      if ((unsigned char)*p < 0x20 || *p == 0x7f) control = 1;
      p++;
    }
    len[k] = (size_t)(p - f[k]);
    k++;
  }
  int scheme = k ? resi_pl_scheme_id(f[0], len[0]) : -1;
  if (k && scheme < 0) {
    if (len[0] == 3 && lower(f[0][0]) == 'r' && lower(f[0][1]) == 'a' && lower(f[0][2]) == 'w')
      snprintf(why, RESI_PL_REASON, "proxy type 'raw' is a direct connection, not a proxy");
    else /* not quoted: a line in another form is one field, credentials and all */
      snprintf(why, RESI_PL_REASON, memchr(f[0], ':', len[0])
                                        ? "unknown proxy type (the first field holds a ':': a host:port line? "
                                          "expected TYPE HOST PORT [USER [PASS]])"
                                        : "unknown proxy type (expected TYPE HOST PORT [USER [PASS]], TYPE "
                                          "http, socks4 or socks5)");
    return -1;
  }
  if (control) {
    snprintf(why, RESI_PL_REASON, "control character in the line");
    return -1;
  }
  if (k < 3 || k > 5) {
    snprintf(why, RESI_PL_REASON, k < 3 ? "expected TYPE HOST PORT [USER [PASS]]"
                                        : "a field after the password (expected TYPE HOST PORT [USER [PASS]])");
    return -1;
  }
  const char *host = f[1];
  size_t hn = len[1];
  int v6 = memchr(host, ':', hn) != NULL;
  if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') host++, hn -= 2, v6 = 1;
  int port = resi_pl_port(f[2], len[2], why);
  if (port < 0 || room(arena, n, why) || resi_pl_set_host(host, hn, v6, arena, e, why)) return -1;
  e->scheme = (uint8_t)scheme;
  e->port = (uint16_t)port;
  if (k >= 4 && set_creds(f[3], len[3], k == 5 ? f[4] : NULL, k == 5 ? len[4] : 0, k == 5, arena, e, why)) return -1;
  return 0;
}

/* ASCII upper case letter? */
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }

/* Is s[0..n) a free-proxy list's status column, "CC-A[!][-S][!]" (CC a
 * country code or nothing, A the anonymity N, A or H, -S HTTPS support, '!'
 * a different outgoing address)? */
static int is_status(const char *s, size_t n) {
  size_t i = n >= 2 && is_upper(s[0]) && is_upper(s[1]) ? 2 : 0;
  if (i + 2 > n || s[i] != '-' || (s[i + 1] != 'N' && s[i + 1] != 'A' && s[i + 1] != 'H')) return 0;
  i += 2;
  if (i < n && s[i] == '!') i++;
  if (i + 2 <= n && s[i] == '-' && s[i + 1] == 'S') i += 2;
  if (i < n && s[i] == '!') i++;
  return i == n;
}

/* Is s[0..n), after whitespace, a comment ('#' or ';' first)? */
static int is_note(const char *s, size_t n) {
  while (n > 0 && is_ws(*s)) s++, n--;
  return n > 0 && (*s == '#' || *s == ';');
}

/* Counts the whitespace-separated fields of s[0..n) and returns the first
 * in *f, *fn (the second in *g, *gn). */
static int fields(const char *s, size_t n, const char **f, size_t *fn, const char **g, size_t *gn) {
  int k = 0;
  for (size_t i = 0; i < n;) {
    while (i < n && is_ws(s[i])) i++;
    if (i == n) break;
    size_t start = i;
    while (i < n && !is_ws(s[i])) i++;
    if (k == 0) *f = s + start, *fn = i - start;
    if (k == 1) *g = s + start, *gn = i - start;
    k++;
  }
  return k;
}

/* Checks what follows the proxy on its line (s[0..n), after the token): an
 * annotation (see the top of the file) or nothing. Returns 0, or -1 with
 * why set, naming how many fields there are, never what they hold. */
static int after_proxy(const char *s, size_t n, const resi_pl_entry *e, char *why) {
  const char *f = NULL, *g = NULL;
  size_t fn = 0, gn = 0;
  int k = fields(s, n, &f, &fn, &g, &gn);
  if (k == 0 || is_note(s, n)) return 0;
  if (is_status(f, fn) && (k == 1 || (k == 2 && gn == 1 && (g[0] == '+' || g[0] == '-')))) return 0;
  if (e->flags & RESI_PL_HAS_USER)
    snprintf(why, RESI_PL_REASON, "%d field%s after the proxy (a note after a proxy starts with '#')", k,
             k == 1 ? "" : "s");
  else
    snprintf(why, RESI_PL_REASON,
             "%d field%s after the proxy (credentials? write host:port:user:pass; a note starts with '#')", k,
             k == 1 ? "" : "s");
  return -1;
}

/* Finds "://" in s. */
static const char *find_sep(const char *s, size_t n) {
  for (const char *q = s; q + 2 < s + n; q++) {
    q = memchr(q, ':', (size_t)(s + n - q));
    if (q == NULL || q + 2 >= s + n) return NULL;
    if (q[1] == '/' && q[2] == '/') return q;
  }
  return NULL;
}

/* find_sep for a token whose first ':' are cs's (the first three, in
 * order; all of them when fewer): the colons it knows are not looked for
 * again. The token may go on after s + n (cs then holds its later ':'). */
static const char *find_sep_in(const char *s, size_t n, const colon_set *cs) {
  const char *end = s + n;
  for (int i = 0; i < cs->n; i++) {
    const char *q = cs->at[i];
    if (q + 2 >= end) return NULL;
    if (q[1] == '/' && q[2] == '/') return q;
  }
  if (cs->n < 3) return NULL; /* the token has no other ':' */
  const char *q = cs->at[2] + 1;
  return find_sep(q, (size_t)(end - q));
}

/* Parses one token (no whitespace) in format fmt; cs holds its first ':';
 * sep is the token's "://" (find_sep) when fmt is URL or AUTO. */
static int parse_raw_token(const char *s, size_t n, int fmt, const colon_set *cs, const char *sep, resi_buf *arena,
                           resi_pl_entry *e, char *why) {
  switch (fmt) {
  case RESI_PL_URL:
    if (sep == NULL) {
      snprintf(why, RESI_PL_REASON, "expected scheme://[user:pass@]host:port");
      return -1;
    }
    return parse_url(s, n, sep, arena, e, why);
  case RESI_PL_USERPASS: return parse_userpass(s, n, 0, arena, e, why);
  case RESI_PL_LIST: return parse_list(s, n, 0, cs, arena, e, why);
  case RESI_PL_HOSTPORT: return endpoint(s, n, 0, arena, e, why);
  default: break;
  }
  if (sep) return parse_url(s, n, sep, arena, e, why);
  if (memchr(s, '@', n)) {
    size_t mark = arena->len;
    if (parse_userpass(s, n, 1, arena, e, why) == 0) return 0;
    /* a password holding '@' in the list form */
    char why2[RESI_PL_REASON];
    arena->len = mark;
    memset(e, 0, sizeof *e);
    e->scheme = RESI_PL_HTTP;
    if (parse_list(s, n, 1, cs, arena, e, why2) == 0) return 0;
    arena->len = mark;
    return -1;
  }
  return parse_list(s, n, 1, cs, arena, e, why);
}

/* Parses one token (no whitespace) in format fmt (cs: its first ':'); an
 * entry whose credentials are the token's bytes as they are (not a URL's)
 * is marked RESI_PL_CLEAN, which the caller clears when the token is not
 * clean. */
static int parse_token(const char *s, size_t n, int fmt, const colon_set *cs, resi_buf *arena, resi_pl_entry *e,
                       char *why) {
  const char *sep = fmt == RESI_PL_URL || fmt == RESI_PL_AUTO ? find_sep_in(s, n, cs) : NULL; /* looked for once */
  int url = fmt == RESI_PL_URL || sep != NULL;
  int rc = parse_raw_token(s, n, fmt, cs, sep, arena, e, why); /* one call: inlined */
  if (rc == 0 && !url) e->flags |= RESI_PL_CLEAN;
  return rc;
}

#ifdef __SSE2__
/* Bit i set when p[i] (of sixteen) is <= ' ' or DEL; *colon gets the bits
 * of the ':'. */
static unsigned stop_mask(const char *p, unsigned *colon) {
  __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
  __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(' ')), x);
  *colon = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')));
  return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f))));
}

/* Adds the ':' of mask m (bit i: at[i]) to cs while it has room. */
static void add_colons(colon_set *cs, const char *at, unsigned m) {
  for (; m && cs->n < 3; m &= m - 1) cs->at[cs->n++] = at + __builtin_ctz(m);
}

/* The bits of m below its lowest set bit (all of them when m is 0). */
static unsigned below_first(unsigned m) { return m ? (m & (0u - m)) - 1 : ~0u; }
#endif

/* The first index in [t, n) whose byte is <= ' ' or DEL, or n; the ':' on
 * the way go to cs (the first three of a token: a list line's fields, split
 * without reading it again). Thirty-two bytes at a time (SSE2), the last
 * sixteen of s read over the ones before rather than byte by byte. */
static size_t stop_byte(const char *s, size_t t, size_t n, colon_set *cs) {
#ifdef __SSE2__
  if (n >= 16) {
    unsigned m, c, c2;
    for (; t + 32 <= n; t += 32) { /* two at a time: one test of both */
      m = stop_mask(s + t, &c) | stop_mask(s + t + 16, &c2) << 16;
      c |= c2 << 16;
      if (m) {
        add_colons(cs, s + t, c & below_first(m));
        return t + (size_t)__builtin_ctz(m);
      }
      if (c) add_colons(cs, s + t, c);
    }
    if (t + 16 <= n) {
      m = stop_mask(s + t, &c);
      if (m) {
        add_colons(cs, s + t, c & below_first(m));
        return t + (size_t)__builtin_ctz(m);
      }
      add_colons(cs, s + t, c);
      t += 16;
    }
    if (t == n) return n;
    size_t skip = t - (n - 16); /* the bytes before t were looked at */
    m = stop_mask(s + n - 16, &c) >> skip;
    add_colons(cs, s + t, (c >> skip) & below_first(m));
    return m ? t + (size_t)__builtin_ctz(m) : n;
  }
#endif
  for (; t < n && (unsigned char)s[t] > ' ' && s[t] != 0x7f; t++)
    if (s[t] == ':' && cs->n < 3) cs->at[cs->n++] = s + t;
  return t;
}

int resi_pl_parse_line(const char *s, size_t n, int fmt, int default_scheme, resi_buf *arena,
                       resi_pl_entry *e, char *why) {
  while (n > 0 && is_ws(*s)) s++, n--;
  while (n > 0 && is_ws(s[n - 1])) n--;
  if (n == 0 || *s == '#' || *s == ';') return 0;
  if (n > RESI_PL_MAX_LINE) {
    snprintf(why, RESI_PL_REASON, "line longer than %d bytes", RESI_PL_MAX_LINE);
    return -1;
  }
  size_t mark = arena->len;
  if (fmt == RESI_PL_PROXYCHAINS) {
    memset(e, 0, sizeof *e);
    if (parse_proxychains(s, n, arena, e, why) == 0) return 1;
    arena->len = mark;
    return -1;
  }
  size_t t = 0;
  int clean = 1;          /* no control byte or DEL in the token */
  colon_set cs = {.n = 0}; /* its first ':' */
  for (;;) { /* the token ends at whitespace; other control bytes and DEL belong to it */
    t = stop_byte(s, t, n, &cs);
    if (t == n || is_ws(s[t])) break;
    if (s[t] == '\0') { /* no proxy client can pass it on */
      snprintf(why, RESI_PL_REASON, "NUL byte in the line");
      return -1;
    }
    clean = 0;
    t++;
  }
  /* decoded credentials never outgrow their text; the host gets its own room */
  if (room(arena, t, why)) return -1;
  memset(e, 0, sizeof *e);
  e->scheme = (uint8_t)default_scheme;
  if (parse_token(s, t, fmt, &cs, arena, e, why) == 0) {
    if (!clean) e->flags &= (uint8_t)~RESI_PL_CLEAN;
    if (after_proxy(s + t, n - t, e, why) == 0) return 1;
    arena->len = mark;
    return -1;
  }
  arena->len = mark;
  if (t < n && find_sep(s, t) && memchr(s + t, '@', n - t) && !is_note(s + t, n - t)) {
    /* "http://bob:my pass@h:1": the URL goes on after the space */
    snprintf(why, RESI_PL_REASON, "whitespace inside a URL (write a space in a username or password as %%20)");
    return -1;
  }
  /* "socks5 host port user pass": a proxy type, then fields (proxychains) */
  if (fmt == RESI_PL_AUTO && t < n && memchr(s, ':', t) == NULL) {
    char why2[RESI_PL_REASON];
    memset(e, 0, sizeof *e);
    int rc = parse_proxychains(s, n, arena, e, why2);
    if (rc == 0) return 1;
    arena->len = mark;
    if (strncmp(why2, "unknown proxy type", 18) != 0) { /* it was one: its reason is the better one */
      memcpy(why, why2, RESI_PL_REASON);
      return -1;
    }
  }
  /* host:port|country|city: metadata after a '|' */
  const char *bar = memchr(s, '|', t);
  if (bar) {
    char why2[RESI_PL_REASON];
    memset(e, 0, sizeof *e);
    e->scheme = (uint8_t)default_scheme;
    if (parse_token(s, (size_t)(bar - s), fmt, &cs, arena, e, why2) == 0 && after_proxy(s + t, n - t, e, why) == 0) {
      if (!clean) e->flags &= (uint8_t)~RESI_PL_CLEAN;
      return 1;
    }
    arena->len = mark;
  }
  return -1;
}
