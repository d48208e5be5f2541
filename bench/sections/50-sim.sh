#!/usr/bin/env bash
# Section: the sandbox's throughput. `resi sim` (one process, one core)
# answers an authenticated UnknownProxies token read
# (GET /api/v1/resi/token?token=ID, Basic auth, a ~220-byte JSON body) over
# keep-alive connections; wrk (Debian) drives it with 50 connections from the
# other core. For scale, the same wrk run against nginx serving the same body
# from a `return 200` (no auth, no state, no JSON encoding: a ceiling).
# BENCH_REPEAT runs of BENCH_SIM_SECONDS each; the table gives medians.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

secs=${BENCH_SIM_SECONDS:-5}
repeat=${BENCH_REPEAT:-3}
conns=50
SIM_PID=
stop_all() {
  nginx_stop
  stop_pids "$SIM_PID"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

sim_start "$OUT/sim" --seed 1
body=$(sim_up_get /resi/tokens)
token=$("$RESI" -e 'print(require("resi.json").decode(resi.args[1]).tokens[1].token)' "$body")
sim_url="$RESI_UNKNOWNPROXIES_URL/resi/token?token=$token"
doc=$(sim_up_get "/resi/token?token=$token")
nginx_start "$(free_port)" "$doc" 1

# Runs wrk against $1 (extra args after) and prints requests/s.
rps() {
  local url=$1; shift
  "${CLIENT_PIN[@]}" wrk -t1 -c"$conns" -d"${secs}s" "$@" "$url" | awk '/^Requests\/sec:/ { print $2 }'
}

sim_runs=() nginx_runs=()
for _ in $(seq "$repeat"); do
  sim_runs+=("$(rps "$sim_url" -H "Authorization: Basic $SIM_UP_AUTH")")
  nginx_runs+=("$(rps "$NGINX_URL")")
done
sim_med=$(median "${sim_runs[@]}")
nginx_med=$(median "${nginx_runs[@]}")
# the target as a ratio to nginx run beside it: 20,000 req/s was 14.7% of nginx's
# 135,861 on the day it was set; each round runs the sandbox, then nginx
per_round=$(round_ratios "${sim_runs[*]}" "${nginx_runs[*]}" 100 %.1f)
ratio_target=15

cat <<MD
## Sandbox throughput (\`resi sim\`)

wrk 1 thread, $conns keep-alive connections, ${secs} s per run, median of $repeat runs;
the server pinned to one CPU and wrk to the other (\`BENCH_PIN=0\` turns this off).
The sandbox answers an authenticated UnknownProxies token read
(\`GET /api/v1/resi/token?token=ID\` with Basic auth: parse, route, check the
credentials, look up the token, re-check its expiry, write its JSON: encoded when the token
has changed since its last read, else the text encoded then). nginx returns
the same body from its config: no auth, no state, no encoding.

| Server | Requests/s (median) | Runs |
|---|---:|---|
| \`resi sim\`, UnknownProxies token read | $(fmt_int "$sim_med") | $(printf '%s ' "${sim_runs[@]}") |
| nginx \`return 200\`, same body (ceiling) | $(fmt_int "$nginx_med") | $(printf '%s ' "${nginx_runs[@]}") |

resi sim ÷ nginx: **$(ratio "$sim_med" "$nginx_med" "%.4f" | awk '{ printf "%.0f%%", $1 * 100 }')** (ratio of the medians);
per round (sandbox and nginx run in turn): ${per_round}%, median (min–max).
Target resi sim ≥ ${ratio_target}% of nginx (per-round median): **$(awk -v v="${per_round%% *}" -v t="$ratio_target" 'BEGIN { print (v + 0 >= t) ? "met" : "not met" }')**.
Absolute figure (depends on the day): ≥ 20,000 requests/s: **$(awk -v v="$sim_med" 'BEGIN { print (v >= 20000) ? "met" : "not met" }')**.
MD
