#!/usr/bin/env bash
# Section: proxy-list conversion. A 250,000-line ResiFactory list file
# (host:port:user:pass, the API's maximum quantity; generated
# deterministically by awk) is converted to userpass (user:pass@host:port) by
# `resi proxies convert`, awk (Debian's mawk), Python and plain Lua string
# patterns (lua5.4), each writing a file in bench/out; the outputs must be
# byte-identical. Then the same entries in ResiFactory's json format are
# parsed and written as userpass by resi and by Python's json module. Each
# command runs BENCH_REPEAT times (runs interleaved); the table gives the
# median wall time and the peak RSS (GNU time) of one run.
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

declare -A cmd label
cmd[resi]="$RESI proxies convert --from list --to userpass -o $OUT/pl-resi.out $list"
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
order=(resi awk python lua resijson pyjson)

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
for k in awk python lua; do cmp -s "$OUT/pl-resi.out" "$OUT/pl-$k.out" || { echo "output of $k differs from resi's" >&2; exit 1; }; done
for k in resijson pyjson; do cmp -s "$OUT/pl-resi.out" "$OUT/pl-$k.out" || { echo "output of $k differs from resi's" >&2; exit 1; }; done

declare -A med
for k in "${order[@]}"; do read -r -a v <<<"${runs[$k]}"; med[$k]=$(median "${v[@]}"); done
size=$(stat -c %s "$list")
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
  f=$size; [[ $k == resijson || $k == pyjson ]] && f=$jsize
  echo "| ${label[$k]} | ${med[$k]} | $(mb "${rss[$k]}") | $(awk -v r="${rss[$k]}" -v s="$f" 'BEGIN { printf "%.2f", r * 1024 / s }') |"
done
ok_time=$(awk -v t="${med[resi]}" 'BEGIN { print (t <= 40) ? "yes" : "**no**" }')
ok_mem=$(awk -v r="${rss[resi]}" -v s="$size" 'BEGIN { print (r * 1024 <= 3 * s) ? "yes" : "**no**" }')
cat <<MD

| Target | Value | Met |
|---|---:|---|
| resi conversion ≤ 40 ms | ${med[resi]} ms | $ok_time |
| resi ≥ 2× faster than awk | $(ratio "${med[awk]}" "${med[resi]}")× | $(meets "${med[awk]}" "${med[resi]}" 2) |
| resi peak memory ≤ 3× file size | $(mb "${rss[resi]}") MB of $(mb "$size_kb") MB | $ok_mem |
| resi ÷ Python (list) | $(ratio "${med[python]}" "${med[resi]}")× faster | |
| resi ÷ Lua patterns (list) | $(ratio "${med[lua]}" "${med[resi]}")× faster | |
| resi ÷ Python json.load (json) | $(ratio "${med[pyjson]}" "${med[resijson]}")× faster | |
MD
