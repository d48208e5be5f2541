/* http_client.c: resi.http_core, libcurl's multi-socket API driven by the
 * host's libuv loop (the pattern of curl's docs/examples/multi-uv.c, with the
 * gaps its users found filled: poll errors reach curl as CURL_CSELECT_ERR,
 * per-transfer timeouts, cancellation, orderly shutdown).
 *
 * Built as an on-demand Lua C module so that scripts which never make a
 * request do not pay libcurl's ~4 ms of dynamic linking at start-up.
 *
 * Policy (URL rules, headers, JSON bodies, defaults) is in lualib/resi/http.lua;
 * this file only runs transfers. A finished transfer wakes its task through
 * resi_wake, which queues it: Lua is never resumed from inside curl.
 *
 * Per-request cost matters (many requests in flight): connection sockets are
 * opened and closed here, so a keep-alive connection's watcher lives as long
 * as the socket, not one transfer; a transfer's struct is pooled with its
 * easy handle, and a plain GET's handle is reused without curl_easy_reset,
 * and a request for the URL its handle fetched last sets no option at all:
 * the handle keeps that URL parsed (CURLOPT_CURLU), so libcurl neither
 * parses it again nor prints it back into a string (set_url). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "resi.h"

#define MULTI_KEY "resi.http.multi"
#define MULTI_MT "resi.http.multi_handle"
#define REQUEST_MT "resi.http.transfer"
#define RESPONSE_KEY "resi.http.response_shape"
#define EASY_POOL_MAX 64

typedef struct http_req http_req;

/* The per-transfer options a pooled handle still has from its last
 * transfer (a plain GET's handle is not reset): when the next transfer
 * asks for the same, they are not set again (each setopt of a string is a
 * copy, and CAINFO and PROXY_CAINFO are two on every request). */
typedef struct {
  int valid; /* the fields below are what the handle has set */
  int gzip, fresh; /* fresh: CURLOPT_FORBID_REUSE (keep_alive = false) */
  long timeout_ms, connect_ms;
  char *ca_file, *proxy; /* our copies; NULL: libcurl's own bundle, no proxy */
} easy_opts;

/* Forgets what a handle has set (after a reset), freeing the copies. */
static void opts_clear(easy_opts *o) {
  free(o->ca_file);
  free(o->proxy);
  *o = (easy_opts){0};
}

