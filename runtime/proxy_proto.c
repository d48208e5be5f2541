/* proxy_proto.c: SOCKS5 and HTTP proxy-target parsing (see the header).
 * The HTTP request head itself is assembled by http_request.c; here only its
 * target is read, with http-parser's URL parser. */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

/* Sets the reason and returns PP_BAD. */
static pp_state bad(const char **why, const char *reason) {
  *why = reason;
  return PP_BAD;
}

/* The start every SOCKS5 message shares: a version byte (PP_BAD with
 * reason when it is not version), then at least need bytes in all (PP_MORE
 * until they are there). PP_OK when both hold. */
static pp_state start(const unsigned char *p, size_t n, unsigned char version, size_t need, const char **why,
                      const char *reason) {
  if (n < 1) return PP_MORE;
  if (p[0] != version) return bad(why, reason);
  return n < need ? PP_MORE : PP_OK;
}

pp_state pp_socks_greeting(const unsigned char *p, size_t n, pp_greeting *g, size_t *used, const char **why) {
  pp_state st = start(p, n, 5, 2, why, "not SOCKS version 5");
  if (st != PP_OK) return st;
  size_t k = p[1];
  if (k == 0) return bad(why, "SOCKS5 greeting offers no methods");
  if (n < 2 + k) return PP_MORE;
  memcpy(g->methods, p + 2, k);
  g->nmethods = k;
  *used = 2 + k;
  return PP_OK;
}

pp_state pp_socks_auth(const unsigned char *p, size_t n, pp_auth *a, size_t *used, const char **why) {
  pp_state st = start(p, n, 1, 2, why, "not RFC 1929 username/password version 1");
  if (st != PP_OK) return st;
  size_t ulen = p[1];
  if (n < 2 + ulen + 1) return PP_MORE;
  size_t plen = p[2 + ulen];
  if (n < 3 + ulen + plen) return PP_MORE;
  if (memchr(p + 2, 0, ulen) || memchr(p + 3 + ulen, 0, plen)) return bad(why, "NUL byte in SOCKS5 credentials");
  memcpy(a->user, p + 2, ulen);
  a->user[ulen] = '\0';
  memcpy(a->pass, p + 3 + ulen, plen);
  a->pass[plen] = '\0';
  a->ulen = ulen, a->plen = plen;
  *used = 3 + ulen + plen;
  return PP_OK;
}

pp_state pp_socks_request(const unsigned char *p, size_t n, pp_request *r, size_t *used, const char **why) {
  pp_state st = start(p, n, 5, 4, why, "not SOCKS version 5");
  if (st != PP_OK) return st;
  if (p[2] != 0) return bad(why, "SOCKS5 request: reserved byte is not 0");
  r->cmd = p[1], r->atyp = p[3];
  size_t addr;
  if (r->atyp == 1) {
    addr = 4;
  } else if (r->atyp == 4) {
    addr = 16;
  } else if (r->atyp == 3) {
    if (n < 5) return PP_MORE;
    addr = 1 + (size_t)p[4];
    if (p[4] == 0) return bad(why, "SOCKS5 request: empty domain name");
  } else {
    return bad(why, "SOCKS5 request: unknown address type");
  }
  if (n < 4 + addr + 2) return PP_MORE;
  const unsigned char *a = p + 4;
  if (r->atyp == 1) {
    if (!inet_ntop(AF_INET, a, r->host, sizeof r->host)) return bad(why, "SOCKS5 request: bad IPv4 address");
  } else if (r->atyp == 4) {
    if (!inet_ntop(AF_INET6, a, r->host, sizeof r->host)) return bad(why, "SOCKS5 request: bad IPv6 address");
  } else {
    size_t len = a[0];
    if (memchr(a + 1, 0, len)) return bad(why, "SOCKS5 request: NUL byte in domain name");
    memcpy(r->host, a + 1, len);
    r->host[len] = '\0';
  }
  r->port = ((unsigned)a[addr] << 8) | a[addr + 1];
  *used = 4 + addr + 2;
  return PP_OK;
}

/* Copies URL field f into dst (size cap) or fails. */
static int copy_field(const char *url, const struct http_parser_url *u, int f, char *dst, size_t cap) {
  size_t len = u->field_data[f].len;
  if (len >= cap) return 0;
  memcpy(dst, url + u->field_data[f].off, len);
  dst[len] = '\0';
  return 1;
}

pp_state pp_http_target(const char *url, size_t len, int connect, pp_target *t, const char **why) {
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (memchr(url, 0, len)) return bad(why, "NUL byte in request target");
  if (http_parser_parse_url(url, len, connect, &u) != 0)
    return bad(why, connect ? "CONNECT target must be host:port" : "request target must be an absolute http:// URL");
  if (!(u.field_set & (1 << UF_HOST))) return bad(why, "request target has no host");
  if (!copy_field(url, &u, UF_HOST, t->host, sizeof t->host)) return bad(why, "request target host too long");
  if (t->host[0] == '\0') return bad(why, "request target has an empty host");
  t->path[0] = '\0';
  if (connect) {
    t->port = u.port;
    if (t->port == 0) return bad(why, "CONNECT target port must be 1..65535");
    return PP_OK;
  }
  if (!(u.field_set & (1 << UF_SCHEMA))) return bad(why, "request target must be an absolute http:// URL");
  char scheme[16];
  if (!copy_field(url, &u, UF_SCHEMA, scheme, sizeof scheme) || strcasecmp(scheme, "http") != 0)
    return bad(why, "only http:// URLs can be requested through the proxy (use CONNECT for others)");
  t->port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
  if (t->port == 0) return bad(why, "request target port must be 1..65535");
  size_t off = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].off : len;
  if (u.field_set & (1 << UF_FRAGMENT)) len = u.field_data[UF_FRAGMENT].off - 1;
  if (!(u.field_set & (1 << UF_PATH)) && (u.field_set & (1 << UF_QUERY))) off = u.field_data[UF_QUERY].off - 1;
  size_t plen = off < len ? len - off : 0;
  int slash = plen == 0 || url[off] != '/';
  if (plen + (size_t)slash >= sizeof t->path) return bad(why, "request target path too long");
  if (slash) t->path[0] = '/';
  memcpy(t->path + slash, url + off, plen);
  t->path[plen + (size_t)slash] = '\0';
  return PP_OK;
}
