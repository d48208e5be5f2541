/* http_server.c: resi.server_core, an HTTP/1.1 server on libuv TCP with
 * requests assembled by http_request.c (Debian's http-parser).
 *
 * Each complete request is handed to a Lua function (the dispatcher in
 * lualib/resi/server.lua, which runs the handler in a task) together with an
 * exchange handle; the handler answers through exchange:respond(). A
 * connection reads no further while a request is being answered, so
 * pipelined requests are answered in order. Malformed requests are answered
 * 400 (431, 413 for the limits, 505 for other HTTP versions) and the
 * connection is closed. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"
#include "resi.h"

#define LISTENER_MT "resi.server.listener"
#define EXCHANGE_MT "resi.server.exchange"

typedef struct conn conn;

/* A listening socket and its connections. */
typedef struct {
  uv_tcp_t tcp; /* first member */
  lua_State *L;
  int dispatch_ref; /* function(exchange, request) */
  size_t max_header, max_body;
  int closing;
  conn *conns;
  lua_Integer accepted, requests;
  void **owner;
} listener;

/* One client connection. */
struct conn {
  uv_tcp_t tcp; /* first member */
  listener *srv;
  resi_req req;
  resi_buf pending; /* bytes read but not parsed yet */
  int busy;      /* a request is with Lua, not answered yet */
  int closing;
  void **exchange; /* the Lua exchange handle's slot while busy */
  conn *prev, *next;
  char remote[64];
};

/* A response on its way out: the write request and its bytes. */
typedef struct {
  uv_write_t req;
  conn *c;
  int close_after;
  size_t len;
  char data[]; /* the response bytes */
} out_buf;

static void conn_process(conn *c);
static void conn_read(conn *c);

/* Frees a connection once libuv has closed its socket. */
static void conn_closed(uv_handle_t *h) {
  conn *c = (conn *)h;
  resi_req_free(&c->req);
  resi_buf_free(&c->pending);
  free(c);
}

/* Closes a connection (idempotent); its exchange handle, if any, goes dead. */
static void conn_close(conn *c, int reset) {
  if (c->closing) return;
  c->closing = 1;
  if (c->exchange) *c->exchange = NULL, c->exchange = NULL;
  listener *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else if (s) s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  if (reset) uv_tcp_close_reset(&c->tcp, conn_closed);
  else uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* Write callback: frees the bytes, then closes or reads the next request. */
static void written(uv_write_t *w, int status) {
  out_buf *o = (out_buf *)w;
  conn *c = o->c;
  int close_after = o->close_after;
  free(o);
  if (c->closing) return;
  if (status < 0 || close_after || c->srv == NULL || c->srv->closing) {
    conn_close(c, 0);
    return;
  }
  c->busy = 0;
  resi_req_next(&c->req);
  conn_process(c);
}

/* A response buffer for len bytes (filled by the caller), or NULL after
 * closing the connection when memory runs out. */
static out_buf *out_new(conn *c, size_t len) {
  out_buf *o = malloc(sizeof *o + len);
  if (o == NULL) conn_close(c, 0);
  else o->len = len;
  return o;
}

/* Queues a filled response buffer on the connection (it is freed once
 * written); close_after ends the connection once it is sent. */
static int out_send(conn *c, out_buf *o, int close_after) {
  o->c = c, o->close_after = close_after;
  uv_buf_t buf = uv_buf_init(o->data, (unsigned)o->len);
  if (uv_write(&o->req, (uv_stream_t *)&c->tcp, &buf, 1, written) != 0) {
    free(o);
    conn_close(c, 0);
    return -1;
  }
  return 0;
}

/* Queues bytes on the connection; close_after ends it once they are sent. */
static int conn_send(conn *c, const char *head, size_t head_len, const char *body, size_t body_len, int close_after) {
  out_buf *o = out_new(c, head_len + body_len);
  if (o == NULL) return -1;
  memcpy(o->data, head, head_len);
  if (body_len) memcpy(o->data + head_len, body, body_len);
  return out_send(c, o, close_after);
}

/* The reason phrase for a status code. */
static const char *reason_phrase(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Content Too Large";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Status";
  }
}

