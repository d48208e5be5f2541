#!/usr/bin/env bash
# Section: rate-limit-aware scheduling. A planned burst of BENCH_RL_N generate
# calls against a server enforcing ResiFactory's documented rule (20 per
# rolling window per API key) with the window shortened to BENCH_RL_WINDOW
# seconds. The server is `resi sim` (its ResiFactory API: exact sliding log
# per key, RateLimit-Limit/-Remaining/-Reset as a Unix timestamp, 429 with
# Retry-After), started with --rate-window. Three clients, each with its own API
# key: resi (ratelimit.request on the built-in resifactory "generate"
# profile), Bottleneck (npm, installed into bench/node_modules) configured as
# its README shows for "N per interval", and the naive backoff loop from the
# ResiFactory docs (Node). 429s and completions are the server's own counts.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

n=${BENCH_RL_N:-100}
rl_repeat=${BENCH_RL_REPEAT:-3} # resi's runs (each on its own key): the target is their median
limit=20
window=${BENCH_RL_WINDOW:-3}

if [[ ! -d bench/node_modules/bottleneck ]]; then
  npm install --prefix bench --no-save --no-package-lock --no-audit --no-fund bottleneck >&2
fi
bottleneck_version=$(/usr/bin/node -p 'require("./bench/node_modules/bottleneck/package.json").version' 2>/dev/null || echo unknown)

SERVER_PID=
stop_server() { if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap stop_server EXIT
trap 'exit 130' INT TERM

clients=(resi bottleneck naive)
for ((i = 2; i <= rl_repeat; i++)); do clients+=("resi$i"); done
# one sandbox account (and API key) per client, each with a pool balance
declare -A keys=()
accounts='{"pools":[{"id":"walmart_premium","label":"Premium","host":"proxy.resifactory.net","port":8000,"proxy_types":["rotating","sticky"]}],"resifactory":['
sep=
for cl in "${clients[@]}"; do
  keys[$cl]="rf_live_bench_${cl}_$(date +%s%N)"
  accounts+="$sep{\"api_key\":\"${keys[$cl]}\",\"username\":\"$cl\",\"balances\":{\"walmart_premium\":100}}"
  sep=,
done
accounts+=']}'
printf '%s\n' "$accounts" >"$OUT/rl-accounts.json"
"${SERVER_PIN[@]}" "$RESI" sim --ports 0,0,0 --no-traffic --rate-window "$window" --accounts "$OUT/rl-accounts.json" \
  >"$OUT/rl-server.out" 2>"$OUT/rl-server.err" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q '^RESI_RESIFACTORY_URL=' "$OUT/rl-server.out" 2>/dev/null && break
  sleep 0.05
done
grep -q '^RESI_RESIFACTORY_URL=' "$OUT/rl-server.out" || { cat "$OUT/rl-server.err" >&2; exit 1; }
api=$(sed -n 's/^RESI_RESIFACTORY_URL=//p' "$OUT/rl-server.out")
base=${api%/api/v1}
url="$api/proxies"

# shellcheck disable=SC2016 # backticks are Markdown
declare -A label=(
  [resi]='resi: `ratelimit.request` on `limits.limiter("resifactory", "generate", {window=W})`'
  [bottleneck]="Bottleneck $bottleneck_version: reservoir 20, refresh 20 every window, retry on \`failed\` after Retry-After"
  [naive]='ResiFactory docs: `callWithBackoff` (Node), each call on its own'
)
for ((i = 2; i <= rl_repeat; i++)); do label[resi$i]="resi, run $i (its own API key)"; done
declare -A done_=() rejected=() secs=() failed=()
for cl in "${clients[@]}"; do
  key=${keys[$cl]}
  case $cl in
    resi*) cmd=("$RESI" bench/ratelimit_burst.lua "$url" "$key" "$n" "$window") ;;
    bottleneck) cmd=(/usr/bin/node bench/ratelimit_bottleneck.mjs "$url" "$key" "$n" "$window") ;;
    naive) cmd=(/usr/bin/node bench/ratelimit_naive.mjs "$url" "$key" "$n" "$window") ;;
  esac
  log=$OUT/rl-$cl.err
  if out=$(timeout 300 "${CLIENT_PIN[@]}" "${cmd[@]}" 2>"$log"); then
    read -r _ _ s <<<"$out"
    stats=$(curl -fsS "$base/_sim/state" | /usr/bin/python3 -c 'import json,sys
accts = json.load(sys.stdin)["providers"]["resifactory"]["accounts"]
print(json.dumps([a["requests"]["generate"] for a in accts if a["username"] == sys.argv[1]][0]))' "$cl")
    done_[$cl]=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' <<<"$stats")
    rejected[$cl]=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["rate_limited"])' <<<"$stats")
    secs[$cl]=$s
    echo "ratelimit: $cl: $out (server: $stats)" >&2
  else
    failed[$cl]=$(tail -n 5 "$log" | tr '\n' ' ')
    echo "ratelimit: $cl failed: ${failed[$cl]}" >&2
  fi