/* Are two optional strings the same (both NULL, or equal)? */
static int same_string(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* A copy of an optional string; *ok is cleared when memory runs out. */
static char *copy_string(const char *s, int *ok) {
  if (s == NULL) return NULL;
  char *c = strdup(s);
  if (c == NULL) *ok = 0;
  return c;
}

/* One multi handle per Lua state, with the loop handles that drive it. */
typedef struct {
  CURLM *multi;
  uv_timer_t timer;     /* curl's timeout; unref'd */
  uv_async_t keepalive; /* ref'd while transfers are in flight, so the loop stays up */
  lua_State *L;         /* the main thread */
  http_req *active;     /* in-flight transfers (doubly linked) */
  int in_flight;
  http_req *pool[EASY_POOL_MAX]; /* idle transfers with their easy handles, ready for reuse */
  int pooled;
  int closing; /* handles still to close before the struct is freed */
  struct sock_ctx **socks; /* watcher of each fd curl told us about, by fd */
  int nsocks;              /* length of socks */
  lua_Integer sockets_opened, transfers_started;
  struct curl_slist *defaults[2]; /* the default header lines: [0] without gzip, [1] with (set_default_headers) */
  char *user_agent;               /* the User-Agent a proxy's CONNECT sends (set_default_headers) */
} http_multi;

/* Per-socket context: the uv_poll that watches one of curl's sockets.
 * A connection socket (opened by on_open_socket) keeps its context while the
 * connection idles in curl's cache, so a reused keep-alive connection costs
 * no new watcher; the context is closed in on_close_socket, before the fd. */
typedef struct sock_ctx {
  uv_poll_t poll; /* first member: callbacks cast the handle back */
  curl_socket_t fd;
  http_multi *m;
  int events; /* the uv events being watched, 0 when stopped */
  int owned;  /* a connection socket: on_close_socket closes it */
  int idle;   /* curl said CURL_POLL_REMOVE: events are not for curl */
} sock_ctx;

/* One transfer. Owned by C until it completes or is cancelled; the Lua
 * handle only points here (and is cleared when the transfer ends). Pooled
 * with its easy handle afterwards (m->pool), which keeps pointing here. */
struct http_req {
  http_multi *m;
  CURL *easy;
  struct curl_slist *built;   /* the list built for this transfer (freed with it), or NULL */
  struct curl_slist *set_list; /* the list its handle was last given (HTTPHEADER need not be set again) */
  resi_buf body, head; /* response body and header block (memory kept in the pool) */
  size_t max_body;
  int too_large;
  int head_done; /* the blank line that ends the response headers arrived */
  int fixed_set; /* the easy handle has set_fixed_options applied (not reset since) */
  int get_set;   /* and its method options are a plain GET's, from its last transfer */
  easy_opts opts; /* the per-transfer options its handle has set */
  CURLU *uh;     /* the URL its handle was given, parsed (CURLOPT_CURLU); kept for the next URL */
  char *url;     /* that URL as given (also its CURLOPT_URL), NULL when the handle has none parsed */
  int reusable;  /* its options are all overwritten by the next configure: no reset needed */
  int task_ref;
  lua_Integer token;
  http_req **owner; /* the Lua handle's slot */
  http_req *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
};

static void check_done(http_multi *m);

/* Close callback of the multi's own handles: frees the multi after the last. */
static void multi_handle_closed(uv_handle_t *handle) {
  http_multi *m = handle->data;
  if (--m->closing == 0) {
    curl_slist_free_all(m->defaults[0]);
    curl_slist_free_all(m->defaults[1]);
    free(m->user_agent);
    free(m->socks);
    free(m);
  }
}

/* The watcher of fd, or NULL. */
static sock_ctx *sock_get(http_multi *m, curl_socket_t fd) {
  return fd >= 0 && fd < m->nsocks ? m->socks[fd] : NULL;
}

/* Records the watcher of fd (sc may be NULL); returns 0 when memory runs out. */
static int sock_set(http_multi *m, curl_socket_t fd, sock_ctx *sc) {
  if (fd >= m->nsocks) {
    int n = m->nsocks ? m->nsocks : 64;
    while (n <= fd) n *= 2;
    sock_ctx **socks = realloc(m->socks, (size_t)n * sizeof *socks);
    if (socks == NULL) return 0;
    memset(socks + m->nsocks, 0, (size_t)(n - m->nsocks) * sizeof *socks);
    m->socks = socks, m->nsocks = n;
  }
  m->socks[fd] = sc;
  return 1;
}

/* Watches sc for events (0 stops it); a no-op when they are already set,
 * since every uv_poll_start costs epoll_ctl calls. */
static void sock_watch(sock_ctx *sc, int events, uv_poll_cb cb) {
  if (sc->events == events) return;
  sc->events = events;
  if (events) uv_poll_start(&sc->poll, events, cb);
  else uv_poll_stop(&sc->poll);
}

/* Stops and closes fd's watcher, if any, and forgets it; the fd may be
 * closed right after (libuv has dropped it from epoll). */
static void sock_drop(http_multi *m, curl_socket_t fd) {
  sock_ctx *sc = sock_get(m, fd);
  if (sc == NULL) return;
  m->socks[fd] = NULL;
  uv_close((uv_handle_t *)&sc->poll, resi_free_on_close);
}

/* Translates libuv poll events into a curl socket action. */
static void on_poll(uv_poll_t *handle, int status, int events) {
  sock_ctx *sc = (sock_ctx *)handle;
  http_multi *m = sc->m;
  if (sc->idle) { /* an idle keep-alive connection: closed or junk; curl checks it on reuse */
    sock_watch(sc, 0, on_poll);
    return;
  }
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  int running;
  curl_multi_socket_action(m->multi, sc->fd, flags, &running);
  check_done(m);
}

/* Makes the watcher of a socket curl has just asked about. */
static sock_ctx *sock_new(http_multi *m, curl_socket_t fd) {
  sock_ctx *sc = calloc(1, sizeof *sc);
  if (sc == NULL) return NULL;
  if (uv_poll_init_socket(m->timer.loop, &sc->poll, fd) != 0) {
    free(sc);
    return NULL;
  }
  sc->fd = fd, sc->m = m;
  uv_unref((uv_handle_t *)&sc->poll); /* idle keep-alive sockets never hold the process */
  if (!sock_set(m, fd, sc)) {
    uv_close((uv_handle_t *)&sc->poll, resi_free_on_close);
    return NULL;
  }
  return sc;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy, (void)socketp;
  http_multi *m = userp;
  sock_ctx *sc = sock_get(m, fd);
  if (what == CURL_POLL_REMOVE) {
    if (sc == NULL) return 0;
    if (!sc->owned) {
      sock_drop(m, fd); /* not a connection socket: curl may close it without telling us */
    } else {
      /* the connection goes idle: keep watching for input (a close by the
       * peer), which costs nothing when the next transfer also reads */
      sc->idle = 1;
      sock_watch(sc, sc->events & UV_READABLE, on_poll);
    }
    return 0;
  }
  if (sc == NULL && (sc = sock_new(m, fd)) == NULL) return -1;
  sc->idle = 0;
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  sock_watch(sc, events, on_poll);
  return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: opens a connection socket (close-on-exec, so
 * child processes do not inherit it), and counts it. */
static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr) {
  http_multi *m = clientp;
  (void)purpose;
  curl_socket_t fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd == CURL_SOCKET_BAD) return fd;
  sock_drop(m, fd); /* a stale watcher of a reused fd number (never expected) */
  sock_ctx *sc = sock_new(m, fd);
  if (sc == NULL) {
    close(fd);
    return CURL_SOCKET_BAD;
  }
  sc->owned = 1, sc->idle = 1;
  m->sockets_opened++;
  return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: closes a connection socket, its watcher first
 * (libuv must not poll a closed fd, and the number may come back at once). */
static int on_close_socket(void *clientp, curl_socket_t fd) {
  sock_drop(clientp, fd);
  return close(fd);
}

/* The timer curl asked for has expired. */
static void on_timeout(uv_timer_t *timer) {
  http_multi *m = timer->data;
  int running;
  curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(m);
}

/* CURLMOPT_TIMERFUNCTION: "-1 means delete the timer; 0 means call
 * curl_multi_socket_action as soon as possible" — from the loop, never from
 * inside this callback (curl refuses re-entrant calls). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  http_multi *m = userp;
  if (timeout_ms < 0) {
    uv_timer_stop(&m->timer);
  } else {
    uv_timer_start(&m->timer, on_timeout, (uint64_t)timeout_ms, 0);
  }
  return 0;
}

/* CURLOPT_WRITEFUNCTION: collects the body, refusing more than max_body. */
static size_t on_body(char *p, size_t size, size_t n, void *userp) {
  http_req *r = userp;
  size_t len = size * n;
  if (len > r->max_body - r->body.len) {
    r->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  return resi_buf_add(&r->body, p, len) ? len : 0;
}

/* CURLOPT_HEADERFUNCTION: keeps the header block of the last response
 * (a new status line starts over: 100 Continue, proxy CONNECT, redirects). */
static size_t on_header(char *p, size_t size, size_t n, void *userp) {
  http_req *r = userp;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) r->head.len = 0, r->head_done = 0;
  if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) r->head_done = 1;
  return resi_buf_add(&r->head, p, len) ? len : 0;
}