/* Answers a request the parser refused, then closes the connection. */
static void conn_refuse(conn *c) {
  char head[512];
  const char *why = c->req.error_reason ? c->req.error_reason : "bad request";
  char body[256];
  int blen = snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
  int status = c->req.error_status ? c->req.error_status : 400;
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n",
                   status, reason_phrase(status), blen);
  c->busy = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  conn_send(c, head, (size_t)n, body, (size_t)blen, 1);
}

/* Pushes the request table of a completed request: resi_req_push's fields
 * and the client's address (remote). */
static void push_request(lua_State *L, conn *c) {
  resi_req_push(L, &c->req); /* stack: req */
  lua_pushstring(L, c->remote);
  lua_setfield(L, -2, "remote");
}

/* Hands a complete request to the Lua dispatcher with a fresh exchange handle. */
static void conn_deliver(conn *c) {
  listener *s = c->srv;
  lua_State *L = s->L;
  s->requests++;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->dispatch_ref); /* stack: dispatch */
  void **ex = resi_new_handle(L, EXCHANGE_MT); /* stack: dispatch, exchange */
  *ex = c;
  c->exchange = ex;
  push_request(L, c); /* stack: dispatch, exchange, req */
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "resi: server dispatcher failed: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!c->closing) conn_close(c, 0);
  }
}

/* Parses what is pending; delivers one request at a time. */
static void conn_process(conn *c) {
  while (!c->busy && !c->closing) {
    size_t used = 0;
    resi_req_state st = RESI_REQ_MORE;
    if (c->pending.len > 0) st = resi_req_feed(&c->req, c->pending.data, c->pending.len, &used);
    resi_buf_drop(&c->pending, used);
    if (st == RESI_REQ_ERROR) {
      conn_refuse(c);
      return;
    }
    if (st == RESI_REQ_COMPLETE) {
      c->busy = 1;
      uv_read_stop((uv_stream_t *)&c->tcp);
      conn_deliver(c);
      return;
    }
    conn_read(c); /* all consumed, the request is incomplete: read more */
    return;
  }
}

/* Allocation callback: reads go straight into the pending buffer. */
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  resi_buf *p = &((conn *)h)->pending;
  if (!resi_buf_reserve(p, suggested < 16384 ? 16384 : suggested)) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS: the connection closes */
    return;
  }
  size_t room = p->cap - p->len;
  *buf = uv_buf_init(p->data + p->len, room > UINT_MAX ? UINT_MAX : (unsigned)room);
}

/* Read callback: appends to pending and parses. */
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn *c = (conn *)stream;
  if (nread < 0) {
    conn_close(c, 0);
    return;
  }
  c->pending.len += (size_t)nread;
  /* a client that keeps sending while we cannot parse more cannot grow memory
   * beyond the limits: the parser refuses oversized headers and bodies */
  conn_process(c);
}

/* Starts reading (conn_process asks for it when it needs more bytes). */
static void conn_read(conn *c) {
  if (!c->closing) uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* A client connected: accept it and start reading. */
static void on_connection(uv_stream_t *server, int status) {
  listener *s = (listener *)server;
  if (status < 0 || s->closing) return;
  conn *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->srv = s;
  resi_req_init(&c->req, s->max_header, s->max_body);
  struct sockaddr_storage addr;
  int alen = sizeof addr;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &alen) == 0) {
    if (addr.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&addr, c->remote, sizeof c->remote);
    else uv_ip4_name((struct sockaddr_in *)&addr, c->remote, sizeof c->remote);
  }
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->accepted++;
  conn_read(c);
}

/* Validates an exchange handle; returns its connection or NULL if it is gone. */
static conn *check_exchange(lua_State *L) {
  void **ex = luaL_checkudata(L, 1, EXCHANGE_MT);
  return *ex;
}

/* Ends an exchange: the handle no longer refers to the connection. */
static void exchange_done(conn *c) {
  if (c->exchange) *c->exchange = NULL;
  c->exchange = NULL;
}

/* Writes v's decimal digits at p; returns the end. */
static char *put_digits(char *p, lua_Integer v) {
  char tmp[RESI_INT_DIGITS], *t = resi_int_digits(tmp + sizeof tmp, v);
  size_t n = (size_t)(tmp + sizeof tmp - t);
  memcpy(p, t, n);
  return p + n;
}

