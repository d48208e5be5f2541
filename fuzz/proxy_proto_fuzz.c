/* proxy_proto_fuzz.c: libFuzzer target for the sandbox gateways' parsers
 * (runtime/proxy_proto.c): the SOCKS5 greeting, RFC 1929 sub-negotiation and
 * request, and the HTTP proxy request line (CONNECT authority-form and
 * absolute-form targets) after http_request.c has assembled the head. The
 * first byte picks the parser and where the input is cut, so every message is
 * also seen incomplete. No crash, leak or hang; PP_OK must report a length
 * within the input and NUL-terminated, bounded fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"
#include "proxy_proto.h"

/* Checks one SOCKS5 parser's result on p[0..n). */
static void check_socks(int which, const unsigned char *p, size_t n) {
  size_t used = 0;
  const char *why = NULL;
  pp_state st;
  if (which == 0) {
    pp_greeting g;
    st = pp_socks_greeting(p, n, &g, &used, &why);
    if (st == PP_OK && (g.nmethods == 0 || g.nmethods > 255)) abort();
  } else if (which == 1) {
    pp_auth a;
    st = pp_socks_auth(p, n, &a, &used, &why);
    if (st == PP_OK && (strlen(a.user) != a.ulen || strlen(a.pass) != a.plen)) abort();
  } else {
    pp_request r;
    st = pp_socks_request(p, n, &r, &used, &why);
    if (st == PP_OK && (strlen(r.host) >= sizeof r.host || r.port > 65535)) abort();
  }
  if (st == PP_OK && (used == 0 || used > n)) abort();
  if (st == PP_BAD && (!why || !*why)) abort();
}

/* Assembles an HTTP head from the bytes and reads its target. */
static void check_http(const char *p, size_t n) {
  resi_req r;
  resi_req_init(&r, 16384, 1024);
  size_t used = 0;
  if (resi_req_feed(&r, p, n, &used) == RESI_REQ_COMPLETE) {
    const char *url = resi_req_url(&r);
    int connect = strcmp(resi_req_method(&r), "CONNECT") == 0;
    pp_target t;
    const char *why = NULL;
    pp_state st = pp_http_target(url, strlen(url), connect, &t, &why);
    if (st == PP_OK && (t.host[0] == '\0' || t.port == 0 || t.port > 65535 || (!connect && t.path[0] != '/')))
      abort();
    if (st == PP_BAD && (!why || !*why)) abort();
  }
  resi_req_free(&r);
  /* the target parser alone, on the raw bytes as a URL */
  pp_target t;
  const char *why = NULL;
  pp_http_target(p, n, n & 1, &t, &why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int which = data[0] % 4;
  const unsigned char *p = data + 1;
  size_t n = size - 1;
  if (which == 3) {
    check_http((const char *)p, n);
    return 0;
  }
  check_socks(which, p, n);
  size_t cut = n ? (data[0] >> 2) % (n + 1) : 0;
  check_socks(which, p, cut); /* the same message, incomplete */
  return 0;
}
