/* http_request.c: request assembly on top of http-parser (see the header).
 *
 * http-parser hands header names and values in pieces, possibly split across
 * reads; they are appended to one arena, each ended by a NUL. The parser is
 * paused at the end of every message so pipelined requests are answered one
 * at a time, in order. */
#include "http_request.h"

#include <string.h>

/* Marks the request as refused with an HTTP status and stops the parser. */
static int refuse(resi_req *r, int status, const char *reason) {
  r->error_status = status;
  r->error_reason = reason;
  return -1;
}

/* Header record i (the records are an array in r->headers). */
static resi_req_header *header_at(const resi_req *r, size_t i) { return (resi_req_header *)r->headers.data + i; }

/* Appends bytes to the arena, counting them against the header limit; the
 * arena stays NUL-terminated. */
static int arena_add(resi_req *r, const char *p, size_t n, int lower) {
  if (n > r->max_header - r->header_bytes) return refuse(r, 431, "request header fields too large");
  r->header_bytes += n;
  resi_buf *a = &r->arena;
  if (!resi_buf_reserve(a, n + 1)) return refuse(r, 500, "out of memory");
  char *dst = a->data + a->len;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    dst[i] = (lower && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
  }
  a->len += n;
  a->data[a->len] = '\0';
  return 0;
}

/* Ends the current arena string (the NUL after it becomes part of it). */
static int arena_end(resi_req *r) {
  resi_buf *a = &r->arena;
  if (!resi_buf_reserve(a, 2)) return refuse(r, 500, "out of memory");
  a->data[a->len++] = '\0';
  a->data[a->len] = '\0';
  return 0;
}

/* Starts a header record whose name begins at the arena's end. */
static int header_begin(resi_req *r) {
  resi_req_header h = {r->arena.len, 0};
  if (!resi_buf_add(&r->headers, &h, sizeof h)) return refuse(r, 500, "out of memory");
  r->nheaders++;
  return 0;
}

/* The request a parser callback is assembling. */
static resi_req *from(http_parser *p) { return p->data; }

/* on_message_begin: a new request starts. */
static int on_begin(http_parser *p) {
  resi_req *r = from(p);
  r->arena.len = 0, r->headers.len = 0, r->nheaders = 0, r->body.len = 0, r->header_bytes = 0;
  r->in_value = 0, r->complete = 0;
  r->url = 0;
  return 0;
}

/* on_url: pieces of the request target. */
static int on_url(http_parser *p, const char *at, size_t n) { return arena_add(from(p), at, n, 0); }

/* on_header_field: a piece of a header name; a new name after a value
 * starts a new header. */
static int on_field(http_parser *p, const char *at, size_t n) {
  resi_req *r = from(p);
  if (r->nheaders == 0 || r->in_value) {
    if (arena_end(r) != 0 || header_begin(r) != 0) return -1; /* ends the URL or the previous value */
    r->in_value = 0;
  }
  return arena_add(r, at, n, 1);
}

/* on_header_value: a piece of a header value. */
static int on_value(http_parser *p, const char *at, size_t n) {
  resi_req *r = from(p);
  if (!r->in_value) {
    if (arena_end(r) != 0) return -1; /* ends the name */
    header_at(r, r->nheaders - 1)->value = r->arena.len;
    r->in_value = 1;
  }
  return arena_add(r, at, n, 0);
}

/* on_headers_complete: checks the announced body size early. */
static int on_headers(http_parser *p) {
  resi_req *r = from(p);
  if (arena_end(r) != 0) return -1;
  if (p->http_major != 1) return refuse(r, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
  if (r->nheaders > 0 && !r->in_value) header_at(r, r->nheaders - 1)->value = r->arena.len - 1;
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->max_body)
    return refuse(r, 413, "request body too large");
  return 0;
}

/* on_body: pieces of the body (chunked bodies arrive decoded). */
static int on_body(http_parser *p, const char *at, size_t n) {
  resi_req *r = from(p);
  if (n > r->max_body - r->body.len) return refuse(r, 413, "request body too large");
  if (!resi_buf_add(&r->body, at, n)) return refuse(r, 500, "out of memory");
  return 0;
}

/* on_message_complete: pauses so the caller can answer this request first. */
static int on_complete(http_parser *p) {
  resi_req *r = from(p);
  r->complete = 1;
  r->keep_alive = http_should_keep_alive(p);
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

void resi_req_init(resi_req *r, size_t max_header, size_t max_body) {
  memset(r, 0, sizeof *r);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  r->max_header = max_header;
  r->max_body = max_body;
}

void resi_req_free(resi_req *r) {
  resi_buf_free(&r->arena);
  resi_buf_free(&r->headers);
  resi_buf_free(&r->body);
}

resi_req_state resi_req_feed(resi_req *r, const char *data, size_t len, size_t *consumed) {
  size_t n = http_parser_execute(&r->parser, &settings, data, len);
  *consumed = n;
  enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
  if (r->complete) return RESI_REQ_COMPLETE; /* paused (HPE_PAUSED) after one message */
  if (r->error_status) return RESI_REQ_ERROR;
  if (err != HPE_OK || r->parser.upgrade) {
    r->error_status = 400;
    r->error_reason = r->parser.upgrade ? "protocol upgrades are not supported" : http_errno_description(err);
    return RESI_REQ_ERROR;
  }
  return RESI_REQ_MORE;
}

void resi_req_next(resi_req *r) {
  r->complete = 0;
  http_parser_pause(&r->parser, 0);
}

const char *resi_req_method(const resi_req *r) { return http_method_str((enum http_method)r->parser.method); }
const char *resi_req_url(const resi_req *r) { return r->arena.data + r->url; }
const char *resi_req_header_name(const resi_req *r, size_t i) { return r->arena.data + header_at(r, i)->name; }
const char *resi_req_header_value(const resi_req *r, size_t i) { return r->arena.data + header_at(r, i)->value; }
