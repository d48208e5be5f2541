#!/usr/bin/env bash
# Section: the sandbox's proxy gateway (resi sim, resi.sim.gateway). curl
# downloads a BENCH_GW_MB MB file from nginx on loopback three ways: directly,
# through a CONNECT tunnel of the UnknownProxies gateway (an issued token,
# every byte billed), and through a CONNECT tunnel of Debian's tinyproxy (no
# auth, no billing). Then connections per second: a Python client opens a
# connection, sends CONNECT (with Proxy-Authorization for the gateway), reads
# the 200 and closes, for BENCH_GW_SECONDS, against the gateway and
# tinyproxy. The proxies are pinned to one CPU, curl and nginx to the other;
# medians of BENCH_REPEAT runs.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

mb=${BENCH_GW_MB:-256}
secs=${BENCH_GW_SECONDS:-3}
repeat=${BENCH_REPEAT:-3}
SIM_PID='' TP_PID='' TP_DIR=''
stop_all() {
  nginx_stop
  stop_pids "$SIM_PID" "$TP_PID"
  if [[ -n $TP_DIR ]]; then rm -rf "$TP_DIR"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# nginx shares the clients' CPU: each proxy gets the other one to itself
proxy_pin=("${SERVER_PIN[@]}")
SERVER_PIN=("${CLIENT_PIN[@]}")
nginx_start "$(free_port)" '{}' 1
SERVER_PIN=("${proxy_pin[@]}")
mkdir -p "$NGINX_PREFIX/html"
head -c $((mb * 1048576)) /dev/zero >"$NGINX_PREFIX/html/big.bin"
chmod 755 "$NGINX_PREFIX" "$NGINX_PREFIX/html" # nginx's workers may run as nobody
chmod 644 "$NGINX_PREFIX/html/big.bin"
nginx_addr=${NGINX_URL#http://}
nginx_addr=${nginx_addr%%/*}
big_url="http://$nginx_addr/big.bin"

sim_start "$OUT/gw-sim" --seed 1
body=$(sim_up_get /resi/tokens)
# the active token with the most data left: the downloads are billed to it
read -r tuser tpass < <("$RESI" -e '
  local best
  for _, t in ipairs(require("resi.json").decode(resi.args[1]).tokens) do
    if t.status == "active" and (not best or t.dataLimit - t.dataUsage > best.dataLimit - best.dataUsage) then best = t end
  end
  print(best.username, best.password)' "$body")
gw=$RESI_SIM_UNKNOWNPROXIES_GATEWAY

TP_DIR=$(mktemp -d "$OUT/tinyproxy.XXXXXX")
tp_port=$(free_port)
printf 'Port %s\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\nLogLevel Error\n' "$tp_port" >"$TP_DIR/tinyproxy.conf"
"${SERVER_PIN[@]}" tinyproxy -d -c "$TP_DIR/tinyproxy.conf" &
TP_PID=$!
for _ in $(seq 100); do curl -fsS -o /dev/null -x "http://127.0.0.1:$tp_port" "$NGINX_URL" 2>/dev/null && break; sleep 0.05; done

# MB/s of one download of the big file; extra curl args select the proxy.
mbps() {
  "${CLIENT_PIN[@]}" curl -fsS -o /dev/null -w '%{speed_download}' "$@" "$big_url" |
    awk '{ printf "%.1f", $1 / 1048576 }'
}

# CONNECTs per second for $secs against proxy $1 ("host:port"), header $2.
cps() {
  "${CLIENT_PIN[@]}" "$PY" - "$1" "$2" "$nginx_addr" "$secs" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
hdr, target, secs = sys.argv[2], sys.argv[3], float(sys.argv[4])
req = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, target, hdr + "\r\n" if hdr else "")).encode()
n, end = 0, time.monotonic() + secs
while time.monotonic() < end:
    s = socket.create_connection((host, int(port)))
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    if not got.startswith(b"HTTP/1.1 200") and not got.startswith(b"HTTP/1.0 200"):
        sys.exit("CONNECT refused: %r" % got[:80])
    s.close()
    n += 1
print("%.0f" % (n / secs))
PY
}

pa="Proxy-Authorization: Basic $(printf '%s' "$tuser:$tpass" | base64 -w0)"
direct=() gwrun=() tprun=() gwc=() tpc=()
for _ in $(seq "$repeat"); do
  direct+=("$(mbps)")
  gwrun+=("$(mbps --proxytunnel -x "http://$tuser:$tpass@$gw")")
  tprun+=("$(mbps --proxytunnel -x "http://127.0.0.1:$tp_port")")
  gwc+=("$(cps "$gw" "$pa")")
  tpc+=("$(cps "127.0.0.1:$tp_port" "")")
done
d=$(median "${direct[@]}") g=$(median "${gwrun[@]}") t=$(median "${tprun[@]}")
gc=$(median "${gwc[@]}") tc=$(median "${tpc[@]}")
gd=$(round_ratios "${gwrun[*]}" "${direct[*]}") gt=$(round_ratios "${gwrun[*]}" "${tprun[*]}")
gtc=$(round_ratios "${gwc[*]}" "${tpc[*]}")
# "yes" when the median of a round_ratios result ($1) reaches $2.
judge() { awk -v m="${1%% *}" -v t="$2" 'BEGIN { if (m + 0 >= t) print "yes"; else print "**no**" }'; }
billed=$(sim_up_get /resi/tokens |
  "$RESI" -e 'for _, t in ipairs(require("resi.json").decode(io.read("a")).tokens) do
    if t.username == resi.args[1] then print(t.dataUsage) end end' "$tuser")

cat <<MD
## Proxy gateway (\`resi sim\`)

curl downloads a ${mb} MB file from nginx on loopback, median of $repeat runs
(the proxy pinned to one CPU, curl and nginx to the other). The gateway
authenticates an issued UnknownProxies token and bills every byte to it
(the token shows $(fmt_int "$billed") bytes used after the runs); tinyproxy
runs without auth. Connections/s: open, CONNECT, read the 200, close, for ${secs} s.

| Path | MB/s (median) | Runs |
|---|---:|---|
| direct (curl → nginx) | $d | $(printf '%s ' "${direct[@]}") |
| resi sim gateway, CONNECT | $g | $(printf '%s ' "${gwrun[@]}") |
| tinyproxy, CONNECT | $t | $(printf '%s ' "${tprun[@]}") |

| Proxy | CONNECTs/s (median) | Runs |
|---|---:|---|
| resi sim gateway | $(fmt_int "$gc") | $(printf '%s ' "${gwc[@]}") |
| tinyproxy | $(fmt_int "$tc") | $(printf '%s ' "${tpc[@]}") |

Targets as per-round ratios (each round runs direct, the gateway and tinyproxy in turn):
the median of the $repeat rounds' ratios, with their min–max; the ratio of the medians beside it.

| Target | Per-round ratio, median (min–max) | Ratio of the medians | Met |
|---|---:|---:|---|
| gateway ≥ 0.50 of direct | $gd | $(ratio "$g" "$d" "%.2f") | $(judge "$gd" 0.5) |
| gateway ≥ 1.00 of tinyproxy | $gt | $(ratio "$g" "$t" "%.2f") | $(judge "$gt" 1) |
| gateway CONNECTs/s ÷ tinyproxy's (no target) | $gtc | $(ratio "$gc" "$tc" "%.2f") | |
MD
