#!/usr/bin/env bash
# Section: proxy-list conversion. A 250,000-line ResiFactory list file
# (host:port:user:pass, the API's maximum quantity; generated
# deterministically by awk) is converted to userpass (user:pass@host:port) by
# `resi proxies convert`, awk (Debian's mawk), Python and plain Lua string
# patterns (lua5.4), each writing a file in bench/out; the outputs must be
# byte-identical. Then the same entries in ResiFactory's json format are
# parsed and written as userpass by resi and by Python's json module; the Lua
# API (proxylist.load + list:save, with and without fsync) on the list file;
# and a long-username list (fewer, longer lines) through convert and awk. Each
# command runs BENCH_REPEAT_PROXYLIST times (runs interleaved, one of each per
# round); the table gives the median wall time and the peak RSS (GNU time) of
# one run, the targets the median of the per-round ratios with their min–max.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

n=250000
repeat=${BENCH_REPEAT_PROXYLIST:-11}
list=$OUT/proxies-250k.txt
jsonf=$OUT/proxies-250k.json
[[ -x /usr/bin/time ]] || { echo "GNU time is missing (make deps BENCH_DEPS=1 installs it)" >&2; exit 1; }

awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++)
  printf "proxy.resifactory.net:8000:user-country-us-session-%08x:pw%06d\n", (i * 2654435761) % 4294967296, i }' >"$list"
# the long-username list: fewer, longer lines (a reseller's sticky sessions), where per-byte work shows
longf=$OUT/proxies-long.txt
awk -v n=150000 'BEGIN { for (i = 1; i <= n; i++)
  printf "proxy.resifactory.net:8000:customer-reseller_acme-cc-us-state-california-sessid-%010d-sesstime-30:pw%06d\n", i * 7919, i }' >"$longf"
awk -v n="$n" 'BEGIN { print "["; for (i = 1; i <= n; i++)
  printf "{\"host\":\"proxy.resifactory.net\",\"port\":8000,\"username\":\"user-country-us-session-%08x\",\"password\":\"pw%06d\"}%s\n",
    (i * 2654435761) % 4294967296, i, (i < n ? "," : "") ; print "]" }' >"$jsonf"

cat >"$OUT/pl_convert.py" <<'PY'
import sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    w = out.write
    for line in f:
        h, p, u, pw = line.rstrip("\n").split(":", 3)
        w(f"{u}:{pw}@{h}:{p}\n")
PY
cat >"$OUT/pl_json.py" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    items = json.load(f)
with open(sys.argv[2], "w") as out:
    out.write("".join(f"{e['username']}:{e['password']}@{e['host']}:{e['port']}\n" for e in items))
PY
cat >"$OUT/pl_convert.lua" <<'LUA'
local out = assert(io.open(arg[2], "w"))
for line in io.lines(arg[1]) do
  local h, p, u, pw = line:match("^([^:]+):([^:]+):([^:]+):(.*)$")
  out:write(u, ":", pw, "@", h, ":", p, "\n")
end
out:close()
LUA

cat >"$OUT/pl_api.lua" <<'LUA'
-- the Lua API: proxylist.load, then list:save (opts.sync as given)
local a = require("resi").args
local list = require("resi.proxylist").load(a[1], { format = "list" })
list:save(a[2], "userpass", { sync = a[3] ~= "nosync" })
LUA

