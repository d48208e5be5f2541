/* proxy_proto.h: the wire parsers of the sandbox's proxy gateways (resi sim):
 * SOCKS5 (RFC 1928 greeting and request, RFC 1929 username/password) and the
 * target of an HTTP proxy request (CONNECT host:port, absolute-form URLs).
 * No sockets and no Lua: the gateway feeds them what it has read so far, the
 * fuzz target feeds them anything. Each returns PP_MORE while the message is
 * incomplete, PP_OK with *used set to its length, or PP_BAD with a reason. */
#ifndef RESI_PROXY_PROTO_H
#define RESI_PROXY_PROTO_H

#include <stddef.h>

typedef enum { PP_BAD = -1, PP_MORE = 0, PP_OK = 1 } pp_state;

/* A SOCKS5 greeting: VER 5, NMETHODS, METHODS. */
typedef struct {
  unsigned char methods[255];
  size_t nmethods;
} pp_greeting;

/* An RFC 1929 username/password sub-negotiation (each up to 255 bytes,
 * NUL-terminated here). */
typedef struct {
  char user[256], pass[256];
  size_t ulen, plen;
} pp_auth;

/* A SOCKS5 request: CMD, and the destination as text (an IPv4 or IPv6
 * address, or a domain name of 1..255 bytes without NUL) and port. */
typedef struct {
  int cmd;  /* 1 CONNECT, 2 BIND, 3 UDP ASSOCIATE */
  int atyp; /* 1 IPv4, 3 domain, 4 IPv6 */
  char host[256];
  unsigned port;
} pp_request;

/* A proxy request's target: host (brackets of an IPv6 literal removed),
 * port (the scheme's default when absent) and, for absolute-form, the
 * origin-form path with query ("/" when empty). */
typedef struct {
  char host[256];
  unsigned port;
  char path[8192];
} pp_target;

pp_state pp_socks_greeting(const unsigned char *p, size_t n, pp_greeting *g, size_t *used, const char **why);
pp_state pp_socks_auth(const unsigned char *p, size_t n, pp_auth *a, size_t *used, const char **why);
pp_state pp_socks_request(const unsigned char *p, size_t n, pp_request *r, size_t *used, const char **why);

/* Reads the target of an HTTP proxy request: connect = 1 for CONNECT's
 * authority-form (host:port, port required), else an absolute http:// URL.
 * PP_OK or PP_BAD (never PP_MORE: the URL is whole). */
pp_state pp_http_target(const char *url, size_t len, int connect, pp_target *t, const char **why);

#endif
