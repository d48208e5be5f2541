/* http_request_fuzz.c: libFuzzer target for the server's request assembly
 * (runtime/http_request.c over http-parser). The first byte picks where the
 * input is split into two reads and the limits, so split tokens, pipelined
 * requests and both limits are all exercised. No crash, leak or hang allowed;
 * every outcome must be one of the three states with a sane status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

/* Feeds one chunk, answering every complete request the way the server does. */
static int feed(resi_req *r, const char *data, size_t len) {
  while (len > 0) {
    size_t used = 0;
    resi_req_state st = resi_req_feed(r, data, len, &used);
    if (used > len) abort();
    if (st == RESI_REQ_ERROR) {
      if (r->error_status != 400 && r->error_status != 413 && r->error_status != 431 && r->error_status != 500 &&
          r->error_status != 505) abort();
      return -1;
    }
    if (st == RESI_REQ_COMPLETE) {
      /* touch everything the server would hand to Lua */
      volatile size_t n = strlen(resi_req_method(r)) + strlen(resi_req_url(r)) + r->body.len;
      for (size_t i = 0; i < r->nheaders; i++)
        n += strlen(resi_req_header_name(r, i)) + strlen(resi_req_header_value(r, i));
      (void)n;
      if (r->body.len > r->max_body) abort();
      resi_req_next(r);
    }
    data += used, len -= used;
    if (st == RESI_REQ_MORE) break;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t split = size > 1 ? data[0] % size : 0;
  size_t max_header = data[0] & 1 ? 256 : 16384;
  size_t max_body = data[0] & 2 ? 16 : 65536;
  const char *in = (const char *)data + 1;
  size_t len = size - 1;
  if (split > len) split = len;
  resi_req r;
  resi_req_init(&r, max_header, max_body);
  if (feed(&r, in, split) == 0) feed(&r, in + split, len - split);
  resi_req_free(&r);
  return 0;
}
