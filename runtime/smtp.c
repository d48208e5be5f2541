/* smtp.c: resi.smtp_core, one mail submission through libcurl's SMTP
 * support (MAIL FROM, RCPT TO, DATA; STARTTLS and AUTH as asked).
 *
 * The smallest binding that does not block the loop: the transfer is a
 * blocking curl_easy_perform run on libuv's thread pool (uv_queue_work),
 * bounded by its timeouts; the task that asked waits and is woken through
 * resi_wake from the after-work callback, on the loop thread. Cancelling
 * sets a flag that curl's progress callback turns into an abort; the task
 * is not woken. Mail is rare (a notification), so a thread per send is
 * cheap next to a second multi-socket driver.
 *
 * Policy (when TLS is required, the message text, retries) is in Lua
 * (lualib/resi/notify/email.lua); this file only runs the transfer. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "resi.h"

#define SEND_MT "resi.smtp.send"

/* One submission. Owned by C until its after-work callback has run; the
 * Lua handle only points here (and is cleared when the send ends). */
typedef struct {
  uv_work_t work;      /* work.data is unused: the struct is cast back */
  lua_State *L;        /* the main thread */
  char *url, *from, *username, *password, *ca_file;
  struct curl_slist *rcpt;
  resi_buf message;
  size_t sent;         /* bytes of message handed to curl */
  long use_ssl;        /* CURLUSESSL_ALL or CURLUSESSL_NONE */
  long timeout_ms, connect_timeout_ms;
  atomic_int cancelled;
  int task_ref;
  lua_Integer token;
  CURLcode rc;          /* set by the worker */
  long reply;           /* the last SMTP reply code */
  char errbuf[CURL_ERROR_SIZE];
  void **owner;         /* the Lua handle's slot, NULL once detached */
} smtp_send;

/* Frees a submission and everything it copied. */
static void send_free(smtp_send *s) {
  free(s->url), free(s->from), free(s->username), free(s->ca_file);
  if (s->password) {
    memset(s->password, 0, strlen(s->password)); /* do not leave it in freed memory */
    free(s->password);
  }
  curl_slist_free_all(s->rcpt);
  resi_buf_free(&s->message);
  free(s);
}

/* CURLOPT_READFUNCTION: hands curl the next part of the message. */
static size_t on_read(char *buf, size_t size, size_t n, void *userp) {
  smtp_send *s = userp;
  size_t room = size * n, left = s->message.len - s->sent;
  if (room > left) room = left;
  memcpy(buf, s->message.data + s->sent, room);
  s->sent += room;
  return room;
}

/* CURLOPT_XFERINFOFUNCTION: non-zero aborts the transfer (a cancel). */
static int on_progress(void *userp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  smtp_send *s = userp;
  return atomic_load(&s->cancelled);
}

/* The worker: runs the whole submission (on the thread pool). */
static void run_send(uv_work_t *w) {
  smtp_send *s = (smtp_send *)w;
  CURL *e = curl_easy_init();
  if (e == NULL) {
    s->rc = CURLE_OUT_OF_MEMORY;
    return;
  }
  curl_easy_setopt(e, CURLOPT_URL, s->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(e, CURLOPT_USE_SSL, s->use_ssl);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L); /* always on */
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (s->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
  curl_easy_setopt(e, CURLOPT_MAIL_FROM, s->from);
  curl_easy_setopt(e, CURLOPT_MAIL_RCPT, s->rcpt);
  if (s->username) curl_easy_setopt(e, CURLOPT_USERNAME, s->username);
  if (s->password) curl_easy_setopt(e, CURLOPT_PASSWORD, s->password);
  curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->message.len);
  curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(e, CURLOPT_READDATA, s);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
  s->rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s->reply);
  curl_easy_cleanup(e);
  OPENSSL_thread_stop(); /* libuv's worker threads outlive the send: free OpenSSL's per-thread state now */
}

/* A stable short code for a failed submission. */
static const char *failure_code(const smtp_send *s) {
  switch (s->rc) {
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_COULDNT_RESOLVE_HOST: return "resolve";
  case CURLE_COULDNT_CONNECT: return "connect";
  case CURLE_LOGIN_DENIED: return "auth";
  case CURLE_USE_SSL_FAILED: /* the server offers no STARTTLS */
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE: return "tls";
  default: break;
  }
  if (s->reply >= 400) return "rejected"; /* the server refused a command */
  if (s->rc == CURLE_SEND_ERROR || s->rc == CURLE_RECV_ERROR || s->rc == CURLE_GOT_NOTHING) return "reset";
  return "error";
}

/* After-work (loop thread): wakes the task with (reply) or (nil, msg, code). */
static void send_done(uv_work_t *w, int status) {
  smtp_send *s = (smtp_send *)w;
  if (s->owner) *s->owner = NULL;
  if (atomic_load(&s->cancelled) || s->task_ref == LUA_NOREF) {
    send_free(s);
    return;
  }
  lua_State *L = s->L;
  int nargs;
  if (status == UV_ECANCELED) {
    nargs = resi_push_fail(L, "error", "the send was cancelled before it started");
  } else if (s->rc == CURLE_OK) {
    lua_pushinteger(L, s->reply); /* stack: reply */
    nargs = 1;
  } else {
    nargs = resi_push_fail(L, failure_code(s), "%s (SMTP reply %d)",
                           s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->rc), (int)s->reply);
  } /* stack: reply | nil, message, code */
  int task_ref = s->task_ref;
  lua_Integer token = s->token;
  send_free(s);
  resi_wake(L, task_ref, token, nargs);
}

