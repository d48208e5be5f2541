#!/usr/bin/env bash
# Section: start-up time. hyperfine (-N: no shell in between, warm-up runs
# first) times `resi -e ''` against bare `lua5.4 -e ''`, `node -e ''` and
# `python3 -c 'import requests'` (Debian's python3, the import a Python HTTP
# script starts with); reports the median of BENCH_STARTUP_RUNS runs each and
# the ratio of resi to bare lua5.4 (target: at most 3x).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

runs=${BENCH_STARTUP_RUNS:-200}
warmup=${BENCH_STARTUP_WARMUP:-20}
json=$OUT/startup.json
target=3

hyperfine -N --style none --warmup "$warmup" --runs "$runs" --export-json "$json" \
  -n resi "./resi -e ''" \
  -n lua5.4 "lua5.4 -e ''" \
  -n node "/usr/bin/node -e ''" \
  -n python3 "/usr/bin/python3 -c 'import requests'" >/dev/null

cat <<MD
## Start-up time

Time from exec to exit of a program that does nothing: \`resi -e ''\` against bare
\`lua5.4 -e ''\`, \`node -e ''\` and \`python3 -c 'import requests'\` (Debian's
/usr/bin/python3; importing requests is how a Python HTTP script starts).
Measured with hyperfine, no shell in between (\`-N\`), $warmup warm-up runs, then
$runs runs each; the table gives the median and the spread in milliseconds.

MD

# Table and ratio from hyperfine's JSON export (times are in seconds there).
"$PY" - "$json" "$target" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
target = float(sys.argv[2])
labels = {
    "resi": "`resi -e ''`",
    "lua5.4": "`lua5.4 -e ''`",
    "node": "`node -e ''`",
    "python3": "`python3 -c 'import requests'`",
}
lua = results["lua5.4"]["median"]
print("| Command | Median (ms) | Mean ± σ (ms) | Min–max (ms) | × lua5.4 |")
print("|---|---:|---:|---:|---:|")
for name, label in labels.items():
    r = results[name]
    ms = lambda s: s * 1000
    print(f"| {label} | {ms(r['median']):.2f} | {ms(r['mean']):.2f} ± {ms(r['stddev']):.2f} "
          f"| {ms(r['min']):.2f}–{ms(r['max']):.2f} | {r['median'] / lua:.1f}× |")
ratio = results["resi"]["median"] / lua
print()
print(f"resi ÷ lua5.4 (median start-up): **{ratio:.2f}×**; target ≤ {target:g}× — "
      + ("**met**." if ratio <= target else "**not met**."))
PY

# What each module costs to load: `resi -e 'require "resi.X"'` against `resi -e ''`
# in one hyperfine run (interleaving is per command, so the base is measured in
# the same conditions); the cost is the difference of the medians.
mods=(json http proxylist ratelimit providers rotate store jobs cron notify log metrics health repl)
mod_runs=${BENCH_STARTUP_MOD_RUNS:-40}
args=(-n base "./resi -e ''")
for m in "${mods[@]}"; do args+=(-n "$m" "./resi -e 'require \"resi.$m\"'"); done
hyperfine -N --style none --warmup 5 --runs "$mod_runs" --export-json "$OUT/startup-mods.json" "${args[@]}" >/dev/null
cat <<MD

### What each module costs to load

The base, \`resi -e ''\`, loads only what every script gets (listed below the table); a script pays for what it requires.
\`resi -e 'require "resi.X"'\` against \`resi -e ''\` (hyperfine, $mod_runs runs each, same run):
the median time and its excess over the base (a module's own dependencies included,
so the costs overlap and do not add up).

MD
"$PY" - "$OUT/startup-mods.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
base = results["base"]["median"]
print("| Module | Median (ms) | Load cost (ms) |")
print("|---|---:|---:|")
print(f"| (none: `resi -e ''`) | {base * 1000:.2f} | — |")
for name, r in results.items():
    if name != "base":
        print(f"| `resi.{name}` | {r['median'] * 1000:.2f} | {(r['median'] - base) * 1000:+.2f} |")
PY
echo
# shellcheck disable=SC2016 # Lua code and Markdown backticks, not shell expansions
echo "Loaded by \`resi -e ''\` itself: $(./resi -e 'local t = {} for k in pairs(package.loaded) do if k:match("^resi") then t[#t + 1] = "`" .. k .. "`" end end table.sort(t) print(table.concat(t, ", "))')."