/* Links a transfer into the multi's in-flight list and keeps the loop up. */
static void track(http_multi *m, http_req *r) {
  r->next = m->active;
  if (m->active) m->active->prev = r;
  m->active = r;
  if (m->in_flight++ == 0) uv_ref((uv_handle_t *)&m->keepalive);
}

/* Unlinks a finished or cancelled transfer; lets the loop end when idle. */
static void untrack(http_multi *m, http_req *r) {
  if (r->prev) r->prev->next = r->next;
  else m->active = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  if (--m->in_flight == 0) uv_unref((uv_handle_t *)&m->keepalive);
}

/* Frees a transfer and its easy handle. */
static void req_destroy(http_req *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  opts_clear(&r->opts);
  curl_url_cleanup(r->uh);
  free(r->url);
  curl_slist_free_all(r->built);
  resi_buf_free(&r->body);
  resi_buf_free(&r->head);
  free(r);
}

/* Ends a transfer: it goes back to the pool with its easy handle (reset
 * unless its options are all known), or is freed when the pool is full. */
static void req_free(http_req *r) {
  http_multi *m = r->m;
  if (r->owner) *r->owner = NULL;
  r->owner = NULL;
  if (r->easy == NULL || m->pooled >= EASY_POOL_MAX) {
    req_destroy(r);
    return;
  }
  if (r->reusable) {
    r->get_set = 1;
  } else {
    curl_easy_reset(r->easy);
    r->fixed_set = r->get_set = 0;
    r->set_list = NULL;
    opts_clear(&r->opts);
    free(r->url); /* the reset dropped CURLOPT_CURLU and CURLOPT_URL */
    r->url = NULL;
  }
  if (r->built) { /* the handle still points at the list freed here: configure sets it again */
    curl_slist_free_all(r->built);
    r->built = NULL;
    r->set_list = NULL;
  }
  if (r->body.cap > 64 * 1024) resi_buf_free(&r->body); /* keep small buffers, not a big body's */
  if (r->head.cap > 64 * 1024) resi_buf_free(&r->head);
  m->pool[m->pooled++] = r;
}

