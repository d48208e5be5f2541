#!/usr/bin/env bash
# Section: cost as work grows. The everyday workflows at a large reseller's
# sizes, against `resi sim` (one UnknownProxies account seeded with N tokens,
# 10% of them over the rotation threshold; read and generate limits lifted
# through /_sim/config): scripts/usage_report.lua and rotate.lua's run
# (bench/scale_rotate.lua: resi.rotate.run with the client's own pacing lifted
# too) over N = BENCH_SCALE_SIZES tokens, and proxylist.check of the same number
# of entries through a local proxy (microsocks) to nginx. Each step's wall
# time, CPU (user + sys of the resi process: its own work, not the sim's)
# and peak RSS come from GNU time; the growth exponent k of time ~ N^k is
# the least-squares slope of log(time) on log(N).
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh" # strict mode, in ROOT

read -r -a sizes <<<"${BENCH_SCALE_SIZES:-100 1000 10000}"
step_limit=${BENCH_SCALE_TIMEOUT:-60} # seconds a step may take before it counts as not finished
[[ -x /usr/bin/time ]] || { echo "GNU time is missing (make deps BENCH_DEPS=1 installs it)" >&2; exit 1; }
command -v microsocks >/dev/null || { echo "microsocks is missing (make deps installs it)" >&2; exit 1; }
dir=$(mktemp -d "$OUT/scale.XXXXXX")
SIM_PID='' SOCKS_PID=''
stop_all() {
  stop_pids "$SIM_PID" "$SOCKS_PID"
  nginx_stop
  rm -rf "$dir"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

nginx_start "$(free_port)" '{"ok":true}' 1
socks_port=$(free_port)
"${SERVER_PIN[@]}" microsocks -i 127.0.0.1 -p "$socks_port" >/dev/null 2>&1 &
SOCKS_PID=$!

# Writes the sandbox's accounts (N tokens of 10 GB, every tenth at 95%) to $2.
accounts() {
  "$PY" - "$1" "$2" <<'PY'
import json, sys
n, GB = int(sys.argv[1]), 10**9
tokens = [{"dataLimit": 10 * GB, "dataUsage": int((9.5 if i % 10 == 0 else 2) * GB)} for i in range(n)]
json.dump({"unknownproxies": [{"username": "reseller-scale", "password": "scale-bench-password-1", "tokens": tokens}]},
          open(sys.argv[2], "w"))
PY
}

# Runs a command under GNU time; appends "wall cpu rss_kb" to the named array,
# or "timeout" when it ran longer than step_limit (returns 1 then).
measure() {
  local -n into=$1; shift
  local rc=0
  timeout "$step_limit" /usr/bin/time -f '%e %U %S %M' -o "$dir/time" "$@" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
  if ((rc == 124)); then into+=("timeout"); echo "timed out after ${step_limit}s: $*" >&2; return 1; fi
  ((rc == 0)) || { echo "failed: $*" >&2; tail -n 20 "$dir/stderr" >&2; exit 1; }
  into+=("$(awk '{ printf "%s %.2f %d", $1, $2 + $3, $4 }' "$dir/time")")
}

declare -a usage=() rotate=() check=()
for n in "${sizes[@]}"; do
  accounts "$n" "$dir/sim-$n.json"
  sim_start "$dir/sim" --accounts "$dir/sim-$n.json"
  url=$RESI_UNKNOWNPROXIES_URL
  base=${url%/api/v1}
  curl -fsS -X POST -H 'Content-Type: application/json' -d '{"read_limit": 1000000, "generate_limit": 1000000}' \
    "$base/_sim/config" >/dev/null
  "$PY" -c 'import json, sys
a = json.load(open(sys.argv[1])); acct = a["unknownproxies"][0]; acct.pop("tokens"); acct["base_url"] = sys.argv[2]
json.dump(a, open(sys.argv[3], "w"))' "$dir/sim-$n.json" "$url" "$dir/client-$n.json"
  if measure usage "${CLIENT_PIN[@]}" "$RESI" run usage_report --accounts "$dir/client-$n.json" --format json; then
    rows=$("$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$dir/stdout")
    ((rows == n)) || { echo "usage_report listed $rows tokens of $n" >&2; exit 1; }
  fi
  if measure rotate "${CLIENT_PIN[@]}" "$RESI" bench/scale_rotate.lua "$dir/client-$n.json" "$dir/store-$n.db" \
    "$dir/live-$n.txt"; then
    grep -q "^$((n / 10)) rotated, 0 retired, 0 failed" "$dir/stdout" ||
      { echo "rotate did not rotate $((n / 10)) tokens:" >&2; tail -n 5 "$dir/stdout" "$dir/stderr" >&2; exit 1; }
  fi
  stop_pids "$SIM_PID"
  SIM_PID=
  # proxylist.check: N entries, all the same local SOCKS5 proxy, each fetching nginx's document
  awk -v n="$n" -v p="$socks_port" 'BEGIN { for (i = 1; i <= n; i++) printf "socks5://u%d:p@127.0.0.1:%d\n", i, p }' \
    >"$dir/check-$n.txt"
  cat >"$dir/check.lua" <<'LUA'
local a = require("resi").args
local list = require("resi.proxylist").load(a[1])
local results = require("resi.proxylist").check(list, { url = a[2], concurrency = 50, timeout = 10 })
local ok = 0
for _, r in ipairs(results) do if r.ok then ok = ok + 1 end end
assert(ok == #list, ok .. " of " .. #list .. " proxies worked")
LUA
  measure check "${CLIENT_PIN[@]}" "$RESI" "$dir/check.lua" "$dir/check-$n.txt" "$NGINX_URL" || true
  echo "scale: $n: usage ${usage[-1]}, rotate ${rotate[-1]}, check ${check[-1]}" >&2
done

# The least-squares slope of log(field $2 of the named array) on log(size).
exponent() {
  local -n rows=$1
  local i
  for i in "${!sizes[@]}"; do [[ ${rows[$i]} == timeout ]] || echo "${sizes[$i]} ${rows[$i]}"; done |
    awk -v f="$(($2 + 1))" '{ x = log($1); y = log($f > 0 ? $f : 0.005); sx += x; sy += y; sxx += x * x; sxy += x * y; n++ }
      END { d = n * sxx - sx * sx; if (n < 2 || d == 0) print "n/a"; else printf "%.2f", (n * sxy - sx * sy) / d }'
}
# One table row per size: wall s, CPU s, peak RSS MB.
rows_of() {
  local -n rows=$1
  local i
  for i in "${!sizes[@]}"; do
    if [[ ${rows[$i]} == timeout ]]; then
      printf '| %s | %s | not finished in %s s | | |\n' "$2" "$(fmt_int "${sizes[$i]}")" "$step_limit"
      continue
    fi
    read -r w c m <<<"${rows[$i]}"
    printf '| %s | %s | %s | %s | %s |\n' "$2" "$(fmt_int "${sizes[$i]}")" "$w" "$c" "$(awk -v k="$m" 'BEGIN { printf "%.1f", k / 1024 }')"
  done
}
last=$((${#sizes[@]} - 1))
if [[ ${rotate[$last]} == timeout ]]; then rot_cpu="> $step_limit (not finished)"; else read -r _ rot_cpu _ <<<"${rotate[$last]}"; fi
# "yes" when the exponent k ($1) is at most 1.1 and no size of workflow $2 timed out.
linear() {
  local -n all=$2
  [[ " ${all[*]} " == *" timeout "* ]] && { echo "**no** (not finished)"; return; }
  awk -v k="$1" 'BEGIN { print (k ~ /^[0-9.-]+$/ && k + 0 <= 1.1) ? "yes" : "**no**" }'
}

cat <<MD
## Cost as work grows

The everyday workflows at a large reseller's sizes, against \`resi sim\`: one UnknownProxies
account seeded with N tokens of 10 GB, every tenth at 95% of its limit (so a rotation
replaces N/10 of them), the sandbox's read and generate limits lifted (\`POST /_sim/config\`).
\`usage_report.lua --format json\` lists every token; \`bench/scale_rotate.lua\` runs what
\`rotate.lua\` runs (\`resi.rotate.run\`, threshold 0.9, store and live list in a scratch
directory) with the client's own pacing lifted as well (for a provider that documents no
limit resi starts at 120 calls a minute, which would make a 10,000-token run a wait of
minutes, not a measure of resi's work); \`proxylist.check\` checks N entries through a
local SOCKS5 proxy (microsocks) to nginx, 50 at a time. Wall time, CPU (user + sys of the resi
process: its own work, not the sandbox's) and peak RSS from GNU time, one run per size.
k is the fitted exponent of time ~ N^k (least squares on log–log, start-up included, so small
sizes pull it below 1; a step not finished in ${step_limit} s is left out of the fit and fails its target): 1 is linear.

| Workflow | N | Wall (s) | CPU (s) | Peak RSS (MB) |
|---|---:|---:|---:|---:|
$(rows_of usage usage_report.lua)
$(rows_of rotate "rotate (resi.rotate.run)")
$(rows_of check proxylist.check)

| Target | Value | Met |
|---|---:|---|
| usage_report: time grows linearly (k ≤ 1.1; wall / CPU) | $(exponent usage 1) / $(exponent usage 2) | $(linear "$(exponent usage 1)" usage) |
| rotate: time grows linearly (k ≤ 1.1; wall / CPU) | $(exponent rotate 1) / $(exponent rotate 2) | $(linear "$(exponent rotate 1)" rotate) |
| proxylist.check: time grows linearly (k ≤ 1.1; wall / CPU) | $(exponent check 1) / $(exponent check 2) | $(linear "$(exponent check 1)" check) |
| memory grows at most linearly (k of peak RSS: usage / rotate / check) | $(exponent usage 3) / $(exponent rotate 3) / $(exponent check 3) | $(awk -v a="$(exponent usage 3)" -v b="$(exponent rotate 3)" -v c="$(exponent check 3)" 'BEGIN { print (a + 0 <= 1.1 && b + 0 <= 1.1 && c + 0 <= 1.1) ? "yes" : "**no**" }') |
| a $(fmt_int "${sizes[$last]}")-token rotation's own CPU ≤ 2 s | $rot_cpu s | $(awk -v c="$rot_cpu" 'BEGIN { print (c ~ /^[0-9.]+$/ && c <= 2) ? "yes" : "**no**" }') |
MD
