/* proxy_proto_lua.c: resi.proxy_proto_core, the Lua binding of the gateway
 * parsers (proxy_proto.c) and of the HTTP request head (http_request.c) for
 * resi.sim.gateway_*. Every function takes the bytes read so far and
 * returns what it parsed and how many bytes that was, nil while the message
 * is incomplete, or false and the reason when the bytes are not one. */
#include "host.h"
#include "http_request.h"
#include "proxy_proto.h"

/* Pushes false and why; returns 2. */
static int push_bad(lua_State *L, const char *why) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, why); /* stack: false, why */
  return 2;
}

/* The three SOCKS5 messages, and what their parsers fill. */
typedef enum { SOCKS_GREETING, SOCKS_AUTH, SOCKS_REQUEST } socks_kind;
typedef union {
  pp_greeting greeting;
  pp_auth auth;
  pp_request request;
} socks_msg;

/* Pushes a greeting's methods (a string of method bytes); returns 1. */
static int push_greeting(lua_State *L, const socks_msg *m) {
  lua_pushlstring(L, (const char *)m->greeting.methods, m->greeting.nmethods); /* stack: methods */
  return 1;
}

/* Pushes the user and password of a sub-negotiation; returns 2. */
static int push_auth(lua_State *L, const socks_msg *m) {
  lua_pushlstring(L, m->auth.user, m->auth.ulen);
  lua_pushlstring(L, m->auth.pass, m->auth.plen); /* stack: user, pass */
  return 2;
}

/* Pushes a request as {cmd=, atyp=, host=, port=}; returns 1. */
static int push_request(lua_State *L, const socks_msg *m) {
  const pp_request *r = &m->request;
  lua_createtable(L, 0, 4); /* stack: req */
  resi_set_integer(L, "cmd", r->cmd);
  resi_set_integer(L, "atyp", r->atyp);
  resi_set_integer(L, "port", (lua_Integer)r->port);
  lua_pushstring(L, r->host);
  lua_setfield(L, -2, "host"); /* stack: req */
  return 1;
}

/* The frame of every SOCKS5 binding: parses argument 1 as a message of
 * kind, then returns what push gives and the bytes used, nothing while the
 * message is incomplete, or false and why. */
static int socks_call(lua_State *L, socks_kind kind, int (*push)(lua_State *, const socks_msg *)) {
  size_t n, used = 0;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  socks_msg m;
  const char *why = NULL;
  pp_state st = kind == SOCKS_GREETING ? pp_socks_greeting(p, n, &m.greeting, &used, &why)
                : kind == SOCKS_AUTH   ? pp_socks_auth(p, n, &m.auth, &used, &why)
                                       : pp_socks_request(p, n, &m.request, &used, &why);
  if (st == PP_MORE) return 0;
  if (st == PP_BAD) return push_bad(L, why);
  int nret = push(L, &m);
  lua_pushinteger(L, (lua_Integer)used); /* stack: fields.., used */
  return nret + 1;
}

/* socks_greeting(bytes) -> methods (a string of method bytes), used */
static int l_socks_greeting(lua_State *L) {
  return socks_call(L, SOCKS_GREETING, push_greeting);
}

/* socks_auth(bytes) -> user, pass, used */
static int l_socks_auth(lua_State *L) {
  return socks_call(L, SOCKS_AUTH, push_auth);
}

/* socks_request(bytes) -> {cmd=, atyp=, host=, port=}, used */
static int l_socks_request(lua_State *L) {
  return socks_call(L, SOCKS_REQUEST, push_request);
}

/* http_head(bytes, max_header, max_body) -> head, used | nil | false, why, status
 * head: resi_req_push's table (http_request_lua.c). */
static int l_http_head(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  lua_Integer max_header = luaL_optinteger(L, 2, 16384), max_body = luaL_optinteger(L, 3, 1 << 20);
  luaL_argcheck(L, max_header > 0, 2, "must be > 0");
  luaL_argcheck(L, max_body >= 0, 3, "must be >= 0");
  resi_req r;
  resi_req_init(&r, (size_t)max_header, (size_t)max_body);
  size_t used = 0;
  resi_req_state st = resi_req_feed(&r, p, n, &used);
  int nret = 0;
  if (st == RESI_REQ_COMPLETE) {
    resi_req_push(L, &r);
    lua_pushinteger(L, (lua_Integer)used); /* stack: head, used */
    nret = 2;
  } else if (st == RESI_REQ_ERROR) {
    push_bad(L, r.error_reason ? r.error_reason : "bad request");
    lua_pushinteger(L, r.error_status); /* stack: false, why, status */
    nret = 3;
  }
  resi_req_free(&r);
  return nret;
}

/* http_target(url, connect) -> host, port, path | false, why */
static int l_http_target(lua_State *L) {
  size_t n;
  const char *url = luaL_checklstring(L, 1, &n);
  int connect = lua_toboolean(L, 2);
  static pp_target t; /* 8 kB: kept off the C stack; the loop is single-threaded */
  const char *why = NULL;
  if (pp_http_target(url, n, connect, &t, &why) != PP_OK) return push_bad(L, why);
  lua_pushstring(L, t.host);
  lua_pushinteger(L, (lua_Integer)t.port);
  lua_pushstring(L, t.path); /* stack: host, port, path */
  return 3;
}

static const luaL_Reg funcs[] = {
    {"socks_greeting", l_socks_greeting},
    {"socks_auth", l_socks_auth},
    {"socks_request", l_socks_request},
    {"http_head", l_http_head},
    {"http_target", l_http_target},
    {NULL, NULL},
};

/* Opens resi.proxy_proto_core. */
int luaopen_resi_proxy_proto_core(lua_State *L) {
  luaL_newlib(L, funcs); /* stack: module */
  return 1;
}
