/* http_request.h: assembles HTTP/1.x requests from bytes with Debian's
 * http-parser, with limits on header and body size. No sockets and no Lua
 * (but resi_req_push, in http_request_lua.c): the server feeds it what it
 * reads, the fuzz target feeds it anything. */
#ifndef RESI_HTTP_REQUEST_H
#define RESI_HTTP_REQUEST_H

#include <stddef.h>

#include <http_parser.h>

#include "lutil.h"

typedef enum {
  RESI_REQ_MORE,     /* all bytes consumed, the request is not complete yet */
  RESI_REQ_COMPLETE, /* one request is complete; *consumed says where it ended */
  RESI_REQ_ERROR,    /* the bytes are not an acceptable request: answer error_status */
} resi_req_state;

/* One header: name lower-cased, both NUL-terminated inside the arena. */
typedef struct {
  size_t name, value; /* offsets into the arena */
} resi_req_header;

typedef struct {
  http_parser parser;
  size_t max_header; /* request line + headers, bytes (431 beyond) */
  size_t max_body;   /* bytes (413 beyond) */

  /* the request being assembled */
  resi_buf arena;   /* url, header names and values, NUL-separated */
  size_t url;       /* offset of the URL in the arena */
  resi_buf headers; /* resi_req_header records */
  size_t nheaders;
  resi_buf body;
  size_t header_bytes; /* counted against max_header */
  int in_value;        /* the last header callback was a value */
  int complete;
  int keep_alive;

  int error_status;        /* 400, 413, 431 or 505 when state is RESI_REQ_ERROR */
  const char *error_reason;
} resi_req;

/* Prepares a parser with the given limits. */
void resi_req_init(resi_req *r, size_t max_header, size_t max_body);

/* Frees the buffers. */
void resi_req_free(resi_req *r);

/* Feeds bytes; sets *consumed to how many were used. After COMPLETE, read
 * the request, call resi_req_next, then feed the rest of the bytes. */
resi_req_state resi_req_feed(resi_req *r, const char *data, size_t len, size_t *consumed);

/* Forgets the completed request and gets ready for the next one on the
 * same connection. */
void resi_req_next(resi_req *r);

/* Accessors for a completed request. */
const char *resi_req_method(const resi_req *r);
const char *resi_req_url(const resi_req *r);
const char *resi_req_header_name(const resi_req *r, size_t i);
const char *resi_req_header_value(const resi_req *r, size_t i);

/* Pushes the table of a completed request, the one form every Lua caller
 * gets: method, url, headers (lower-case names, trailing spaces and tabs
 * removed, a repeated header's values joined with ", "), body,
 * http_version ("1.1") and keep_alive; room is left for a caller's own
 * fields. Defined in http_request_lua.c, the file's only Lua code. */
void resi_req_push(lua_State *L, const resi_req *r);

#endif
