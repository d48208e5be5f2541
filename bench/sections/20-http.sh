#!/usr/bin/env bash
# Section: HTTP client throughput. A private nginx (generated config, loopback
# port, 1 worker, keep-alive) serves a ~300-byte JSON token record; four
# clients GET it with keep-alive, sequentially (BENCH_SEQ_N requests) and with
# BENCH_CONC in flight (BENCH_CONC_N requests): resi (bench/http_get.lua,
# res:json() on every response), a raw libcurl multi C program
# (bench/curl_multi_get.c, no JSON: the ceiling), the same C program built to
# do the same work as resi (-DSAME_WORK: User-Agent and gzip sent, headers
# kept, JSON decoded with cJSON), Python requests.Session
# (bench/http_get.py) and Node fetch (bench/http_get.mjs). Each client times
# itself and prints requests/s; the table gives the median of BENCH_REPEAT
# runs (runs interleaved across clients), then the ratios and targets.
# nginx and the clients are pinned to separate CPUs (lib.sh); the
# BENCH_CONC-in-flight runs are repeated with the client unpinned.
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh" # strict mode, in ROOT

seq_n=${BENCH_SEQ_N:-5000}
conc_n=${BENCH_CONC_N:-20000}
conc=${BENCH_CONC:-50}
repeat=${BENCH_REPEAT:-3}
workers=1 # nginx worker processes: one core for nginx, the other for the client
doc='{"token":"tk_live_7Hq2mZ9xP4vLr8Ka","username":"bench01","status":"active","dataLimit":10737418240,"dataUsed":9663676416,"bytesIn":123456789012345,"bytesOut":98765432109,"durationHours":720,"createdAt":1732300000,"expiresAt":1734892000,"sessions":{"active":12,"max":100},"allowedPools":["residential","mobile"]}'

trap nginx_stop EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2046 # pkg-config prints several words
cc -O2 -Wall -o "$OUT/curl_multi_get" bench/curl_multi_get.c $(pkg-config --cflags --libs libcurl)
# shellcheck disable=SC2046
cc -O2 -Wall -DSAME_WORK -o "$OUT/curl_json_get" bench/curl_multi_get.c $(pkg-config --cflags --libs libcurl libcjson)
nginx_start "$(free_port)" "$doc" "$workers"

clients=(resi curl curlsame python node)
# shellcheck disable=SC2016 # backticks are Markdown
declare -A label=(
  [resi]='resi: `http.get` + `res:json()`'
  [curl]='raw libcurl multi, C (no JSON): ceiling'
  [curlsame]='libcurl multi + cJSON, C: the same work as resi'
  [python]='Python `requests.Session` + `.json()`'
  [node]='Node `fetch` + `await res.json()`'
)
# Sets cmd to the command line of client $1 for $2 requests with $3 in flight.
client_cmd() {
  case $1 in
    resi) cmd=("$RESI" bench/http_get.lua "$NGINX_URL" "$2" "$3") ;;
    curl) cmd=("$OUT/curl_multi_get" "$NGINX_URL" "$2" "$3") ;;
    curlsame) cmd=("$OUT/curl_json_get" "$NGINX_URL" "$2" "$3") ;;
    python) cmd=("$PY" bench/http_get.py "$NGINX_URL" "$2" "$3") ;;
    node) cmd=(/usr/bin/node bench/http_get.mjs "$NGINX_URL" "$2" "$3") ;;
  esac
}

