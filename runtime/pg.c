/* pg.c: resi.pg_core, a non-blocking PostgreSQL client on libpq driven by
 * the host's libuv loop.
 *
 * Why not the bindings Debian ships: lua-sql-postgres 2.6.0 (LuaSQL)
 * connects with PQconnectdb and runs every statement with PQexec, and
 * lua-dbi-postgresql 0.7.2 (LuaDBI) uses PQconnectdb and PQexecParams /
 * PQexecPrepared: all of them block until the server answers, so one slow
 * query (or a dead server until TCP gives up) would stall every task,
 * timer and HTTP transfer in the process. LuaSQL also has no bound
 * parameters at all (conn:escape splices values into SQL text).
 *
 * Here every wait is on the loop: a connection is started with
 * PQconnectStartParams and advanced by PQconnectPoll whenever a uv_poll on
 * PQsocket says so (names are resolved by libuv in Lua first and handed to
 * libpq as hostaddr, so libpq never calls getaddrinfo); a query is sent
 * with PQsendQueryParams on a non-blocking connection, PQflush runs while
 * the socket is writable, PQconsumeInput / PQisBusy / PQgetResult run when
 * it is readable. The task that asked waits and is woken through resi_wake.
 * Cancelling a query copies the cancel key (PQgetCancel, no I/O), runs the
 * blocking PQcancel on libuv's thread pool (libpq 15 has no non-blocking
 * cancel) and closes the connection at once.
 *
 * Parsing the connection string (URL or key=value) is libpq's own
 * (PQconninfoParse); nothing here parses text from the user except result
 * values, which are converted with strtoll/strtod by type OID.
 *
 * Policy (FIFO of tasks, transactions, timeouts, reconnecting) is in
 * lualib/resi/pg.lua; this file runs one operation at a time per
 * connection. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "resi.h"

#define CONN_MT "resi.pg.conn_core"
#define NULL_MT "resi.pg.null"
#define NULL_KEY "resi.pg.null_value"
#define MAX_PARAMS 65535 /* the protocol's limit (a 16-bit count) */

/* Type OIDs decoded to Lua numbers and booleans (pg_type.dat). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

enum { OP_NONE, OP_CONNECT, OP_QUERY };

/* A connection: the userdata itself. The uv_poll is allocated apart (freed
 * in its close callback), so the userdata may be collected at any time
 * after conn_shut. */
typedef struct {
  PGconn *pg;       /* NULL once closed */
  uv_poll_t *poll;  /* the watcher of PQsocket, NULL when none */
  int events;       /* what poll watches */
  int op;           /* the operation in flight (OP_*) */
  int dead;         /* the connection is lost: every later query fails */
  int task_ref;     /* the waiting task, LUA_NOREF when none */
  lua_Integer token;
  PGresult *res;    /* the result kept while a query's results drain */
  lua_State *L;     /* the main thread */
  uv_loop_t *loop;
} pg_conn;

/* A cancel request run on the thread pool. */
typedef struct {
  uv_work_t work; /* first member: callbacks cast the request back */
  PGcancel *cancel;
} pg_cancel_req;

static void on_poll(uv_poll_t *handle, int status, int events);

/* ---- helpers ---------------------------------------------------------- */

/* Pushes libpq's last error of c as one line: trailing newlines dropped,
 * inner ones (libpq's hints) joined with "; ". [-0, +1] */
static void push_pq_error(lua_State *L, const char *text) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) n--;
  for (size_t i = 0; i < n; i++) {
    if (text[i] == '\n') {
      luaL_addstring(&b, "; ");
      while (i + 1 < n && (text[i + 1] == '\t' || text[i + 1] == ' ')) i++;
    } else {
      luaL_addchar(&b, text[i]);
    }
  }
  if (n == 0) luaL_addstring(&b, "unknown libpq error");
  luaL_pushresult(&b); /* stack: .., message */
}

/* Pushes nil, libpq's message and code; returns 3. [-0, +3] */
static int push_fail(lua_State *L, const char *code, const char *text) {
  lua_pushnil(L);
  push_pq_error(L, text);
  lua_pushstring(L, code); /* stack: .., nil, message, code */
  return 3;
}