/* Stops a transfer without waking its task (cancel, shutdown). */
static void req_abort(http_req *r) {
  http_multi *m = r->m;
  curl_multi_remove_handle(m->multi, r->easy);
  untrack(m, r);
  luaL_unref(m->L, LUA_REGISTRYINDEX, r->task_ref);
  r->reusable = 0; /* stopped mid-way: reset the handle before reuse */
  req_free(r);
}

/* A stable short code for a transfer failure. */
static const char *failure_code(http_req *r, CURLcode rc) {
  long connect_code = 0;
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
  if (r->too_large) return "too_large";
  if (connect_code >= 400) return "proxy";
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return "resolve";
  case CURLE_COULDNT_CONNECT: return "connect";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_USE_SSL_FAILED:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED: return "tls";
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
    /* libcurl 7.88 also reports two parse failures as receive errors (newer
     * ones have CURLE_TOO_LARGE); only what is left is a reset */
    if (strstr(r->errbuf, "chunked-encoding") || strstr(r->errbuf, "Too large response headers")) return "protocol";
    return "reset";
  case CURLE_GOT_NOTHING: return "reset";
  case CURLE_PARTIAL_FILE: return "truncated";
  case CURLE_PROXY: return "proxy";
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_UNSUPPORTED_PROTOCOL: return "protocol";
  default: return "error";
  }
}

/* ASCII lower case (header names are ASCII; no locale lookup per byte). */
static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* Pushes a header name lower-cased (through a stack buffer when it fits). */
static void push_lower(lua_State *L, const char *p, size_t n) {
  char small[64];
  if (n > sizeof small) {
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, n);
    for (size_t i = 0; i < n; i++) d[i] = ascii_lower(p[i]);
    luaL_pushresultsize(&b, n); /* stack: .., name */
    return;
  }
  for (size_t i = 0; i < n; i++) small[i] = ascii_lower(p[i]);
  lua_pushlstring(L, small, n); /* stack: .., name */
}

/* Pushes the response headers of a header block (status line first) as a
 * table with lower-case names; repeated headers are joined with ", ". */
static void push_headers(lua_State *L, const char *p, size_t len) {
  lua_createtable(L, 0, 8); /* stack: headers (sized for a typical response) */
  const char *end = p + len;
  if (len == 0) return;
  const char *nl = memchr(p, '\n', (size_t)(end - p)); /* skip the status line */
  p = nl ? nl + 1 : end;
  while (p < end) {
    nl = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = nl ? nl : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && colon > p) {
      push_lower(L, p, (size_t)(colon - p)); /* stack: headers, name */
      const char *v = colon + 1, *ve = line_end;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) { /* stack: headers, name, old */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3); /* stack: headers, name, "old, new" */
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v)); /* stack: headers, name, value */
      }
      lua_rawset(L, -3); /* stack: headers */
    }
    p = nl ? nl + 1 : end;
  }
}

/* The response table's shape, kept in the registry at RESPONSE_KEY: its
 * metatable at [R_CLASS] (set_response_class) and its field names, interned
 * once, at the other indices. push_response sets each field with
 * lua_rawset from this table (~100 instructions less a field than
 * lua_setfield's lookup of a C string and its metamethod check). */
enum { R_CLASS = 1, R_STATUS, R_HEAD, R_BODY, R_URL, R_TIME, R_REUSED, R_LOCAL_PORT, R_REMOTE_IP, R_HTTP_VERSION, R_LAST = R_HTTP_VERSION };
static const char *const response_fields[R_LAST + 1] = {
    [R_STATUS] = "status", [R_HEAD] = "_head", /* the headers become a table when res.headers is first read (http.lua) */
    [R_BODY] = "body", [R_URL] = "url", [R_TIME] = "time", [R_REUSED] = "reused",
    [R_LOCAL_PORT] = "local_port", [R_REMOTE_IP] = "remote_ip", [R_HTTP_VERSION] = "http_version",
};

/* Pushes the key of field f. Stack on entry: .., shape, res. */
static void push_field(lua_State *L, int f) {
  lua_rawgeti(L, -2, f); /* stack: .., shape, res, key */
}

