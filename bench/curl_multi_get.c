/* curl_multi_get.c: the ceiling for the HTTP benchmark. Raw libcurl multi:
 * N GETs of URL with CONC in flight, keep-alive (the multi handle's
 * connection cache), CONC easy handles reused: when one finishes it is
 * removed and re-added for the next request. Driven by curl_multi_perform +
 * curl_multi_poll. Checks every status is 200 and counts body bytes, but does
 * not parse JSON. Prints requests/second on stdout.
 *
 * Built with -DSAME_WORK it does what resi's http.get + res:json() do on
 * top: sends a User-Agent and Accept-Encoding: gzip (a header list, as
 * resi does), keeps each response's header block and body, and decodes the
 * body into a tree with Debian's cJSON (checking it has a string "token"):
 * what the same work costs in C. (Debian's jansson was tried first: it costs
 * ~75 k instructions a decode of the bench's record, cJSON ~35 k.)
 *
 *   cc -O2 -o curl_multi_get curl_multi_get.c $(pkg-config --cflags --libs libcurl)
 *   cc -O2 -DSAME_WORK -o curl_json_get curl_multi_get.c $(pkg-config --cflags --libs libcurl libcjson)
 *   ./curl_multi_get URL N CONC */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef SAME_WORK
#include <cjson/cJSON.h>
#endif

static size_t body_bytes;

/* A growable byte buffer: a response's header block or body. */
typedef struct {
  char *data;
  size_t len, cap;
} buf;

/* Appends n bytes to b; 0 when memory runs out. */
static int buf_add(buf *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) return 0;
    b->data = d, b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 1;
}

/* One in-flight request's response. */
typedef struct {
  buf head, body;
} response;

/* CURLOPT_WRITEFUNCTION: counts the body (and keeps it in SAME_WORK). */
static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  body_bytes += size * n;
#ifdef SAME_WORK
  if (!buf_add(&((response *)ud)->body, data, size * n)) return 0;
#else
  (void)data, (void)ud;
#endif
  return size * n;
}

/* CURLOPT_HEADERFUNCTION (SAME_WORK): keeps the header block. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  return buf_add(&((response *)ud)->head, data, size * n) ? size * n : 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s URL N CONC\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  long n = atol(argv[2]), conc = atol(argv[3]);
  if (n < 1 || conc < 1) return 2;
  if (conc > n) conc = n;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conc);
  CURL **easy = calloc(conc, sizeof *easy);
  response *resp = calloc(conc, sizeof *resp);
  struct curl_slist *lines = curl_slist_append(NULL, "User-Agent: curl_json_get/1");
  lines = curl_slist_append(lines, "Accept-Encoding: gzip");
  long started = 0, done = 0;
  double t0 = now();
  for (long i = 0; i < conc; i++) {
    easy[i] = curl_easy_init();
    curl_easy_setopt(easy[i], CURLOPT_URL, url);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &resp[i]);
    curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (char *)&resp[i]);
#ifdef SAME_WORK
    curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, lines);
    curl_easy_setopt(easy[i], CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(easy[i], CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy[i], CURLOPT_HEADERDATA, &resp[i]);
#else
    (void)on_header;
#endif
    curl_multi_add_handle(multi, easy[i]);
    started++;
  }

  int running = 1;
  while (done < n) {
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      fprintf(stderr, "curl_multi_perform: %s\n", curl_multi_strerror(mc));
      return 1;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      CURLcode rc = msg->data.result;
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "request failed: %s, status %ld\n", curl_easy_strerror(rc), status);
        return 1;
      }
      response *rs = NULL;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&rs);
#ifdef SAME_WORK
      cJSON *doc = cJSON_ParseWithLength(rs->body.data, rs->body.len);
      if (doc == NULL || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "token"))) {
        fprintf(stderr, "unexpected document (%s)\n", doc ? "no token" : "not JSON");
        return 1;
      }
      cJSON_Delete(doc);
#endif
      rs->head.len = rs->body.len = 0;
      done++;
      curl_multi_remove_handle(multi, e);
      if (started < n) { /* the same handle, the same connection if it is still open */
        curl_multi_add_handle(multi, e);
        started++;
      }
    }
    if (done < n) curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
  double secs = now() - t0;

  for (long i = 0; i < conc; i++) {
    curl_easy_cleanup(easy[i]);
    free(resp[i].head.data), free(resp[i].body.data);
  }
  free(easy), free(resp);
  curl_slist_free_all(lines);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  fprintf(stderr, "%ld requests, %zu body bytes, %.3f s\n", n, body_bytes, secs);
  printf("%.1f\n", n / secs);
  return 0;
}