declare -A cmd label
cmd[resi]="$RESI proxies convert --from list --to userpass -o $OUT/pl-resi.out $list"
cmd[api]="$RESI $OUT/pl_api.lua $list $OUT/pl-api.out"
cmd[apinosync]="$RESI $OUT/pl_api.lua $list $OUT/pl-apinosync.out nosync"
cmd[resilong]="$RESI proxies convert --from list --to userpass -o $OUT/pl-resilong.out $longf"
cmd[awklong]="awk -F: -f $OUT/pl-long.awk $longf"
printf '{ print $3 ":" $4 "@" $1 ":" $2 > "%s" }\n' "$OUT/pl-awklong.out" >"$OUT/pl-long.awk"
cmd[awk]="awk -F: -f $OUT/pl.awk $list"
printf '{ print $3 ":" $4 "@" $1 ":" $2 > "%s" }\n' "$OUT/pl-awk.out" >"$OUT/pl.awk"
cmd[python]="$PY $OUT/pl_convert.py $list $OUT/pl-python.out"
cmd[lua]="lua5.4 $OUT/pl_convert.lua $list $OUT/pl-lua.out"
cmd[resijson]="$RESI proxies convert --from json --to userpass -o $OUT/pl-resijson.out $jsonf"
cmd[pyjson]="$PY $OUT/pl_json.py $jsonf $OUT/pl-pyjson.out"
label[resi]='resi: `resi proxies convert --from list --to userpass`'
label[awk]="awk ($(readlink -f "$(command -v awk)" | xargs basename)): \`-F: '{print \$3\":\"\$4\"@\"\$1\":\"\$2}'\`"
label[python]='Python: `split(":", 3)` per line'
label[lua]='Lua 5.4: `line:match` patterns per line'
label[resijson]='resi: `convert --from json --to userpass`'
label[pyjson]='Python: `json.load` + format'
label[api]='resi Lua API: `proxylist.load(path)` + `list:save(out, "userpass")` (fsync, the default)'
label[apinosync]='resi Lua API: `proxylist.load` + `list:save(out, "userpass", {sync = false})` (no fsync, as convert)'
label[resilong]='resi `convert`, long-username list'
label[awklong]='awk, long-username list'
order=(resi awk api apinosync python lua resijson pyjson resilong awklong)

declare -A runs rss
for ((r = 1; r <= repeat; r++)); do
  for k in "${order[@]}"; do
    read -r -a argv <<<"${cmd[$k]}"
    rm -f "$OUT/pl-$k.out" # every run creates its file (see the note in the text)
    t0=$(date +%s%N)
    "${argv[@]}"
    t1=$(date +%s%N)
    runs[$k]+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')"
  done
done
for k in "${order[@]}"; do
  read -r -a argv <<<"${cmd[$k]}"
  rss[$k]=$(/usr/bin/time -f '%M' "${argv[@]}" 2>&1 >/dev/null | tail -n 1)
done
for k in awk python lua api apinosync; do cmp -s "$OUT/pl-resi.out" "$OUT/pl-$k.out" || { echo "output of $k differs from resi's" >&2; exit 1; }; done
cmp -s "$OUT/pl-resilong.out" "$OUT/pl-awklong.out" || { echo "output of awk (long list) differs from resi's" >&2; exit 1; }
for k in resijson pyjson; do cmp -s "$OUT/pl-resi.out" "$OUT/pl-$k.out" || { echo "output of $k differs from resi's" >&2; exit 1; }; done

declare -A med
for k in "${order[@]}"; do read -r -a v <<<"${runs[$k]}"; med[$k]=$(median "${v[@]}"); done
# Per-round ratios (lib.sh round_ratios) of command $1 ÷ command $2, format $3.
run_ratios() { round_ratios "${runs[$1]}" "${runs[$2]}" 1 "$3"; }
# The median of the per-run ratios a / b alone.
run_ratio_median() { local r; r=$(run_ratios "$1" "$2" %.4f); echo "${r%% *}"; }
size=$(stat -c %s "$list")
lsize=$(stat -c %s "$longf")
jsize=$(stat -c %s "$jsonf")
size_kb=$((size / 1024))
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

cat <<MD
## Proxy-list conversion (250,000 entries)