/* Copies n bytes to p; returns the end. */
static char *put_bytes(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

/* Pushes the headers table at idx as (value text, name text) pairs, in
 * lua_next's order, and returns how many; raises on a name or value a
 * header cannot carry. Stack: +2 per header. */
static int push_header_texts(lua_State *L, int idx) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* stack: .., pairs.., key, value */
    luaL_checkstack(L, 3, "resi.server: too many response headers");
    size_t vlen;
    const char *v = luaL_tolstring(L, -1, &vlen); /* stack: .., key, value, vtext */
    lua_replace(L, -2);                            /* stack: .., key, vtext */
    lua_pushvalue(L, -2);                          /* stack: .., key, vtext, key */
    const char *k = lua_tolstring(L, -1, NULL);    /* a copy: next needs the original key */
    if (k == NULL || strpbrk(k, "\r\n:") || memchr(v, '\r', vlen) || memchr(v, '\n', vlen))
      return luaL_error(L, "resi.server: invalid response header %s", k ? k : "(not a string)");
    lua_rotate(L, -3, -1); /* stack: .., vtext, name, key */
    n++;
  }
  return n; /* stack: .., (vtext, name) x n */
}

/* exchange:respond(status, headers, body, head_only) -> true | false, "closed":
 * writes a response; keeps the connection open when the client allows it.
 * The head is written straight into the response buffer (names and values
 * end at a NUL, as "%s" would end them). */
static int exchange_respond(lua_State *L) {
  conn *c = check_exchange(L);
  int status = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  size_t body_len = 0;
  const char *body = luaL_optlstring(L, 4, "", &body_len);
  int head_only = lua_toboolean(L, 5);
  if (status < 100 || status > 999) return luaL_argerror(L, 2, "status must be 100..999");
  if (c == NULL) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "closed");
    return 2;
  }
  int keep = c->req.keep_alive && c->srv && !c->srv->closing; /* no srv: the listener stopped */
  lua_settop(L, 5);
  int n = push_header_texts(L, 3); /* stack: .., (vtext, name) x n */
  const char *reason = reason_phrase(status);
  const char *conn_value = keep ? "keep-alive" : "close";
  size_t head_len = sizeof "HTTP/1.1 000 \r\n" - 1 + strlen(reason);
  for (int i = 0; i < n; i++)
    head_len += strlen(lua_tostring(L, 7 + 2 * i)) + 2 + strlen(lua_tostring(L, 6 + 2 * i)) + 2;
  head_len += sizeof "Content-Length: \r\nConnection: \r\n\r\n" - 1 + RESI_INT_DIGITS + strlen(conn_value);
  size_t send_len = head_only ? 0 : body_len;
  exchange_done(c);
  out_buf *o = out_new(c, head_len + send_len);
  if (o == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  char *p = put_bytes(o->data, "HTTP/1.1 ", 9);
  p = put_digits(p, status);
  *p++ = ' ';
  p = put_bytes(p, reason, strlen(reason));
  p = put_bytes(p, "\r\n", 2);
  for (int i = 0; i < n; i++) {
    const char *k = lua_tostring(L, 7 + 2 * i), *v = lua_tostring(L, 6 + 2 * i);
    p = put_bytes(p, k, strlen(k));
    p = put_bytes(p, ": ", 2);
    p = put_bytes(p, v, strlen(v));
    p = put_bytes(p, "\r\n", 2);
  }
  p = put_bytes(p, "Content-Length: ", 16);
  p = put_digits(p, (lua_Integer)body_len);
  p = put_bytes(p, "\r\nConnection: ", 14);
  p = put_bytes(p, conn_value, strlen(conn_value));
  p = put_bytes(p, "\r\n\r\n", 4);
  if (send_len) p = put_bytes(p, body, send_len);
  o->len = (size_t)(p - o->data);
  lua_pushboolean(L, out_send(c, o, !keep) == 0);
  return 1;
}

/* exchange:reset(): drops the connection with a TCP reset, no response. */
static int exchange_reset(lua_State *L) {
  conn *c = check_exchange(L);
  if (c) {
    exchange_done(c);
    conn_close(c, 1);
  }
  return 0;
}

/* exchange:send_raw(bytes): writes bytes as they are, then closes (for
 * truncated or malformed responses). */