/* Stops watching and closes the poll handle (before libpq may close the
 * fd, so libuv has dropped it from epoll). */
static void poll_drop(pg_conn *c) {
  if (c->poll == NULL) return;
  uv_close((uv_handle_t *)c->poll, resi_free_on_close);
  c->poll = NULL, c->events = 0;
}

/* Watches PQsocket for events; a new handle when asked (fresh), since
 * libpq may close and reopen its socket, even under the same number,
 * during the connect. The handle holds the loop only while an operation
 * waits. Returns 0, or a libuv error. */
static int poll_watch(pg_conn *c, int events, int fresh) {
  if (fresh) poll_drop(c);
  if (c->poll == NULL) {
    int fd = PQsocket(c->pg);
    if (fd < 0) return UV_EBADF;
    uv_poll_t *p = malloc(sizeof *p);
    if (p == NULL) return UV_ENOMEM;
    int rc = uv_poll_init_socket(c->loop, p, fd);
    if (rc != 0) {
      free(p);
      return rc;
    }
    p->data = c;
    c->poll = p, c->events = 0;
  }
  if (events != c->events) {
    int rc = uv_poll_start(c->poll, events, on_poll);
    if (rc != 0) return rc;
    c->events = events;
  }
  if (c->op != OP_NONE) uv_ref((uv_handle_t *)c->poll);
  else uv_unref((uv_handle_t *)c->poll);
  return 0;
}

/* Closes the watcher and the libpq connection, and frees a held result. */
static void conn_shut(pg_conn *c) {
  poll_drop(c);
  if (c->res) PQclear(c->res), c->res = NULL;
  if (c->pg) PQfinish(c->pg), c->pg = NULL;
  c->dead = 1;
}

/* Ends the operation in flight: wakes its task with the nargs values on
 * top of L's stack, after the connection is back to idle watching. */
static void op_finish(pg_conn *c, int nargs) {
  lua_State *L = c->L;
  int task_ref = c->task_ref;
  c->op = OP_NONE, c->task_ref = LUA_NOREF;
  if (c->dead) conn_shut(c);
  else if (poll_watch(c, UV_READABLE, 0) != 0) conn_shut(c); /* idle: notice a close by the server */
  if (task_ref == LUA_NOREF) {
    lua_pop(L, nargs);
    return;
  }
  resi_wake(L, task_ref, c->token, nargs);
}

/* Ends the operation with a connection failure: the connection is dead. */
static void op_fail_connection(pg_conn *c, const char *text) {
  c->dead = 1;
  op_finish(c, push_fail(c->L, "connection", text));
}

/* Drops the operation's task without waking it (a cancel, a __gc). */
static void op_forget(pg_conn *c) {
  if (c->task_ref != LUA_NOREF) luaL_unref(c->L, LUA_REGISTRYINDEX, c->task_ref);
  c->task_ref = LUA_NOREF, c->op = OP_NONE;
}

/* ---- results ---------------------------------------------------------- */

/* Pushes one field's value decoded by its type OID. [-0, +1] */
static void push_value(lua_State *L, Oid type, const char *v, int len) {
  char *end;
  switch (type) {
  case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: {
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno == 0 && *end == '\0') {
      lua_pushinteger(L, (lua_Integer)n);
      return;
    }
    break;
  }
  case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC: {
    if (lua_stringtonumber(L, v) != 0) return; /* "12" -> integer, "1.5" -> float */
    double d = strtod(v, &end);                /* NaN, Infinity, -Infinity */
    if (end != v && *end == '\0') {
      lua_pushnumber(L, d);
      return;
    }
    break;
  }
  case OID_BOOL:
    lua_pushboolean(L, v[0] == 't');
    return;
  default: break;
  }
  lua_pushlstring(L, v, (size_t)len); /* text, json, timestamps, out-of-range numerics */
}

/* Pushes a result as an array of rows keyed by column name, with
 * `columns` (the names) and `affected` (PQcmdTuples, when any). [-0, +1] */
