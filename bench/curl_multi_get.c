/* curl_multi_get.c: the ceiling for the HTTP benchmark. Raw libcurl multi:
 * N GETs of URL with CONC in flight, keep-alive (the multi handle's
 * connection cache), CONC easy handles reused: when one finishes it is
 * removed and re-added for the next request. Driven by curl_multi_perform +
 * curl_multi_poll. Checks every status is 200 and counts body bytes, but does
 * not parse JSON. Prints requests/second on stdout.
 *
 *   cc -O2 -o curl_multi_get curl_multi_get.c $(pkg-config --cflags --libs libcurl)
 *   ./curl_multi_get URL N CONC */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t body_bytes;

/* CURLOPT_WRITEFUNCTION: counts and drops the body. */
static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  (void)data, (void)ud;
  body_bytes += size * n;
  return size * n;
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
  long started = 0, done = 0;
  double t0 = now();
  for (long i = 0; i < conc; i++) {
    easy[i] = curl_easy_init();
    curl_easy_setopt(easy[i], CURLOPT_URL, url);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
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

  for (long i = 0; i < conc; i++) curl_easy_cleanup(easy[i]);
  free(easy);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  fprintf(stderr, "%ld requests, %zu body bytes, %.3f s\n", n, body_bytes, secs);
  printf("%.1f\n", n / secs);
  return 0;
}