/* Pushes the response table for a completed transfer. */
static void push_response(lua_State *L, http_req *r) {
  long status = 0, version = 0, num_connects = 0, local_port = 0;
  double total = 0;
  char *url = NULL, *ip = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &version);
  curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &num_connects);
  curl_easy_getinfo(r->easy, CURLINFO_LOCAL_PORT, &local_port);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip);
  lua_getfield(L, LUA_REGISTRYINDEX, RESPONSE_KEY); /* stack: shape */
  lua_createtable(L, 0, R_LAST - 1);                /* stack: shape, res */
  lua_rawgeti(L, -2, R_CLASS); /* stack: shape, res, mt (nil before set_response_class) */
  lua_setmetatable(L, -2);
  push_field(L, R_STATUS);
  lua_pushinteger(L, status);
  lua_rawset(L, -3);
  push_field(L, R_HEAD);
  lua_pushlstring(L, r->head.data ? r->head.data : "", r->head.len);
  lua_rawset(L, -3);
  push_field(L, R_BODY);
  lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
  lua_rawset(L, -3);
  push_field(L, R_URL);
  lua_pushstring(L, url ? url : "");
  lua_rawset(L, -3);
  push_field(L, R_TIME);
  lua_pushnumber(L, total);
  lua_rawset(L, -3);
  push_field(L, R_REUSED);
  lua_pushboolean(L, num_connects == 0);
  lua_rawset(L, -3);
  push_field(L, R_LOCAL_PORT);
  lua_pushinteger(L, local_port);
  lua_rawset(L, -3);
  push_field(L, R_REMOTE_IP);
  lua_pushstring(L, ip ? ip : "");
  lua_rawset(L, -3);
  push_field(L, R_HTTP_VERSION);
  lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" : version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
  lua_rawset(L, -3); /* stack: shape, res */
  lua_remove(L, -2); /* stack: res */
}

/* Hands a finished transfer's outcome to its task and frees it. */
static void complete(http_multi *m, http_req *r, CURLcode rc) {
  lua_State *L = m->L;
  untrack(m, r);
  int nargs;
  if (rc == CURLE_OK && !r->head_done) { /* curl takes EOF inside the headers for their end */
    r->reusable = 0;
    nargs = resi_push_fail(L, "truncated", "the connection closed before the response headers ended");
  } else if (rc == CURLE_OK) {
    push_response(L, r); /* stack: res */
    nargs = 1;
  } else {
    r->reusable = 0; /* reset a failed transfer's handle before reuse */
    const char *code = failure_code(r, rc);
    if (r->too_large)
      nargs = resi_push_fail(L, code, "response body larger than %I bytes", (lua_Integer)r->max_body);
    else
      nargs = resi_push_fail(L, code, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
  } /* stack: res | nil, message, code */
  int task_ref = r->task_ref;
  lua_Integer token = r->token;
  req_free(r);
  resi_wake(L, task_ref, token, nargs);
}

/* Drains curl's completion messages after every socket action. */
static void check_done(http_multi *m) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;
    CURLcode rc = msg->data.result; /* msg is invalid after remove_handle */
    http_req *r = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(m->multi, easy);
    if (r) complete(m, r, rc);
  }
}

/* The per-state multi, created on first use. */
static http_multi *get_multi(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, MULTI_KEY); /* stack: slot|nil */
  http_multi **slot = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return slot ? *slot : NULL;
}

/* core.request's arguments, by position. */
enum {
  A_TASK = 1, A_TOKEN, A_URL, A_METHOD, A_HEADERS, A_BODY, A_TIMEOUT_MS, A_CONNECT_MS,
  A_PROXY, A_CA_FILE, A_GZIP, A_MAX_BODY, A_FRESH
};

/* Reads an optional string argument (nil: NULL). */
static const char *opt_string(lua_State *L, int idx, size_t *len) {
  return lua_isnoneornil(L, idx) ? NULL : luaL_checklstring(L, idx, len);
}

/* Reads an optional integer argument (nil: dflt). */
static lua_Integer opt_integer(lua_State *L, int idx, lua_Integer dflt) {
  return lua_isnoneornil(L, idx) ? dflt : (lua_Integer)luaL_checknumber(L, idx);
}

/* Takes a transfer from the pool, or makes one with a new easy handle;
 * NULL when memory runs out. Its per-transfer state starts empty. */
static http_req *take_req(http_multi *m) {
  http_req *r;
  if (m->pooled > 0) {
    r = m->pool[--m->pooled];
  } else {
    r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->m = m;
    if ((r->easy = curl_easy_init()) == NULL) {
      free(r);
      return NULL;
    }
  }
  r->body.len = r->head.len = 0;
  r->too_large = r->head_done = r->reusable = 0;
  r->errbuf[0] = '\0';
  r->task_ref = LUA_NOREF;
  return r;
}