static int exchange_send_raw(lua_State *L) {
  conn *c = check_exchange(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (c) {
    exchange_done(c);
    conn_send(c, data, len, NULL, 0, 1);
  }
  return 0;
}

/* exchange:open() -> is the connection still there to answer on? */
static int exchange_open(lua_State *L) {
  lua_pushboolean(L, check_exchange(L) != NULL);
  return 1;
}

/* __gc of an exchange nobody answered: closes the connection. */
static int exchange_gc(lua_State *L) {
  void **ex = lua_touserdata(L, 1);
  conn *c = *ex;
  if (c) {
    exchange_done(c);
    conn_close(c, 0);
  }
  return 0;
}

/* Checks a listener handle. */
static listener *check_listener(lua_State *L) {
  void **ud = luaL_checkudata(L, 1, LISTENER_MT);
  if (*ud == NULL) luaL_argerror(L, 1, "server is closed");
  return *ud;
}

/* Stops listening; idle connections close now, busy ones after answering. */
static void listener_stop(lua_State *L, listener *s) {
  if (s->closing) return;
  s->closing = 1;
  conn *c = s->conns;
  while (c) {
    conn *next = c->next;
    if (!c->busy) conn_close(c, 0);
    c = next;
  }
  for (c = s->conns; c; c = c->next) c->srv = NULL; /* busy ones outlive the listener */
  s->conns = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, s->dispatch_ref);
  if (s->owner) *s->owner = NULL;
  uv_close((uv_handle_t *)&s->tcp, resi_free_on_close);
}

/* server:close(): graceful stop (see listener_stop). */
static int listener_close(lua_State *L) {
  void **ud = luaL_checkudata(L, 1, LISTENER_MT);
  if (*ud) listener_stop(L, *ud);
  return 0;
}

/* server:address() -> host, port */
static int listener_address(lua_State *L) {
  listener *s = check_listener(L);
  struct sockaddr_storage addr;
  int len = sizeof addr;
  char host[64] = "";
  uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&addr, &len);
  int port;
  if (addr.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&addr, host, sizeof host);
    port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&addr, host, sizeof host);
    port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

/* server:stats() -> {connections=, accepted=, requests=} */
static int listener_stats(lua_State *L) {
  listener *s = check_listener(L);
  lua_Integer open = 0;
  for (conn *c = s->conns; c; c = c->next) open++;
  lua_createtable(L, 0, 3); /* stack: stats */
  resi_set_integer(L, "connections", open);
  resi_set_integer(L, "accepted", s->accepted);
  resi_set_integer(L, "requests", s->requests);
  return 1;
}

/* core.listen(host, port, dispatch, max_header, max_body) -> server | nil, err, code */
static int server_listen(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_Integer max_header = luaL_checkinteger(L, 4);
  lua_Integer max_body = luaL_checkinteger(L, 5);
  struct sockaddr_storage addr;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
    return luaL_argerror(L, 1, "not an IP address");
  void **ud = resi_new_handle(L, LISTENER_MT); /* stack: .., server */
  listener *s = calloc(1, sizeof *s);
  if (s == NULL) return luaL_error(L, "resi.server: out of memory");
  uv_tcp_init(resi_loop(L), &s->tcp);
  int rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->tcp, 511, on_connection);
  if (rc != 0) {
    uv_close((uv_handle_t *)&s->tcp, resi_free_on_close);
    return resi_push_fail(L, uv_err_name(rc), "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
  }
  s->L = resi_main_state(L);
  s->max_header = (size_t)max_header;
  s->max_body = (size_t)max_body;
  lua_pushvalue(L, 3);
  s->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->owner = ud;
  *ud = s;
  return 1;
}

static const luaL_Reg listener_methods[] = {
    {"close", listener_close},
    {"address", listener_address},
    {"stats", listener_stats},
    {NULL, NULL},
};

static const luaL_Reg exchange_methods[] = {
    {"respond", exchange_respond},
    {"reset", exchange_reset},
    {"send_raw", exchange_send_raw},
    {"open", exchange_open},
    {NULL, NULL},
};

int luaopen_resi_server_core(lua_State *L) {
  resi_new_gc_class(L, LISTENER_MT, listener_methods, listener_close);
  resi_new_gc_class(L, EXCHANGE_MT, exchange_methods, exchange_gc);
  lua_newtable(L); /* stack: core */
  lua_pushcfunction(L, server_listen);
  lua_setfield(L, -2, "listen");
  return 1;
}