static void push_result(lua_State *L, PGresult *res) {
  int rows = PQntuples(res), cols = PQnfields(res);
  lua_createtable(L, rows, 2); /* stack: result */
  lua_createtable(L, cols, 0); /* stack: result, columns */
  for (int j = 0; j < cols; j++) {
    lua_pushstring(L, PQfname(res, j));
    lua_rawseti(L, -2, j + 1);
  }
  for (int i = 0; i < rows; i++) {
    lua_createtable(L, 0, cols); /* stack: result, columns, row */
    for (int j = 0; j < cols; j++) {
      if (PQgetisnull(res, i, j)) continue;
      lua_rawgeti(L, -2, j + 1); /* stack: result, columns, row, name */
      push_value(L, PQftype(res, j), PQgetvalue(res, i, j), PQgetlength(res, i, j));
      lua_rawset(L, -3); /* stack: result, columns, row */
    }
    lua_rawseti(L, -3, i + 1); /* stack: result, columns */
  }
  lua_setfield(L, -2, "columns"); /* stack: result */
  lua_pushstring(L, PQcmdStatus(res));
  lua_setfield(L, -2, "command"); /* stack: result */
  const char *affected = PQcmdTuples(res);
  if (affected && affected[0]) {
    resi_set_integer(L, "affected", (lua_Integer)strtoll(affected, NULL, 10));
  }
}

/* Pushes nil, the server's message and its SQLSTATE for an error result;
 * "connection" instead when the connection is gone with it. [-0, +3] */
static int push_result_error(lua_State *L, pg_conn *c, PGresult *res) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  if (PQstatus(c->pg) == CONNECTION_BAD) c->dead = 1;
  lua_pushnil(L);
  if (msg) lua_pushstring(L, msg);
  else push_pq_error(L, PQresultErrorMessage(res)); /* stack: nil, message */
  lua_pushstring(L, c->dead || state == NULL ? "connection" : state);
  return 3;
}

/* Ends a query with what its results gave. */
static void query_done(pg_conn *c) {
  lua_State *L = c->L;
  PGresult *res = c->res;
  c->res = NULL;
  int nargs;
  if (res == NULL) {
    nargs = push_fail(L, "connection", PQerrorMessage(c->pg));
    c->dead = 1;
  } else {
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) {
      push_result(L, res);
      nargs = 1;
    } else {
      nargs = push_result_error(L, c, res);
    }
    PQclear(res);
  }
  op_finish(c, nargs);
}

/* Reads what the server sent; ends the query when its last result is in.
 * Of several results the first error wins, else the last one is kept. */
static void query_read(pg_conn *c) {
  if (!PQconsumeInput(c->pg)) {
    op_fail_connection(c, PQerrorMessage(c->pg));
    return;
  }
  while (!PQisBusy(c->pg)) {
    PGresult *res = PQgetResult(c->pg);
    if (res == NULL) {
      query_done(c);
      return;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      PQclear(res);
      op_fail_connection(c, "COPY is not supported by resi.pg");
      return;
    }
    int keep_old = c->res && PQresultStatus(c->res) == PGRES_FATAL_ERROR;
    if (keep_old) {
      PQclear(res);
    } else {
      if (c->res) PQclear(c->res);
      c->res = res;
    }
  }
}

/* Sends what libpq has buffered; watches for writability while some is
 * left. */
static void query_flush(pg_conn *c) {
  int rc = PQflush(c->pg);
  if (rc < 0) {
    op_fail_connection(c, PQerrorMessage(c->pg));
    return;
  }
  if (poll_watch(c, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, 0) != 0) {
    op_fail_connection(c, "cannot watch the connection's socket");
  }
}

/* ---- connecting ------------------------------------------------------- */