/* Sets the method and body of a transfer. */
static void set_method(CURL *e, const char *method, const char *body, size_t body_len) {
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (body || strcmp(method, "POST") == 0) {
    /* libcurl sends a request again, by itself, when a reused keep-alive
     * connection dies before any answer ("Connection died, retrying a fresh
     * connect"): for a create that the server committed before the
     * connection dropped, that is a second create. POST and PATCH are not
     * idempotent, so they start on a connection of their own, where libcurl
     * never retries; whether to repeat them is the caller's decision. */
    if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body ? body : "");
    if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
}

/* Appends line to list; on failure frees list and raises. */
static struct curl_slist *append_line(lua_State *L, struct curl_slist *list, const char *line) {
  struct curl_slist *next = curl_slist_append(list, line);
  if (next == NULL) {
    curl_slist_free_all(list);
    luaL_error(L, "resi.http: out of memory");
  }
  return next;
}

/* Builds the header list from the array of "Name: value" lines at idx;
 * NULL when idx is not a table. */
static struct curl_slist *build_headers(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return NULL;
  struct curl_slist *list = NULL;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i); /* stack: .., line */
    const char *line = lua_tostring(L, -1);
    if (line) list = append_line(L, list, line);
    lua_pop(L, 1); /* stack: .. */
  }
  return list;
}

/* Gives the handle of r its URL. libcurl 7.88 parses CURLOPT_URL at every
 * transfer and then prints the parsed URL back into a string with its
 * printf, a byte at a time: ~11 k instructions, a tenth of a request's
 * (bench/NOTES.md). A URL parsed here (with libcurl's own flags) is handed
 * over as CURLOPT_CURLU, which libcurl copies instead of parsing, and is
 * kept for the handle's next transfer, which sets nothing when its URL is
 * the same. CURLOPT_URL is set too, to the URL as given, so libcurl does
 * not print the parsed one to make its effective URL (res.url is the URL
 * asked for). A URL this parse refuses goes to libcurl alone, whose
 * transfer then fails with its own message, as before. */
static void set_url(CURL *e, http_req *r, const char *url) {
  if (r->url && strcmp(r->url, url) == 0) return; /* the handle has it, parsed */
  free(r->url);
  r->url = NULL;
  if (r->uh == NULL) r->uh = curl_url();
  if (r->uh && curl_url_set(r->uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
      (r->url = strdup(url)) != NULL) {
    curl_easy_setopt(e, CURLOPT_CURLU, r->uh);
  } else {
    curl_easy_setopt(e, CURLOPT_CURLU, NULL);
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
}

/* Sets the options that are the same for every transfer of r (on a new or
 * reset handle; a handle reused without reset still has them). */
static void set_fixed_options(CURL *e, http_multi *m, http_req *r) {
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, m);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, m);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L); /* always on: there is no option to turn it off */
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* redirects are followed by the Lua layer, which checks every hop */
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
}

/* Applies core.request's arguments to the easy handle of r. Every option
 * set here is set on every call, or known to hold its value from the
 * handle's last transfer (easy_opts, get_set, set_list), or the handle
 * is marked for a reset, so a plain GET's handle is reused without
 * curl_easy_reset. All arguments are checked before the first setopt. */
