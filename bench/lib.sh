# shellcheck shell=bash disable=SC2034 # sets variables for the sections
# bench/lib.sh: helpers the section scripts source (not a section itself).
# Sets ROOT (the source tree), OUT (bench/out, gitignored) and RESI, and
# gives: free_port, median, fmt_int, ratio helpers, stop_pids, nginx_start/
# nginx_stop for a private nginx on a loopback port and sim_start/sim_up_get
# for a private `resi sim` (stopped by the caller's trap).
# Sourcing it is the whole preamble of a section: it also turns on strict
# mode (set -euo pipefail) and moves to ROOT.
set -euo pipefail

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
OUT=${OUT:-$ROOT/bench/out}
RESI=${RESI:-$ROOT/resi}
PY=/usr/bin/python3 # Debian's python3, so Debian's python3-requests is the one used
mkdir -p "$OUT"
cd "$ROOT"

# CPU placement for client/server benchmarks: the server on the last CPU, the
# clients on the others, so every run has the same placement (on a small VM a
# request/response round trip between two cores costs several times one on a
# shared core, and the scheduler's choice would otherwise decide the result).
# BENCH_PIN=0 or a single CPU turns it off.
NCPU=$(nproc)
if [[ ${BENCH_PIN:-1} != 0 ]] && ((NCPU >= 2)); then
  SERVER_CPUS=$((NCPU - 1))
  if ((NCPU == 2)); then CLIENT_CPUS=0; else CLIENT_CPUS=0-$((NCPU - 2)); fi
  SERVER_PIN=(taskset -c "$SERVER_CPUS")
  CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
else
  SERVER_CPUS='' CLIENT_CPUS='' SERVER_PIN=() CLIENT_PIN=()
fi

# Prints a TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints the median of the numbers given as arguments (the middle one of an odd count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Formats a number as an integer with thousands separators (12,345).
fmt_int() {
  LC_ALL=C awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'
}

# Prints a / b with the given printf format, or "n/a" when either is missing.
ratio() {
  local a=$1 b=$2 fmt=${3:-%.2f}
  if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] && awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
    awk -v a="$a" -v b="$b" -v f="$fmt" 'BEGIN { printf f, a / b }'
  else
    printf 'n/a'
  fi
}

# Per-round ratios of two commands' results, each given as a
# space-separated list in run order (the runs interleaved, one of each per
# round): prints "median (min–max)" of a[i] / b[i], scaled by $3 (default 1)
# with printf format $4 (default %.2f); "n/a" without two lists of one length.
round_ratios() {
  local -a x y q=()
  read -r -a x <<<"$1"
  read -r -a y <<<"$2"
  if ((${#x[@]} == 0 || ${#x[@]} != ${#y[@]})); then echo n/a; return; fi
  for i in "${!x[@]}"; do q+=("$(ratio "${x[$i]}" "${y[$i]}" %.5f)"); done
  local med lo hi
  med=$(median "${q[@]}")
  lo=$(printf '%s\n' "${q[@]}" | sort -g | head -n 1)
  hi=$(printf '%s\n' "${q[@]}" | sort -g | tail -n 1)
  awk -v m="$med" -v a="$lo" -v b="$hi" -v k="${3:-1}" -v f="${4:-%.2f}" 'BEGIN { printf f " (" f "–" f ")", m * k, a * k, b * k }'
}

# Prints "yes" when a / b >= target, "**no**" when below, "n/a" without both values.
meets() {
  local a=$1 b=$2 target=$3
  if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]]; then
    awk -v a="$a" -v b="$b" -v t="$target" 'BEGIN { if (b > 0 && a / b >= t) print "yes"; else print "**no**" }'
  else
    printf 'n/a'
  fi
}

# Starts nginx from a generated config in a fresh prefix under $OUT, serving
# $2 (the response body) as application/json at /token.json on 127.0.0.1:$1
# with $3 worker processes (default 1). Sets NGINX_PID, NGINX_PREFIX, NGINX_URL.
nginx_start() {
  local port=$1 body=$2 workers=${3:-1}
  NGINX_PREFIX=$(mktemp -d "$OUT/nginx.XXXXXX")
  mkdir -p "$NGINX_PREFIX/logs"
  cat >"$NGINX_PREFIX/nginx.conf" <<CONF
daemon off;
worker_processes $workers;
pid $NGINX_PREFIX/nginx.pid;
error_log $NGINX_PREFIX/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $NGINX_PREFIX/client_body;
  proxy_temp_path $NGINX_PREFIX/proxy;
  fastcgi_temp_path $NGINX_PREFIX/fastcgi;
  uwsgi_temp_path $NGINX_PREFIX/uwsgi;
  scgi_temp_path $NGINX_PREFIX/scgi;
  server {
    listen 127.0.0.1:$port;
    location = /token.json {
      default_type application/json;
      return 200 '$body';
    }
  }
}
CONF
  "${SERVER_PIN[@]}" nginx -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" -e "$NGINX_PREFIX/logs/error.log" &
  NGINX_PID=$!
  NGINX_URL="http://127.0.0.1:$port/token.json"
  for _ in $(seq 100); do
    if curl -fsS -o /dev/null "$NGINX_URL" 2>/dev/null; then return 0; fi
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "nginx did not start on port $port:" >&2
  cat "$NGINX_PREFIX/logs/error.log" >&2 || true
  return 1
}

# Stops the background processes given by id (SIGTERM, then waits for each);
# empty ids are skipped, so a trap can name ones that never started.
stop_pids() {
  local p
  for p in "$@"; do
    [[ -n $p ]] || continue
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}

# Stops the nginx started by nginx_start (if any) and removes its prefix.
nginx_stop() {
  stop_pids "${NGINX_PID:-}"
  NGINX_PID=
  if [[ -n ${NGINX_PREFIX:-} ]]; then rm -rf "$NGINX_PREFIX"; NGINX_PREFIX=; fi
}

# Starts `resi sim --ports 0,0,0 --no-traffic` plus the arguments after $1
# (e.g. --seed 1, or --accounts FILE) on the server CPU, waits for its
# --env-file $1.env (written whole once every port listens; the sim removes
# it when it stops) and exports what it holds: the API URLs, the gateways and
# the generated accounts' credentials. Its stderr goes to $1.err. Sets
# SIM_PID (stop it with stop_pids) and SIM_UP_AUTH, the UnknownProxies
# account's Basic credentials (base64) for sim_up_get.
sim_start() {
  local prefix=$1
  shift
  rm -f "$prefix.env"
  "${SERVER_PIN[@]}" "$RESI" sim --ports 0,0,0 --no-traffic --env-file "$prefix.env" "$@" >/dev/null 2>"$prefix.err" &
  SIM_PID=$!
  for _ in $(seq 600); do
    [[ -e $prefix.env ]] && break
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [[ ! -e $prefix.env ]]; then
    echo "resi sim did not start:" >&2
    cat "$prefix.err" >&2 || true
    return 1
  fi
  # shellcheck disable=SC1090,SC1091 # the sim's export lines
  source "$prefix.env"
  SIM_UP_AUTH=$(printf '%s' "${UNKNOWNPROXIES_USERNAME:-}:${UNKNOWNPROXIES_PASSWORD:-}" | base64 -w0)
}

# GETs $1 (a path under the sandbox's UnknownProxies API, e.g. /resi/tokens)
# with the account's Basic auth and prints the body (after sim_start).
sim_up_get() {
  curl -fsS -H "Authorization: Basic $SIM_UP_AUTH" "$RESI_UNKNOWNPROXIES_URL$1"
}