/* Advances the connect after the socket became ready (or at the start). */
static void connect_step(pg_conn *c) {
  PostgresPollingStatusType st = PQconnectPoll(c->pg);
  if (st == PGRES_POLLING_FAILED) {
    op_fail_connection(c, PQerrorMessage(c->pg));
    return;
  }
  if (st == PGRES_POLLING_OK) {
    PQsetnonblocking(c->pg, 1);
    lua_pushboolean(c->L, 1); /* stack: true */
    op_finish(c, 1);
    return;
  }
  int events = st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE;
  if (poll_watch(c, events, 1) != 0) op_fail_connection(c, "cannot watch the connection's socket");
}

/* ---- the loop's callback ---------------------------------------------- */

/* While idle: reads notices, notifications and a close by the server. */
static void idle_read(pg_conn *c) {
  if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
    conn_shut(c);
    return;
  }
  for (PGnotify *n; (n = PQnotifies(c->pg)) != NULL;) PQfreemem(n); /* no LISTEN in resi.pg yet */
}

/* uv_poll callback: routes readiness to the operation in flight. */
static void on_poll(uv_poll_t *handle, int status, int events) {
  pg_conn *c = handle->data;
  if (status < 0) events = UV_READABLE | UV_WRITABLE; /* an error: let libpq find it */
  switch (c->op) {
  case OP_CONNECT: connect_step(c); break;
  case OP_QUERY:
    if (events & UV_WRITABLE) {
      query_flush(c);
      if (c->op != OP_QUERY) return;
    }
    if (events & UV_READABLE) query_read(c);
    break;
  default: idle_read(c); break;
  }
}

/* PQsetNoticeProcessor target: drops notices (libpq would print them). */
static void on_notice(void *arg, const char *message) { (void)arg, (void)message; }

/* ---- Lua API ---------------------------------------------------------- */

/* core.parse(conninfo) -> {key = value} | nil, message: libpq's own parse
 * of a URL or key=value string (nothing is resolved or connected). The
 * message is libpq's with every quoted part removed, since libpq quotes
 * the input (which may hold a password). */
static int pg_parse(lua_State *L) {
  const char *info = luaL_checkstring(L, 1);
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(info, &err);
  if (opts == NULL) {
    lua_pushnil(L);
    if (err == NULL) {
      lua_pushliteral(L, "out of memory");
    } else {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      int quoted = 0;
      for (const char *p = err; *p; p++) {
        if (*p == '"') {
          if (!quoted) luaL_addstring(&b, "\"...\"");
          quoted = !quoted;
        } else if (!quoted && *p != '\n') {
          luaL_addchar(&b, *p);
        }
      }
      luaL_pushresult(&b); /* stack: nil, message */
      PQfreemem(err);
    }
    return 2;
  }
  lua_newtable(L); /* stack: options */
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (o->val == NULL) continue;
    lua_pushstring(L, o->val);
    lua_setfield(L, -2, o->keyword);
  }
  PQconninfoFree(opts);
  return 1;
}

/* A fresh connection userdata (closed state). [-0, +1] */
static pg_conn *conn_new(lua_State *L) {
  pg_conn *c = lua_newuserdatauv(L, sizeof *c, 0); /* stack: .., conn */
  memset(c, 0, sizeof *c);
  c->task_ref = LUA_NOREF, c->dead = 1;
  luaL_setmetatable(L, CONN_MT);
  c->L = resi_main_state(L), c->loop = resi_loop(L);
  return c;
}

/* Anchors the task at idx with token as the operation's waiter. */
static void op_start(lua_State *L, pg_conn *c, int op, int task_idx, lua_Integer token) {
  lua_pushvalue(L, task_idx);
  c->task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  c->token = token, c->op = op;
}

/* core.connect(keys, values, task, token) -> conn | nil, message, code:
 * starts a connection (PQconnectStartParams with the parallel arrays keys
 * and values) that wakes task with token when it is up: (true) or (nil,
 * message, "connection"). */
