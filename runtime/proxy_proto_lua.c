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

/* socks_greeting(bytes) -> methods (a string of method bytes), used */
static int l_socks_greeting(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  pp_greeting g;
  size_t used = 0;
  const char *why = NULL;
  pp_state st = pp_socks_greeting(p, n, &g, &used, &why);
  if (st == PP_MORE) return 0;
  if (st == PP_BAD) return push_bad(L, why);
  lua_pushlstring(L, (const char *)g.methods, g.nmethods);
  lua_pushinteger(L, (lua_Integer)used); /* stack: methods, used */
  return 2;
}

/* socks_auth(bytes) -> user, pass, used */
static int l_socks_auth(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  pp_auth a;
  size_t used = 0;
  const char *why = NULL;
  pp_state st = pp_socks_auth(p, n, &a, &used, &why);
  if (st == PP_MORE) return 0;
  if (st == PP_BAD) return push_bad(L, why);
  lua_pushlstring(L, a.user, a.ulen);
  lua_pushlstring(L, a.pass, a.plen);
  lua_pushinteger(L, (lua_Integer)used); /* stack: user, pass, used */
  return 3;
}

/* socks_request(bytes) -> {cmd=, atyp=, host=, port=}, used */
static int l_socks_request(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  pp_request r;
  size_t used = 0;
  const char *why = NULL;
  pp_state st = pp_socks_request(p, n, &r, &used, &why);
  if (st == PP_MORE) return 0;
  if (st == PP_BAD) return push_bad(L, why);
  lua_createtable(L, 0, 4); /* stack: req */
  resi_set_integer(L, "cmd", r.cmd);
  resi_set_integer(L, "atyp", r.atyp);
  resi_set_integer(L, "port", (lua_Integer)r.port);
  lua_pushstring(L, r.host);
  lua_setfield(L, -2, "host");
  lua_pushinteger(L, (lua_Integer)used); /* stack: req, used */
  return 2;
}

/* Pushes the table of a completed request: method, url, headers (lower-case
 * names; a repeated header keeps its last value), keep_alive, body. */
static void push_head(lua_State *L, resi_req *r) {
  lua_createtable(L, 0, 5); /* stack: head */
  lua_pushstring(L, resi_req_method(r));
  lua_setfield(L, -2, "method");
  lua_pushstring(L, resi_req_url(r));
  lua_setfield(L, -2, "url");
  lua_createtable(L, 0, (int)r->nheaders); /* stack: head, headers */
  for (size_t i = 0; i < r->nheaders; i++) {
    lua_pushstring(L, resi_req_header_value(r, i));
    lua_setfield(L, -2, resi_req_header_name(r, i));
  }
  lua_setfield(L, -2, "headers"); /* stack: head */
  lua_pushboolean(L, r->keep_alive);
  lua_setfield(L, -2, "keep_alive");
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  lua_setfield(L, -2, "body"); /* stack: head */
}

/* http_head(bytes, max_header, max_body) -> head, used | nil | false, why, status */
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
    push_head(L, &r);
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