static void configure(lua_State *L, http_req *r) {
  CURL *e = r->easy;
  size_t body_len = 0;
  const char *url = opt_string(L, A_URL, NULL);
  const char *method = opt_string(L, A_METHOD, NULL);
  const char *body = opt_string(L, A_BODY, &body_len);
  const char *proxy = opt_string(L, A_PROXY, NULL);
  const char *ca_file = opt_string(L, A_CA_FILE, NULL);
  if (url == NULL) luaL_error(L, "resi.http: url is required");
  int gzip = lua_toboolean(L, A_GZIP), fresh = lua_toboolean(L, A_FRESH);
  long timeout_ms = (long)opt_integer(L, A_TIMEOUT_MS, 0), connect_ms = (long)opt_integer(L, A_CONNECT_MS, 0);
  r->max_body = (size_t)opt_integer(L, A_MAX_BODY, 64 * 1024 * 1024);
  if (!r->fixed_set) set_fixed_options(e, r->m, r);
  r->fixed_set = 1;

  set_url(e, r, url);
  easy_opts *o = &r->opts;
  if (!(o->valid && o->gzip == gzip && o->fresh == fresh && o->timeout_ms == timeout_ms &&
        o->connect_ms == connect_ms && same_string(o->ca_file, ca_file) && same_string(o->proxy, proxy))) {
    /* libcurl's built-in bundle is what a reset handle has; an https:// proxy
     * is verified against the same bundle as the target */
    const char *bundle = ca_file ? ca_file : curl_version_info(CURLVERSION_NOW)->cainfo;
    curl_easy_setopt(e, CURLOPT_CAINFO, bundle);
    curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, bundle);
    /* turns on the decoding of a gzip body; the request's Accept-Encoding
     * line is one of the header lines (http.lua), so libcurl adds none */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, gzip ? "gzip" : NULL);
    /* a proxy's CONNECT takes its User-Agent from here (the lines are the target's) */
    curl_easy_setopt(e, CURLOPT_USERAGENT, proxy ? r->m->user_agent : NULL);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    /* an empty string disables proxies from the environment (http_proxy ...) */
    curl_easy_setopt(e, CURLOPT_PROXY, proxy ? proxy : "");
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, fresh ? 1L : 0L); /* the connection closes after this transfer */
    opts_clear(o);
    int ok = 1;
    *o = (easy_opts){1, gzip, fresh, timeout_ms, connect_ms, copy_string(ca_file, &ok), copy_string(proxy, &ok)};
    o->valid = ok; /* without the copies, everything is set again next time */
  }
  if (method == NULL) method = "GET";
  /* a GET without body leaves only options that are set above on every call */
  int plain = body == NULL && strcmp(method, "GET") == 0;
  if (!(plain && r->get_set)) set_method(e, method, body, body_len);
  r->built = build_headers(L, A_HEADERS);
  struct curl_slist *headers = r->built ? r->built : r->m->defaults[gzip ? 1 : 0];
  if (headers != r->set_list) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  r->set_list = headers;
  r->reusable = plain;
}

/* core.request(task, token, url, method, header_lines, body, timeout_ms,
 * connect_timeout_ms, proxy, ca_file, gzip, max_body, fresh) -> transfer:
 * starts a transfer that wakes task with token when it ends: (response) or
 * (nil, message, code). Positional (nil for "not given"): no options table
 * to fill and read per request. */
static int http_request(lua_State *L) {
  luaL_checkany(L, A_TASK);
  lua_Integer token = luaL_checkinteger(L, A_TOKEN);
  lua_settop(L, A_FRESH);
  http_multi *m = get_multi(L);
  http_req **slot = resi_new_handle(L, REQUEST_MT); /* stack: args.., handle */
  http_req *r = take_req(m);
  if (r == NULL) return luaL_error(L, "resi.http: cannot create a transfer");
  *slot = r, r->owner = slot; /* from here a raised error frees r through the handle's __gc */
  configure(L, r);
  CURLMcode mc = curl_multi_add_handle(m->multi, r->easy);
  if (mc != CURLM_OK) return luaL_error(L, "resi.http: %s", curl_multi_strerror(mc));
  lua_pushvalue(L, A_TASK);
  r->task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->token = token;
  track(m, r);
  m->transfers_started++;
  return 1;
}

/* core.set_default_headers(lines, gzip_lines, user_agent): the header lines
 * a request sends when it gives none of its own (one list each, kept and
 * shared, so libcurl formats no User-Agent or Accept-Encoding of its own
 * into every request: it does so with its printf, a byte at a time, ~3 k
 * instructions a request; bench/NOTES.md), and the User-Agent a proxy's
 * CONNECT sends. Which lines, and merging them with a request's own, is
 * http.lua's. */
static int http_set_default_headers(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *ua = luaL_checkstring(L, 3);
  http_multi *m = get_multi(L);
  /* called once, as http.lua loads: a list lost to a raised out-of-memory is not worth a cleanup path */
  struct curl_slist *plain = build_headers(L, 1), *gzip = build_headers(L, 2);
  char *copy = strdup(ua);
  if (copy == NULL) return luaL_error(L, "resi.http: out of memory");
  curl_slist_free_all(m->defaults[0]);
  curl_slist_free_all(m->defaults[1]);
  free(m->user_agent);
  m->defaults[0] = plain, m->defaults[1] = gzip, m->user_agent = copy;
  return 0;
}

/* Makes the response shape (its field names; no metatable yet) once per state. */
static void create_response_shape(lua_State *L) {
  lua_createtable(L, R_LAST, 0); /* stack: shape */
  for (int f = R_CLASS + 1; f <= R_LAST; f++) {
    lua_pushstring(L, response_fields[f]);
    lua_rawseti(L, -2, f);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, RESPONSE_KEY); /* stack: (empty) */
}

/* core.set_response_class(mt): the metatable every response table gets
 * (kept in the response shape). */