static int pg_connect(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checkany(L, 3);
  lua_Integer token = luaL_checkinteger(L, 4);
  lua_Integer n = luaL_len(L, 1);
  if (n < 0 || n > 64) return luaL_error(L, "resi.pg: too many connection options");
  const char *keys[66], *values[66];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i); /* stack: .., key (kept until return: the strings stay alive) */
    lua_geti(L, 2, i); /* stack: .., key, value */
    keys[i - 1] = luaL_checkstring(L, -2), values[i - 1] = luaL_checkstring(L, -1);
  }
  keys[n] = values[n] = NULL;
  pg_conn *c = conn_new(L); /* stack: .., conn */
  c->pg = PQconnectStartParams(keys, values, 0);
  if (c->pg == NULL) return luaL_error(L, "resi.pg: out of memory");
  c->dead = 0;
  PQsetNoticeProcessor(c->pg, on_notice, NULL);
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    push_fail(L, "connection", PQerrorMessage(c->pg));
    conn_shut(c);
    return 3;
  }
  c->op = OP_CONNECT;
  if (poll_watch(c, UV_WRITABLE, 1) != 0) { /* "act as if PQconnectPoll returned WRITING" */
    c->op = OP_NONE;
    push_fail(L, "connection", "cannot watch the connection's socket");
    conn_shut(c);
    return 3;
  }
  op_start(L, c, OP_CONNECT, 3, token);
  return 1; /* stack: .., conn (on top) */
}

/* Converts params[i] to its text form for libpq in *out (NULL for SQL
 * NULL); numbers are written into buf. Returns NULL when fine, else what
 * is wrong with it. */
static const char *param_text(lua_State *L, int idx, char *buf, size_t size, const char **out) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: *out = NULL; return NULL;
  case LUA_TBOOLEAN: *out = lua_toboolean(L, idx) ? "true" : "false"; return NULL;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
    } else {
      double d = lua_tonumber(L, idx);
      if (isnan(d)) snprintf(buf, size, "NaN");
      else if (isinf(d)) snprintf(buf, size, d > 0 ? "Infinity" : "-Infinity");
      else snprintf(buf, size, "%.17g", d);
    }
    *out = buf;
    return NULL;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (strlen(s) != len) return "contains a NUL byte (PostgreSQL text cannot hold one)";
    *out = s;
    return NULL;
  }
  default:
    lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY); /* stack: .., null */
    int is_null = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    if (is_null) {
      *out = NULL;
      return NULL;
    }
    return "is not a string, number, boolean or pg.null";
  }
}

/* conn:send(sql, params, n, task, token) -> true | false, what | nil,
 * message, code: sends a query (PQsendQueryParams, text parameters
 * params[1..n]) that wakes task with token: (result) or (nil, message,
 * code). false, what: a bad parameter ("params[2] ..."), nothing sent. */
static int pg_send(lua_State *L) {
  pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
  const char *sql = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 4);
  luaL_checkany(L, 5);
  lua_Integer token = luaL_checkinteger(L, 6);
  if (c->dead || c->pg == NULL) return resi_push_fail(L, "connection", "the connection is closed or was lost");
  if (c->op != OP_NONE) return luaL_error(L, "resi.pg: the connection is busy (one query at a time)");
  if (n < 0 || n > MAX_PARAMS) return luaL_error(L, "resi.pg: too many parameters (%d)", (int)n);
  const char **values = lua_newuserdatauv(L, (size_t)(n ? n : 1) * (sizeof(char *) + 32), 0);
  char *nums = (char *)(values + (n ? n : 1)); /* 32 bytes per parameter for numbers */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 3, i); /* stack: .., values, p (kept: the string stays alive) */
    const char *bad = param_text(L, -1, nums + (i - 1) * 32, 32, &values[i - 1]);
    if (bad) {
      lua_pushboolean(L, 0);
      lua_pushfstring(L, "params[%d] %s", (int)i, bad);
      return 2;
    }
  }
  if (!PQsendQueryParams(c->pg, sql, (int)n, NULL, values, NULL, NULL, 0)) {
    if (PQstatus(c->pg) == CONNECTION_BAD) {
      c->dead = 1;
      return push_fail(L, "connection", PQerrorMessage(c->pg));
    }
    return push_fail(L, "error", PQerrorMessage(c->pg));
  }
  op_start(L, c, OP_QUERY, 5, token);
  query_flush(c);
  lua_pushboolean(L, 1);
  return 1;
}