done

# Achieved rate as a share of the allowed one: the calls after the first
# window's free burst, per second, divided by limit/window. A client that
# keeps the server exactly at its limit scores 100%.
share() {
  local cl=$1
  [[ -n ${secs[$cl]:-} ]] || { echo n/a; return; }
  awk -v d="${done_[$cl]}" -v s="${secs[$cl]}" -v l="$limit" -v w="$window" \
    'BEGIN { if (s <= 0 || d <= l) { print "n/a"; exit } printf "%.1f%%", ((d - l) / s) / (l / w) * 100 }'
}
min_time=$(awk -v n="$n" -v l="$limit" -v w="$window" 'BEGIN { printf "%g", (int((n + l - 1) / l) - 1) * w }')

cat <<MD
## Rate-limit-aware scheduling: a burst of $n generate calls

A planned burst of $n \`POST /api/v1/proxies\` calls, all issued at once, against a
server that enforces ResiFactory's documented rule, **$limit calls per rolling window per
API key**, with the window shortened from 60 s to **$window s** so the run is short.
The server is \`resi sim\` (\`--rate-window $window\`), whose ResiFactory API keeps an
exact sliding log of accepted calls per key (rejected calls are not counted), sends the
documented \`RateLimit-Limit\`, \`RateLimit-Remaining\` and \`RateLimit-Reset\` (a Unix
timestamp) on every answer, and 429 \`rate_limited\` with \`Retry-After\` (whole seconds)
over the limit. Completed calls and 429s are the sandbox's own counts per key (\`GET /_sim/state\`); the time is each client's, from the first call
to the last answer. The least time possible is ${min_time} s (the first $limit calls at once, then
$limit per window). Achieved rate = (completed − $limit) ÷ time ÷ ($limit ÷ $window s): the
calls after the first window's free burst as a share of the allowed rate.

- **resi**: \`bench/ratelimit_burst.lua\` — $n tasks, each \`ratelimit.request(lim, {method="POST", ...},
  {idempotency_key=true})\` with \`lim = limits.limiter("resifactory", "generate", {window=$window})\`.
- **Bottleneck**: \`bench/ratelimit_bottleneck.mjs\` — the README's "Reservoir Intervals" set-up for
  "N requests per interval" (\`reservoir: 20, reservoirRefreshAmount: 20, reservoirRefreshInterval: ${window}000\`),
  a 429 throws and the documented \`failed\` listener retries after \`Retry-After\` (up to 4 times).
- **Docs' loop**: \`bench/ratelimit_naive.mjs\` — the pseudo-code under "Handling 429" as written: 5 attempts,
  sleep \`(retryAfter·1000 + jitter)·2^attempt\` ms; only the jitter (up to 1000 ms for a 60 s window) is
  scaled to the shorter window.

| Client | Completed | 429s received | Total time (s) | Achieved rate |
|---|---:|---:|---:|---:|
MD
for cl in "${clients[@]}"; do
  if [[ -n ${failed[$cl]:-} ]]; then
    echo "| ${label[$cl]} | failed | | | |"
  else
    echo "| ${label[$cl]} | ${done_[$cl]} / $n | ${rejected[$cl]} | ${secs[$cl]} | $(share "$cl") |"
  fi
done
# resi's runs: least time possible ÷ time taken, and the achieved rate, per run
resi_runs=() resi_times=() resi_least=() all_ok=1
for cl in "${clients[@]}"; do
  [[ $cl == resi* ]] || continue
  resi_runs+=("$cl")
  if [[ -z ${secs[$cl]:-} || ${rejected[$cl]:-x} != 0 || ${done_[$cl]:-0} != "$n" ]]; then all_ok=0; continue; fi
  resi_times+=("${secs[$cl]}") resi_least+=("$min_time")
done
speed=$(round_ratios "${resi_least[*]}" "${resi_times[*]}" 100 %.1f)
met=$(awk -v s="${speed%% *}" -v ok="$all_ok" 'BEGIN { print (ok && s + 0 >= 95) ? "**met**" : "**not met**" }')
cat <<MD

Target for resi, as a ratio to the least time possible (${min_time} s, the same on any
machine): zero 429s and all $n calls completed in each of its ${#resi_runs[@]} runs, and least
time ÷ time taken ≥ 95% (median of the runs) — $met (least time ÷ time: ${speed}%, median
(min–max); achieved rate of the first run: $(share resi)).
MD
if ((${#failed[@]})); then
  echo
  echo "Failed clients:"
  echo
  for k in "${!failed[@]}"; do echo "- \`$k\`: ${failed[$k]}"; done
fi