A $(fmt_int "$n")-line list file in ResiFactory's \`list\` format (host:port:user:pass,
$(mb "$size_kb") MB, generated deterministically) converted to \`userpass\`
(user:pass@host:port), each program writing a file; every output is checked
byte-for-byte against resi's. Then the same entries in ResiFactory's \`json\` format
($(mb $((jsize / 1024))) MB) parsed and written as userpass. Wall time from exec to exit (start-up
included), median of $repeat runs each (run in turn), each run creating its output
file (the previous run's is removed first, outside the timing: replacing an existing
file makes ext4 flush it at once, on resi's rename as on the others' truncate); peak RSS from GNU time
(\`/usr/bin/time -f %M\`) on one more run. resi streams (1 MiB chunks), so its memory does
not grow with the file.

| Command | Median (ms) | Peak RSS (MB) | RSS ÷ file size |
|---|---:|---:|---:|
MD
for k in "${order[@]}"; do
  f=$size; [[ $k == resijson || $k == pyjson ]] && f=$jsize; [[ $k == *long ]] && f=$lsize
  echo "| ${label[$k]} | ${med[$k]} | $(mb "${rss[$k]}") | $(awk -v r="${rss[$k]}" -v s="$f" 'BEGIN { printf "%.2f", r * 1024 / s }') |"
done
ok_mem=$(awk -v r="${rss[resi]}" -v s="$size" 'BEGIN { print (r * 1024 <= 3 * s) ? "yes" : "**no**" }')
ok_api_mem=$(awk -v r="${rss[api]}" -v s="$size" 'BEGIN { print (r * 1024 <= 2 * s) ? "yes" : "**no**" }')
api_ratio=$(run_ratio_median apinosync resi)
ok_api=$(awk -v q="$api_ratio" 'BEGIN { print (q <= 1.3) ? "yes" : "**no**" }')
cat <<MD

The long-username list: $(fmt_int 150000) lines of $((lsize / 150000)) bytes
(customer-reseller_acme-cc-us-state-california-sessid-N-sesstime-30), $(mb $((lsize / 1024))) MB: fewer,
longer lines than the list above, so per-byte work weighs more than per-line work.
The Lua API rows load the list into memory (\`proxylist.load\`, read in 1 MiB chunks
into the list's arena) and save it (\`list:save\` streams the text to a temp file and
renames it); with fsync (the default) and with \`{sync = false}\`, the durability
\`convert -o\` has. Ratios are per round (every command runs once per round, in
turn): the median of the $repeat rounds' ratios, and their min–max.

| Target | Value (median of per-round ratios, min–max) | Met |
|---|---:|---|
| resi ≥ 2× faster than awk | $(run_ratios awk resi %.2f)× | $(meets "$(run_ratio_median awk resi)" 1 2) |
| resi ≥ 2× faster than awk, long-username list | $(run_ratios awklong resilong %.2f)× | $(meets "$(run_ratio_median awklong resilong)" 1 2) |
| Lua API load + save (no fsync) ≤ 1.3× \`convert\` | $(run_ratios apinosync resi %.2f)× | $ok_api |
| Lua API load + save (fsync) ÷ \`convert\` (no fsync) | $(run_ratios api resi %.2f)× | |
| Lua API peak memory ≤ 2× file size | $(mb "${rss[api]}") MB of $(mb "$size_kb") MB | $ok_api_mem |
| resi conversion time (absolute, so it depends on the day: round 1's ≤ 40 ms is judged as the ratio to awk above) | ${med[resi]} ms | |
| resi ≥ 2× faster than awk (ratio of the medians) | $(ratio "${med[awk]}" "${med[resi]}")× | $(meets "${med[awk]}" "${med[resi]}" 2) |
| resi peak memory ≤ 3× file size | $(mb "${rss[resi]}") MB of $(mb "$size_kb") MB | $ok_mem |
| resi ÷ Python (list) | $(ratio "${med[python]}" "${med[resi]}")× faster | |
| resi ÷ Lua patterns (list) | $(ratio "${med[lua]}" "${med[resi]}")× faster | |
| resi ÷ Python json.load (json) | $(ratio "${med[pyjson]}" "${med[resijson]}")× faster | |
MD