/* Thread-pool worker: the blocking cancel request. */
static void cancel_run(uv_work_t *w) {
  pg_cancel_req *r = (pg_cancel_req *)w;
  char err[256];
  PQcancel(r->cancel, err, sizeof err); /* best effort: the connection is closed anyway */
}

/* After the cancel request (loop thread): frees it. */
static void cancel_done(uv_work_t *w, int status) {
  pg_cancel_req *r = (pg_cancel_req *)w;
  PQfreeCancel(r->cancel);
  free(r);
}

/* Ends what is in flight: a query is cancelled on the server (PQcancel
 * on the thread pool), the connection is closed; a waiting task is woken
 * with a "connection" failure when wake is set (a cancelled or timed-out
 * task has moved on: its token is stale and the wake-up is dropped). */
static void conn_abort(pg_conn *c, int wake) {
  if (c->op == OP_QUERY && c->pg) {
    PGcancel *cancel = PQgetCancel(c->pg);
    pg_cancel_req *r = cancel ? malloc(sizeof *r) : NULL;
    if (r) {
      r->cancel = cancel;
      if (uv_queue_work(c->loop, &r->work, cancel_run, cancel_done) != 0) cancel_done(&r->work, 0);
    } else if (cancel) {
      PQfreeCancel(cancel);
    }
  }
  if (wake && c->task_ref != LUA_NOREF) {
    c->dead = 1;
    lua_pushnil(c->L);
    lua_pushliteral(c->L, "the connection was closed");
    lua_pushliteral(c->L, "connection"); /* stack: nil, message, code */
    op_finish(c, 3);
  }
  op_forget(c);
  conn_shut(c);
}

/* conn:close(): ends what is in flight (conn_abort) and closes the
 * connection. Idempotent. */
static int pg_close(lua_State *L) {
  conn_abort(luaL_checkudata(L, 1, CONN_MT), 1);
  return 0;
}

/* __gc: closes without calling into Lua (the state may be closing). */
static int pg_gc(lua_State *L) {
  conn_abort(luaL_checkudata(L, 1, CONN_MT), 0);
  return 0;
}

/* conn:ok() -> boolean: connected and not lost (as far as is known). */
static int pg_ok(lua_State *L) {
  pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
  lua_pushboolean(L, !c->dead && c->pg && PQstatus(c->pg) == CONNECTION_OK);
  return 1;
}

/* conn:server_version() -> integer (e.g. 150008), 0 when not connected. */
static int pg_server_version(lua_State *L) {
  pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
  lua_pushinteger(L, c->pg ? PQserverVersion(c->pg) : 0);
  return 1;
}

/* core.lib_version() -> integer: libpq's version (PQlibVersion). */
static int pg_lib_version(lua_State *L) {
  lua_pushinteger(L, PQlibVersion());
  return 1;
}

/* pg.null's __tostring. */
static int null_tostring(lua_State *L) {
  lua_pushliteral(L, "pg.null");
  return 1;
}

static const luaL_Reg pg_funcs[] = {
    {"parse", pg_parse},
    {"connect", pg_connect},
    {"lib_version", pg_lib_version},
    {NULL, NULL},
};

int luaopen_resi_pg_core(lua_State *L) {
  static const luaL_Reg conn_methods[] = {
      {"send", pg_send},   {"close", pg_close}, {"ok", pg_ok},
      {"server_version", pg_server_version}, {NULL, NULL},
  };
  static const luaL_Reg null_meta[] = {{"__tostring", null_tostring}, {NULL, NULL}};
  resi_new_gc_class(L, CONN_MT, conn_methods, pg_gc);
  resi_new_class(L, NULL_MT, NULL, null_meta);
  luaL_newlib(L, pg_funcs); /* stack: core */
  lua_newuserdatauv(L, 0, 0); /* stack: core, null */
  luaL_setmetatable(L, NULL_MT);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
  lua_setfield(L, -2, "null"); /* stack: core */
  return 1;
}