/* A copy of the optional string field key of the table at index 1 (NULL
 * when absent); raises on out of memory. */
static char *opt_copy(lua_State *L, const char *key) {
  lua_getfield(L, 1, key); /* stack: ..., v */
  char *out = NULL;
  if (!lua_isnil(L, -1)) {
    const char *v = luaL_checkstring(L, -1);
    out = strdup(v);
    if (out == NULL) luaL_error(L, "resi.smtp: out of memory");
  }
  lua_pop(L, 1);
  return out;
}

/* An integer field of the table at index 1, or dflt. */
static long opt_long(lua_State *L, const char *key, long dflt) {
  lua_getfield(L, 1, key); /* stack: ..., v */
  long v = lua_isnil(L, -1) ? dflt : (long)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Copies the options table at index 1 into s; raises on a bad option. */
static void configure(lua_State *L, smtp_send *s) {
  s->url = opt_copy(L, "url");
  s->from = opt_copy(L, "from");
  if (s->url == NULL || s->from == NULL) luaL_error(L, "resi.smtp: url and from are required");
  s->username = opt_copy(L, "username");
  s->password = opt_copy(L, "password");
  s->ca_file = opt_copy(L, "ca_file");
  lua_getfield(L, 1, "require_tls"); /* stack: ..., require_tls */
  s->use_ssl = lua_toboolean(L, -1) ? CURLUSESSL_ALL : CURLUSESSL_NONE;
  lua_pop(L, 1);
  s->timeout_ms = opt_long(L, "timeout_ms", 30000);
  s->connect_timeout_ms = opt_long(L, "connect_timeout_ms", 10000);
  lua_getfield(L, 1, "rcpt"); /* stack: ..., rcpt */
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, -1, i); /* stack: ..., rcpt, addr */
    struct curl_slist *next = curl_slist_append(s->rcpt, luaL_checkstring(L, -1));
    if (next == NULL) luaL_error(L, "resi.smtp: out of memory");
    s->rcpt = next;
    lua_pop(L, 1); /* stack: ..., rcpt */
  }
  lua_pop(L, 1);
  if (s->rcpt == NULL) luaL_error(L, "resi.smtp: rcpt needs at least one address");
  lua_getfield(L, 1, "message"); /* stack: ..., message */
  size_t len;
  const char *msg = luaL_checklstring(L, -1, &len);
  if (!resi_buf_add(&s->message, msg, len)) luaL_error(L, "resi.smtp: out of memory");
  lua_pop(L, 1);
}

/* core.send(options, task, token) -> handle: starts a submission that wakes
 * task with token when it ends: (reply code) or (nil, message, code).
 * options: url, from, rcpt (list), message, username, password,
 * require_tls, ca_file, timeout_ms, connect_timeout_ms. */
static int smtp_send_start(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  lua_Integer token = luaL_checkinteger(L, 3);
  void **slot = resi_new_handle(L, SEND_MT); /* stack: opts, task, token, handle */
  smtp_send *s = calloc(1, sizeof *s);
  if (s == NULL) return luaL_error(L, "resi.smtp: out of memory");
  s->task_ref = LUA_NOREF;
  *slot = s, s->owner = slot; /* from here a raised error frees s through the handle's __gc */
  configure(L, s);
  s->L = resi_main_state(L);
  int rc = uv_queue_work(resi_loop(L), &s->work, run_send, send_done);
  if (rc != 0) return luaL_error(L, "resi.smtp: %s", uv_strerror(rc));
  lua_pushvalue(L, 2);
  s->task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->token = token;
  return 1;
}

/* handle:cancel(): aborts a submission in flight; its task is not woken.
 * Also the handle's __gc. */
static int smtp_cancel(lua_State *L) {
  void **slot = luaL_checkudata(L, 1, SEND_MT);
  smtp_send *s = *slot;
  if (s == NULL) return 0;
  *slot = NULL, s->owner = NULL;
  if (s->task_ref == LUA_NOREF) { /* never queued: configure failed */
    send_free(s);
    return 0;
  }
  atomic_store(&s->cancelled, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, s->task_ref);
  s->task_ref = LUA_NOREF;
  uv_cancel((uv_req_t *)&s->work); /* not started yet: send_done runs with UV_ECANCELED */
  return 0;
}

static const luaL_Reg smtp_funcs[] = {
    {"send", smtp_send_start},
    {NULL, NULL},
};

int luaopen_resi_smtp_core(lua_State *L) {
  static const luaL_Reg send_methods[] = {{"cancel", smtp_cancel}, {NULL, NULL}};
  resi_new_gc_class(L, SEND_MT, send_methods, smtp_cancel);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "resi.smtp: curl_global_init failed");
  luaL_newlib(L, smtp_funcs); /* stack: core */
  return 1;
}