declare -A runs=() cpu=() failed=()
[[ -x /usr/bin/time ]] || { echo "GNU time is missing (make deps BENCH_DEPS=1 installs it)" >&2; exit 1; }
# Modes: seq (1 in flight), conc ($conc in flight), and when clients are pinned
# also free: $conc in flight with the client left to the scheduler (only nginx
# pinned), for clients that use more than one core when they may.
modes=(seq conc)
[[ -n $SERVER_CPUS ]] && modes+=(free freeseq)
for mode in "${modes[@]}"; do
  if [[ $mode == seq || $mode == freeseq ]]; then n=$seq_n c=1; else n=$conc_n c=$conc; fi
  pin=("${CLIENT_PIN[@]}")
  [[ $mode == free* ]] && pin=()
  for ((r = 1; r <= repeat; r++)); do
    for cl in "${clients[@]}"; do
      [[ -n ${failed[$cl.$mode]:-} ]] && continue
      log=$OUT/http-$cl-$mode.err
      client_cmd "$cl" "$n" "$c"
      if out=$(timeout 600 /usr/bin/time -f '%U %S' -o "$OUT/http-cpu" "${pin[@]}" "${cmd[@]}" 2>"$log") &&
        [[ $out =~ ^[0-9.]+$ ]]; then
        runs[$cl.$mode]+=" $out"
        # client CPU (user + sys of the whole process, start-up included) per request, in µs
        cpu[$cl.$mode]+=" $(awk -v n="$n" '{ printf "%.2f", ($1 + $2) * 1e6 / n }' "$OUT/http-cpu")"
        echo "http: $cl $mode run $r: $out req/s, ${cpu[$cl.$mode]##* } µs CPU/request" >&2
      else
        failed[$cl.$mode]="$(tail -n 5 "$log" | tr '\n' ' ')"
        [[ -n ${failed[$cl.$mode]//[[:space:]]/} ]] || failed[$cl.$mode]="no requests/s line and no error output"
        echo "http: $cl $mode failed: ${failed[$cl.$mode]}" >&2
      fi
    done
  done
done

# The runs of client $1 in mode $2, one a line, sorted.
runs_of() { tr ' ' '\n' <<<"${runs[$1.$2]:-}" | grep . | sort -g; }
# The median of a client's runs in a mode, or "failed".
med() {
  if [[ -n ${failed[$1.$2]:-} ]]; then echo failed; return; fi
  local v; mapfile -t v < <(runs_of "$1" "$2"); median "${v[@]}"
}
# A table cell: median with the min–max of the runs.
cell() {
  [[ -n ${failed[$1.$2]:-} ]] && { echo "failed"; return; }
  local v; mapfile -t v < <(runs_of "$1" "$2")
  echo "$(fmt_int "$(median "${v[@]}")") ($(fmt_int "${v[0]}")–$(fmt_int "${v[-1]}"))"
}
# Per-round ratios (lib.sh round_ratios) of client $2 ÷ client $3 in mode
# $4, from the runs or cpu values (array named $1), scaled by $5, format $6.
round_ratio() {
  local -n src=$1
  round_ratios "${src[$2.$4]:-}" "${src[$3.$4]:-}" "$5" "$6"
}
# "yes" when the median per-round ratio (first word of round_ratio's
# output, unscaled) is >= $2 (or <= $2 when $3 is "max").
round_meets() {
  local first=${1%% *}
  [[ $first =~ ^[0-9.]+$ ]] || { echo n/a; return; }
  awk -v v="$first" -v t="$2" -v d="${3:-min}" 'BEGIN { ok = d == "max" ? v <= t : v >= t; print ok ? "yes" : "**no**" }'
}
# The median CPU µs per request of a client in a mode, or "failed".
cpu_cell() {
  [[ -n ${failed[$1.$2]:-} ]] && { echo failed; return; }
  local v; read -r -a v <<<"${cpu[$1.$2]:-}"
  ((${#v[@]})) && median "${v[@]}" || echo n/a
}
pct() { ratio "$1" "$2" | awk '{ if ($1 == "n/a") print "n/a"; else printf "%.0f%%", $1 * 100 }'; }
times() { local v; v=$(ratio "$1" "$2" %.1f); [[ $v == n/a ]] && echo n/a || echo "$v×"; }

declare -A m=()
for cl in "${clients[@]}"; do for mode in "${modes[@]}"; do m[$cl.$mode]=$(med "$cl" "$mode"); done; done

if [[ -n $SERVER_CPUS ]]; then
  placement="nginx (one worker) is pinned to CPU $SERVER_CPUS and every client to CPU $CLIENT_CPUS
(\`taskset\`), so each run has the same placement and each client the same budget
(\`BENCH_PIN=0\` turns this off). The targets are judged on these pinned runs. The
last column repeats the $conc-in-flight runs with the client left to the scheduler (nginx
still pinned): a client with helper threads (Node's V8) then also uses nginx's core."
else
  placement="no CPU pinning."
fi

cat <<MD
## HTTP GET of a small JSON document

Each client GETs a ${#doc}-byte JSON token record (strings and integers up to
123456789012345) from a private nginx $(nginx -v 2>&1 | sed 's|.*/||') on a loopback port
(generated config: \`worker_processes $workers\`, \`worker_connections 4096\`,
\`keepalive_requests 1000000\`, \`access_log off\`, the body served by \`return 200\`),
over keep-alive connections, and decodes every response's JSON (except the C
ceiling). Two modes: **sequential** ($(fmt_int "$seq_n") requests, one after another) and
**$conc in flight** ($(fmt_int "$conc_n") requests, $conc at a time). Each client times itself
from the first request to the last response and prints requests/s; the table gives
the median (and min–max) of $repeat runs, run in turn across clients. nginx and the
client share the machine's $NCPU cores: $placement

- **resi**: \`bench/http_get.lua\` — $conc worker tasks (\`resi.spawn\`), each looping
  \`http.get(url)\` + \`res:json()\` until the count is reached; one worker when sequential.
- **raw libcurl**: \`bench/curl_multi_get.c\` — \`curl_multi_perform\`/\`curl_multi_poll\`, $conc
  reused easy handles; checks the status, does not parse JSON. This is the ceiling.
- **libcurl + cJSON**: the same program built with \`-DSAME_WORK\`: what resi does on top of
  the ceiling, in C. It sends a User-Agent and \`Accept-Encoding: gzip\` (one header list, as
  resi does), keeps each response's header block and body, and decodes every body with
  Debian's cJSON \`$(dpkg-query -W -f '${Version}' libcjson-dev 2>/dev/null || echo "?")\` into a tree,
  checking its \`token\`. The targets are against the ceiling. This column shows how much of
  resi's excess over it the work itself costs.
- **Python**: \`bench/http_get.py\` with Debian's python3-requests — one \`requests.Session\`
  sequentially; for $conc in flight a \`ThreadPoolExecutor($conc)\` running $conc workers, each
  with its own Session.
- **Node**: \`bench/http_get.mjs\` — built-in \`fetch\` (undici, keep-alive agent), sequential
  awaits; for $conc in flight $conc async workers.

MD
if [[ " ${modes[*]} " == *" free "* ]]; then
  echo "| Client | Sequential (req/s) | $conc in flight (req/s) | $conc in flight, client not pinned (req/s) | Sequential, client not pinned (req/s) | CPU µs/request: sequential / $conc in flight |"
  echo "|---|---:|---:|---:|---:|---:|"
  for cl in "${clients[@]}"; do
    echo "| ${label[$cl]} | $(cell "$cl" seq) | $(cell "$cl" conc) | $(cell "$cl" free) | $(cell "$cl" freeseq) | $(cpu_cell "$cl" seq) / $(cpu_cell "$cl" conc) |"
  done
else
  echo "| Client | Sequential (req/s) | $conc in flight (req/s) |"
  echo "|---|---:|---:|"
  for cl in "${clients[@]}"; do
    echo "| ${label[$cl]} | $(cell "$cl" seq) | $(cell "$cl" conc) | $(cpu_cell "$cl" seq) / $(cpu_cell "$cl" conc) |"
  done
fi
r_seq=$(round_ratio runs resi curl seq 100 %.0f) r_conc=$(round_ratio runs resi curl conc 100 %.0f)
c_seq=$(round_ratio cpu resi curl seq 1 %.2f) c_conc=$(round_ratio cpu resi curl conc 1 %.2f)
cat <<MD

CPU per request is the client process's user + sys time (GNU time, start-up
included) divided by its requests. Targets as ratios to raw libcurl measured
in the same round (each round runs every client once, in turn): the median of the
$repeat rounds' ratios, with their min–max.

| Target (per-round ratio to raw libcurl) | Median (min–max) | Met |
|---|---:|---|
| resi CPU/request ≤ 1.2× libcurl's, sequential | ${c_seq}× | $(round_meets "$(round_ratio cpu resi curl seq 1 %.4f)" 1.2 max) |
| resi CPU/request ≤ 1.5× libcurl's, $conc in flight | ${c_conc}× | $(round_meets "$(round_ratio cpu resi curl conc 1 %.4f)" 1.5 max) |
| resi throughput ≥ 90% of libcurl's, sequential, pinned | ${r_seq}% | $(round_meets "$(round_ratio runs resi curl seq 1 %.4f)" 0.9) |
| resi throughput ≥ 75% of libcurl's, $conc in flight, pinned | ${r_conc}% | $(round_meets "$(round_ratio runs resi curl conc 1 %.4f)" 0.75) |
MD
if [[ " ${modes[*]} " == *" free "* ]]; then
  r_fs=$(round_ratio runs resi curl freeseq 100 %.0f)
  echo "| resi throughput ≥ 80% of libcurl's, sequential, not pinned | ${r_fs}% | $(round_meets "$(round_ratio runs resi curl freeseq 1 %.4f)" 0.8) |"
fi
cat <<MD

| Ratio | Value | Target | Met |
|---|---:|---:|---|
| resi ÷ raw libcurl, sequential | $(pct "${m[resi.seq]}" "${m[curl.seq]}") | ≥ 75% | $(meets "${m[resi.seq]}" "${m[curl.seq]}" 0.75) |
| resi ÷ raw libcurl, $conc in flight | $(pct "${m[resi.conc]}" "${m[curl.conc]}") | ≥ 50% | $(meets "${m[resi.conc]}" "${m[curl.conc]}" 0.50) |
| resi ÷ Node fetch, $conc in flight | $(times "${m[resi.conc]}" "${m[node.conc]}") | ≥ 5× | $(meets "${m[resi.conc]}" "${m[node.conc]}" 5) |
| resi ÷ Node fetch, sequential | $(times "${m[resi.seq]}" "${m[node.seq]}") | — | |
| resi ÷ Python requests, sequential | $(times "${m[resi.seq]}" "${m[python.seq]}") | — | |
| resi ÷ Python requests, $conc in flight | $(times "${m[resi.conc]}" "${m[python.conc]}") | — | |
| libcurl + cJSON ÷ raw libcurl, sequential | $(pct "${m[curlsame.seq]}" "${m[curl.seq]}") | — | |
| libcurl + cJSON ÷ raw libcurl, $conc in flight | $(pct "${m[curlsame.conc]}" "${m[curl.conc]}") | — | |
| resi ÷ libcurl + cJSON, sequential | $(pct "${m[resi.seq]}" "${m[curlsame.seq]}") | — | |
| resi ÷ libcurl + cJSON, $conc in flight | $(pct "${m[resi.conc]}" "${m[curlsame.conc]}") | — | |
MD
if [[ " ${modes[*]} " == *" free "* ]]; then
  echo "| resi ÷ raw libcurl, $conc in flight, client not pinned | $(pct "${m[resi.free]}" "${m[curl.free]}") | — | |"
  echo "| resi ÷ Node fetch, $conc in flight, client not pinned | $(times "${m[resi.free]}" "${m[node.free]}") | — | |"
  echo "| resi ÷ raw libcurl, sequential, client not pinned | $(pct "${m[resi.freeseq]}" "${m[curl.freeseq]}") | — | |"
fi
cat <<MD

CPU per request as per-round ratios (median, min–max), for scale (no targets):

| CPU per request | Sequential | $conc in flight |
|---|---:|---:|
| libcurl + cJSON ÷ raw libcurl | $(round_ratio cpu curlsame curl seq 1 %.2f)× | $(round_ratio cpu curlsame curl conc 1 %.2f)× |
| resi ÷ libcurl + cJSON | $(round_ratio cpu resi curlsame seq 1 %.2f)× | $(round_ratio cpu resi curlsame conc 1 %.2f)× |
MD

if ((${#failed[@]})); then
  echo
  echo "Failed clients (their ratios read n/a):"
  echo
  for k in "${!failed[@]}"; do echo "- \`$k\`: ${failed[$k]}"; done
fi