static int http_set_response_class(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, RESPONSE_KEY); /* stack: mt, shape */
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, R_CLASS); /* stack: mt, shape */
  return 0;
}

/* core.parse_headers(block) -> headers: the table of a response's header
 * block (lower-case names, repeats joined with ", "). */
static int http_parse_headers(lua_State *L) {
  size_t len;
  const char *block = luaL_checklstring(L, 1, &len);
  push_headers(L, block, len); /* stack: block, headers */
  return 1;
}

/* transfer:cancel(): aborts a transfer in flight; its task is not woken.
 * Also the handle's __gc, so a transfer never outlives its handle. */
static int transfer_cancel(lua_State *L) {
  http_req **slot = luaL_checkudata(L, 1, REQUEST_MT);
  http_req *r = *slot;
  if (r == NULL) return 0;
  if (r->task_ref == LUA_NOREF) { /* never started: configure failed */
    req_free(r);
    return 0;
  }
  req_abort(r);
  return 0;
}

/* core.stats() -> {in_flight=, sockets_opened=, transfers_started=} */
static int http_stats(lua_State *L) {
  http_multi *m = get_multi(L);
  lua_createtable(L, 0, 3); /* stack: stats */
  resi_set_integer(L, "in_flight", m->in_flight);
  resi_set_integer(L, "sockets_opened", m->sockets_opened);
  resi_set_integer(L, "transfers_started", m->transfers_started);
  return 1;
}

/* __gc of the multi (at lua_close): stops every transfer, then closes the
 * loop handles; the struct is freed by the last close callback. */
static int multi_gc(lua_State *L) {
  http_multi **slot = lua_touserdata(L, 1);
  http_multi *m = *slot;
  if (m == NULL) return 0;
  *slot = NULL;
  while (m->active) req_abort(m->active);
  for (int i = 0; i < m->pooled; i++) req_destroy(m->pool[i]);
  curl_multi_cleanup(m->multi); /* closes cached connections through on_close_socket */
  for (int fd = 0; fd < m->nsocks; fd++) sock_drop(m, fd); /* any watcher curl left behind */
  uv_timer_stop(&m->timer);
  m->closing = 2;
  uv_close((uv_handle_t *)&m->timer, multi_handle_closed);
  uv_close((uv_handle_t *)&m->keepalive, multi_handle_closed);
  return 0;
}

/* Creates the per-state multi handle and its loop handles. */
static void create_multi(lua_State *L) {
  http_multi **slot = resi_new_handle(L, MULTI_MT); /* stack: slot */
  http_multi *m = calloc(1, sizeof *m);
  if (m == NULL) luaL_error(L, "resi.http: out of memory");
  m->multi = curl_multi_init();
  if (m->multi == NULL) {
    free(m);
    luaL_error(L, "resi.http: cannot create a curl multi handle");
  }
  m->L = resi_main_state(L);
  uv_loop_t *loop = resi_loop(L);
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  uv_unref((uv_handle_t *)&m->timer);
  uv_async_init(loop, &m->keepalive, NULL);
  m->keepalive.data = m;
  uv_unref((uv_handle_t *)&m->keepalive);
  curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
  curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
  /* a bounded cache of idle connections (tarantool #3945) */
  curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, 256L);
  *slot = m;
  lua_setfield(L, LUA_REGISTRYINDEX, MULTI_KEY); /* stack: (empty) */
}

static const luaL_Reg http_funcs[] = {
    {"request", http_request},
    {"stats", http_stats},
    {"set_response_class", http_set_response_class},
    {"set_default_headers", http_set_default_headers},
    {"parse_headers", http_parse_headers},
    {NULL, NULL},
};

int luaopen_resi_http_core(lua_State *L) {
  static const luaL_Reg transfer_methods[] = {{"cancel", transfer_cancel}, {NULL, NULL}};
  resi_new_gc_class(L, MULTI_MT, NULL, multi_gc);
  resi_new_gc_class(L, REQUEST_MT, transfer_methods, transfer_cancel);
  luaL_getmetatable(L, REQUEST_MT); /* stack: mt */
  lua_pushcfunction(L, transfer_cancel);
  lua_setfield(L, -2, "__call"); /* transfer(): cancel, so a transfer is its own on_cancel (no closure) */
  lua_pop(L, 1);                 /* stack: (empty) */
  if (get_multi(L) == NULL) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "resi.http: curl_global_init failed");
    create_multi(L);
    create_response_shape(L);
  }
  luaL_newlib(L, http_funcs); /* stack: core */
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  return 1;
}
