#!/usr/bin/env bash
# Section: scheduled jobs. (1) resi.cron's next() for BENCH_CRON_N
# consecutive slots (bench/cron_next.lua) against Debian's python3-croniter
# (bench/cron_next.py) for `*/5 * * * *` UTC and `0 6 * * 1-5`
# Europe/Berlin, pinned to one CPU and not: loop time and CPU (user+sys,
# GNU time) per call. (2) The idle RSS of `resi jobs` with 1 job and with
# BENCH_JOBS_MANY jobs (a generated jobs file, none due within the hour,
# a fresh --store), beside resi's own idle runtime. (3) The CPU the
# BENCH_JOBS_MANY-job daemon uses over BENCH_JOBS_IDLE_SECONDS idle
# (/proc/PID/stat utime+stime, and the scheduler's exact run time and
# wake-ups). (4) The start lateness of a 1-second job (`* * * * * *`) over
# BENCH_JOBS_LATE_RUNS runs, pinned and not, from the job function's own
# log line and from the store's claim rows. (5) The duration of
# BENCH_CLAIMS claim commits (db:claim_run, synchronous=FULL,
# bench/claim_commit.lua) against Python's sqlite3 running the same
# statement on the same schema (bench/claim_commit.py).
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh" # strict mode, in ROOT

n_next=${BENCH_CRON_N:-1000000}
many=${BENCH_JOBS_MANY:-10000}
idle_secs=${BENCH_JOBS_IDLE_SECONDS:-60}
late_runs=${BENCH_JOBS_LATE_RUNS:-60}
floor_runs=${BENCH_JOBS_FLOOR_RUNS:-20}
claims=${BENCH_CLAIMS:-1000}
settle=${BENCH_JOBS_SETTLE:-3}
start=1767225600 # 2026-01-01T00:00:00Z: every run computes the same slots
[[ -x /usr/bin/time ]] || { echo "GNU time is missing (make deps BENCH_DEPS=1 installs it)" >&2; exit 1; }
"$PY" -c 'import croniter' || { echo "python3-croniter is missing (make deps BENCH_DEPS=1 installs it)" >&2; exit 1; }
croniter_version=$(dpkg-query -W -f='${Version}' python3-croniter 2>/dev/null || echo unknown)

# Scratch files, the stores included, on the disk a real store would use
# (bench/out), so a commit's fsync is a real one.
WORK=$(mktemp -d "$OUT/jobs.XXXXXX")
DAEMON_PID=
cleanup() {
  if [[ -n $DAEMON_PID ]]; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export RESI_LOG_FORMAT=json

# Placements: pinned (one CPU, lib.sh's client CPU; the daemon on the
# server CPU) when the machine has two or more, and unpinned.
modes=(free)
[[ -n $SERVER_CPUS ]] && modes=(pinned free)
declare -A mode_label=([pinned]="pinned" [free]="not pinned")

# --- 1. next() ------------------------------------------------------------

exprs=('*/5 * * * *|UTC' '0 6 * * 1-5|Europe/Berlin')
declare -A cron_out=() cron_cpu=() cron_wall=()
for e in "${exprs[@]}"; do
  expr=${e%|*} zone=${e#*|}
  for mode in "${modes[@]}"; do
    pin=()
    [[ $mode == pinned ]] && pin=("${CLIENT_PIN[@]}")
    for peer in resi croniter; do
      case $peer in
        resi) cmd=("$RESI" bench/cron_next.lua) ;;
        croniter) cmd=("$PY" bench/cron_next.py) ;;
      esac
      k="$e|$peer|$mode"
      out=$("${pin[@]}" /usr/bin/time -f '%U %S' -o "$WORK/time" "${cmd[@]}" "$expr" "$zone" "$n_next" "$start")
      read -r _ _ _ secs <<<"$out"
      cron_out[$k]=$out
      cron_wall[$k]=$(awk -v s="$secs" -v n="$n_next" 'BEGIN { printf "%.3f", s / n * 1e6 }')
      cron_cpu[$k]=$(awk -v n="$n_next" '{ printf "%.3f", ($1 + $2) / n * 1e6 }' "$WORK/time")
      echo "jobs: next() $expr $zone $peer $mode: $out, cpu ${cron_cpu[$k]} µs/next" >&2
    done
  done
done

# The slots themselves: the first 10,000 of each expression from both
# libraries, compared (the timed runs compare a checksum of all of them).
check_n=10000
declare -A diff_note=()
for e in "${exprs[@]}"; do
  expr=${e%|*} zone=${e#*|}
  "$RESI" bench/cron_next.lua "$expr" "$zone" "$check_n" "$start" list | sort >"$WORK/slots-resi"
  "$PY" bench/cron_next.py "$expr" "$zone" "$check_n" "$start" list | sort >"$WORK/slots-croniter"
  comm -13 "$WORK/slots-resi" "$WORK/slots-croniter" >"$WORK/only-croniter"
  comm -23 "$WORK/slots-resi" "$WORK/slots-croniter" >"$WORK/only-resi"
  # Each slot only one of them gives, checked against the expression's
  # fields in local time (zoneinfo, independent of both libraries).
  diff_note[$e]=$("$PY" - "$expr" "$zone" "$WORK/only-croniter" "$WORK/only-resi" <<'PY'
import sys
from datetime import datetime
from zoneinfo import ZoneInfo
expr, zone = sys.argv[1], ZoneInfo(sys.argv[2])
def field(f, v):
    if f == "*": return True
    if f.startswith("*/"): return v % int(f[2:]) == 0
    if "-" in f:
        a, b = map(int, f.split("-")); return a <= v <= b
    return any(int(x) == v for x in f.split(","))
def right(t):
    d = datetime.fromtimestamp(t, zone)
    mi, h, dom, mon, dow = expr.split()
    return d.second == 0 and field(mi, d.minute) and field(h, d.hour) and field(dom, d.day) \
        and field(mon, d.month) and field(dow, d.isoweekday() % 7)
c = [int(x) for x in open(sys.argv[3])]
r = [int(x) for x in open(sys.argv[4])]
if not c and not r:
    print("identical")
else:
    bad_c, bad_r = sum(not right(t) for t in c), sum(not right(t) for t in r)
    first = min(c + r)
    who = "croniter" if first in c else "resi"
    print(f"croniter gives {len(c)} slots resi does not ({bad_c} of them at a local time the expression does not name), "
          f"resi gives {len(r)} croniter does not ({bad_r} of them wrong); the first is {who}'s "
          f"{datetime.fromtimestamp(first, zone):%a %Y-%m-%d %H:%M %Z}")
PY
)
done

# --- 2, 3. the idle daemon -------------------------------------------------

# Writes a jobs file of $2 cron jobs to $1: minute, hour (never the current
# UTC hour or the next, so no job is due while measured) and day of week
# vary, so up to 10,560 jobs have distinct expressions; one shared no-op function.
gen_jobs() {
  awk -v n="$2" -v h="$(date -u +%-H)" 'BEGIN {
    print "-- generated by bench/sections/60-jobs.sh: " n " cron jobs, none due in the next hour"
    print "local jobs = require \"resi.jobs\""
    print "local function noop() end"
    k = 0; for (x = 0; x < 24; x++) if (x != h && x != (h + 1) % 24) hours[k++] = x
    split("* 1-5 0,6 1 2 3 4 5", dows, " ")
    for (i = 0; i < n; i++)
      printf "jobs.cron(\"%d %d * * %s\", \"job-%05d\", noop)\n", i % 60, hours[int(i / 60) % k], dows[int(i / (60 * k)) % 8 + 1], i + 1
  }' >"$1"
}

# Starts `resi jobs $1 --store $2` (logging to $3) behind the command prefix
# in the remaining arguments; returns once it has logged that it started.
daemon_start() {
  local file=$1 store=$2 log=$3
  shift 3
  "$@" "$RESI" jobs "$file" --store "$store" 2>"$log" &
  DAEMON_PID=$!
  for _ in $(seq 1200); do
    grep -q '"msg":"resi jobs started"' "$log" 2>/dev/null && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "resi jobs $file did not start:" >&2
  tail -n 20 "$log" >&2
  return 1
}

# Stops the daemon with SIGTERM (it drains and exits 0).
daemon_stop() {
  kill -TERM "$DAEMON_PID"
  wait "$DAEMON_PID"
  DAEMON_PID=
}

# A field of /proc/$1/status in kB.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# The process's CPU: utime+stime in clock ticks (/proc/PID/stat), and over
# all its threads the exact run time in ns and the times it was put on a
# CPU (/proc/PID/task/*/schedstat: a wake-up count).
cpu_sample() {
  local pid=$1 ticks
  ticks=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }') # fields 14, 15 counted from after the name
  cat /proc/"$pid"/task/*/schedstat | awk -v t="$ticks" '{ ns += $1; n += $3 } END { print t, ns, n }'
}

# The runtime alone: a resi process that sleeps.
"$RESI" -e 'resi.sleep(3600)' &
DAEMON_PID=$!
sleep "$settle"
rss_base=$(status_kb "$DAEMON_PID" VmRSS)
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=

gen_jobs "$WORK/one.lua" 1
daemon_start "$WORK/one.lua" "$WORK/one.db" "$WORK/one.log"
sleep "$settle"
rss_one=$(status_kb "$DAEMON_PID" VmRSS) hwm_one=$(status_kb "$DAEMON_PID" VmHWM)
daemon_stop

gen_jobs "$WORK/many.lua" "$many"
distinct=$(sed -n 's/^jobs.cron("\([^"]*\)".*/\1/p' "$WORK/many.lua" | sort -u | wc -l)
t0=$(date +%s%3N)
daemon_start "$WORK/many.lua" "$WORK/many.db" "$WORK/many.log"
t_ready=$(date -d "$(sed -n 's/.*"msg":"resi jobs started".*"ts":"\([^"]*\)".*/\1/p' "$WORK/many.log")" +%s%3N)
startup_ms=$((t_ready - t0))
sleep "$settle"
rss_many=$(status_kb "$DAEMON_PID" VmRSS) hwm_many=$(status_kb "$DAEMON_PID" VmHWM)
read -r ticks0 ns0 wake0 < <(cpu_sample "$DAEMON_PID")
sleep "$idle_secs"
read -r ticks1 ns1 wake1 < <(cpu_sample "$DAEMON_PID")
rss_many_after=$(status_kb "$DAEMON_PID" VmRSS)
daemon_stop
tck=$(getconf CLK_TCK)
idle_ms=$(awk -v a="$ticks0" -v b="$ticks1" -v t="$tck" 'BEGIN { printf "%.0f", (b - a) * 1000 / t }')
idle_exact_ms=$(awk -v a="$ns0" -v b="$ns1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
idle_wakes=$((wake1 - wake0))
per_min() { awk -v v="$1" -v s="$idle_secs" 'BEGIN { printf "%.3f", v * 60 / s }'; }
echo "jobs: idle rss base ${rss_base} one ${rss_one} many ${rss_many}/${rss_many_after} kB; idle cpu ${idle_ms} ms (${idle_exact_ms} exact), ${idle_wakes} wake-ups in ${idle_secs}s" >&2

# --- 4. start lateness -------------------------------------------------------

cat >"$WORK/late.lua" <<'LUA'
-- bench/sections/60-jobs.sh: one job every second; its first line logs how
-- long after its nominal time it started.
local jobs = require "resi.jobs"
local log = require "resi.log"
jobs.cron("* * * * * *", "every-second", function(run)
  log.info("bench: job started", { nominal_at = run.nominal_at, lateness = resi.now() - run.nominal_at })
end)
LUA
# Nearest-rank p50, p99 and max of the numbers given, as "p50 p99 max".
pcts() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    i = int(NR * 0.99); if (i < NR * 0.99) i++
    printf "%.2f %.2f %.2f\n", v[int((NR + 1) / 2)], v[i], v[NR] }'
}
declare -A late=() floor=() load=() dirty=()
for mode in "${modes[@]}"; do
  pin=()
  [[ $mode == pinned ]] && pin=("${SERVER_PIN[@]}")
  # An idle machine is idle on its disk too: the sections before this one
  # leave ~100 MB of output to be written back, and a claim's commit (an
  # fsync) waits behind that writeback. What was dirty is given.
  dirty[$mode]=$(awk '/^Dirty:/ { print $2 }' /proc/meminfo)
  sync
  load[$mode]=$(cut -d' ' -f1 /proc/loadavg)
  daemon_start "$WORK/late.lua" "$WORK/late-$mode.db" "$WORK/late-$mode.log" "${pin[@]}"
  sleep $((late_runs + 2))
  daemon_stop
  "$RESI" -e '
    local db = require("resi.store").open(resi.args[1])
    for _, r in ipairs(db:history { job = "every-second", limit = 100000 }) do
      print(r.nominal_at, r.status, r.started_at and r.started_at - r.nominal_at or "-")
    end
    db:close()' "$WORK/late-$mode.db" >"$WORK/late-$mode.rows"
  # the first late_runs slots: the job's own lateness (ms, one a line), then the claim's
  "$PY" - "$WORK/late-$mode.log" "$WORK/late-$mode.rows" "$late_runs" "$WORK/late-$mode" <<'PY'
import json, sys
own = {}
for line in open(sys.argv[1]):
    if '"bench: job started"' in line:
        d = json.loads(line)
        own[d["nominal_at"]] = d["lateness"] * 1000
rows = {}
for line in open(sys.argv[2]):
    t, status, claim = line.split()
    rows[int(t)] = (status, None if claim == "-" else float(claim) * 1000)
slots = sorted(rows)[: int(sys.argv[3])]
with open(sys.argv[4] + ".job", "w") as f:
    f.writelines(f"{own[t]:.3f}\n" for t in slots if t in own)
with open(sys.argv[4] + ".claim", "w") as f:
    f.writelines(f"{rows[t][1]:.3f}\n" for t in slots if rows[t][1] is not None)
bad = sum(1 for t in slots if rows[t][0] != "succeeded" or t not in own)
gaps = sum(1 for a, b in zip(slots, slots[1:]) if b - a != 1)
with open(sys.argv[4] + ".check", "w") as f:
    f.write(f"{len(slots)} {bad} {gaps}\n")
PY
  mapfile -t v <"$WORK/late-$mode.job"
  late[job.$mode]=$(pcts "${v[@]}")
  mapfile -t v <"$WORK/late-$mode.claim"
  late[claim.$mode]=$(pcts "${v[@]}")
  late[check.$mode]=$(cat "$WORK/late-$mode.check")
  # The timers alone, for scale: floor_runs sleeps to the next whole second
  # (the same 1 s idle between wake-ups: on a VM a longer idle wakes later),
  # in resi (resi.sleep, libuv's millisecond timer) and in Python (time.sleep).
  read -r -a v <<<"$("${pin[@]}" "$RESI" -e '
    local out = {}
    for i = 1, math.tointeger(tonumber(resi.args[1])) do
      local now = resi.now()
      local due = math.floor(now) + 1
      resi.sleep(due - now)
      out[i] = ("%.3f"):format((resi.now() - due) * 1000)
    end
    print(table.concat(out, " "))' "$floor_runs")"
  floor[resi.$mode]=$(pcts "${v[@]}")
  read -r -a v <<<"$("${pin[@]}" "$PY" -c '
import sys, time
out = []
for _ in range(int(sys.argv[1])):
    now = time.time()
    due = int(now) + 1
    time.sleep(due - now)
    out.append(f"{(time.time() - due) * 1000:.3f}")
print(" ".join(out))' "$floor_runs")"
  floor[python.$mode]=$(pcts "${v[@]}")
  echo "jobs: lateness $mode (load ${load[$mode]}): job ${late[job.$mode]}; claim ${late[claim.$mode]}; slots ${late[check.$mode]}; resi.sleep ${floor[resi.$mode]}; time.sleep ${floor[python.$mode]}" >&2
done

# --- 5. claim commits ----------------------------------------------------------

claim_sql=$("$RESI" -e 'print(require("resi.store.runs").sql.claim)')
declare -A claim=()
for mode in "${modes[@]}"; do
  pin=()
  [[ $mode == pinned ]] && pin=("${CLIENT_PIN[@]}")
  claim[resi.$mode]=$("${pin[@]}" "$RESI" bench/claim_commit.lua "$WORK/claim-resi-$mode.db" "$claims")
  "$RESI" -e 'require("resi.store").open(resi.args[1]):close()' "$WORK/claim-py-$mode.db"
  claim[python.$mode]=$("${pin[@]}" "$PY" bench/claim_commit.py "$WORK/claim-py-$mode.db" "$claims" "$claim_sql")
  echo "jobs: claims $mode: resi ${claim[resi.$mode]}; python ${claim[python.$mode]}" >&2
done

# --- the section ------------------------------------------------------------------

judge=${modes[0]} # the targets are judged on the pinned runs when there are any
yes_no() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 <= t + 0) ? "yes" : "**no**" }'; }
if [[ -n $SERVER_CPUS ]]; then
  placement="Pinned runs use \`taskset -c $CLIENT_CPUS\` for the next() and claim programs and
\`taskset -c $SERVER_CPUS\` for the daemon and the timer loops measured beside it (\`BENCH_PIN=0\` turns this off); the targets are judged
on the pinned runs. Pinning does not apply to memory or to idle CPU, measured once."
else
  placement="No CPU pinning."
fi

cat <<MD
## Scheduled jobs: \`resi.cron\` and the \`resi jobs\` daemon

$placement

### next() for $(fmt_int "$n_next") consecutive slots

Each program computes $(fmt_int "$n_next") consecutive fire times from 2026-01-01T00:00:00Z, each
\`next()\` from the slot before, and prints the sum of the slots (resi and croniter
must agree). **resi**: \`bench/cron_next.lua\`, \`sched:next(t)\` of \`cron.parse(expr, {tz=})\`.
**croniter** $croniter_version (Debian's python3-croniter, /usr/bin/python3): \`bench/cron_next.py\`,
\`croniter(expr, aware datetime).get_next(float)\`, the zone from zoneinfo (Debian's tzdata).
Loop time is the program's own clock around the loop; CPU is user+sys of the whole
process from GNU time (start-up and parsing included), divided by the calls.

| Expression | Placement | resi µs/next (loop / CPU) | croniter µs/next (loop / CPU) | resi faster (CPU) | Same slots |
|---|---|---:|---:|---:|---|
MD
for e in "${exprs[@]}"; do
  for mode in "${modes[@]}"; do
    r="$e|resi|$mode" c="$e|croniter|$mode"
    read -r _ _ rsum _ <<<"${cron_out[$r]}"
    read -r _ _ csum _ <<<"${cron_out[$c]}"
    same=yes
    [[ $rsum == "$csum" ]] || same="**no**"
    echo "| \`${e%|*}\` ${e#*|} | ${mode_label[$mode]} | ${cron_wall[$r]} / ${cron_cpu[$r]} | ${cron_wall[$c]} / ${cron_cpu[$c]} | $(ratio "${cron_cpu[$c]}" "${cron_cpu[$r]}" %.1f)× | $same |"
  done
done
cat <<MD

The first $(fmt_int "$check_n") slots of each, compared one by one:
MD
for e in "${exprs[@]}"; do echo "\`${e%|*}\` ${e#*|}: ${diff_note[$e]}."; done
cat <<MD

A slot is wrong when its local time (zoneinfo) is not one the expression names. The timed
runs count calls, so where the lists differ the two end on different slots ("Same slots").

| Target | Value | Met |
|---|---:|---|
MD
for e in "${exprs[@]}"; do
  r="$e|resi|$judge" c="$e|croniter|$judge"
  echo "| next() ≥ 10× faster than croniter (CPU), \`${e%|*}\` ${e#*|} | $(ratio "${cron_cpu[$c]}" "${cron_cpu[$r]}" %.1f)× | $(meets "${cron_cpu[$c]}" "${cron_cpu[$r]}" 10) |"
done

cat <<MD

### The idle daemon

\`resi jobs FILE --store PATH\` with a generated jobs file of \`jobs.cron(expr, name, noop)\`
lines, minute, hour and day of week varied ($(fmt_int "$distinct") distinct expressions among the
$(fmt_int "$many") jobs; no job due in the current or the next UTC hour) and a fresh store in bench/out.
RSS is /proc/PID/status VmRSS ${settle} s after the daemon logged that it started (VmHWM:
its peak); the baseline is \`resi -e 'resi.sleep(3600)'\`, resi's runtime alone. Start-up: from
exec to the "resi jobs started" log line (jobs file loaded, the store's job state written in one
transaction, the timer set). Then ${idle_secs} s idle: CPU from /proc/PID/stat utime+stime (clock ticks
of $((1000 / tck)) ms), and, exact, the run time and the number of times the process was put on a CPU
(wake-ups) from /proc/PID/task/*/schedstat. The scheduler sleeps until the next slot, at most
5 minutes (to notice wall-clock jumps), so a window may hold one such wake-up.

| Process | VmRSS (MiB) | VmHWM (MiB) |
|---|---:|---:|
| \`resi -e 'resi.sleep(3600)'\` (runtime alone) | $(mib "$rss_base") | |
| \`resi jobs\`, 1 job | $(mib "$rss_one") | $(mib "$hwm_one") |
| \`resi jobs\`, $(fmt_int "$many") jobs | $(mib "$rss_many") | $(mib "$hwm_many") |
| \`resi jobs\`, $(fmt_int "$many") jobs, after ${idle_secs} s idle | $(mib "$rss_many_after") | |

| ${idle_secs} s idle, $(fmt_int "$many") jobs | Value |
|---|---:|
| Start-up to "started" (ms) | $(fmt_int "$startup_ms") |
| CPU, utime+stime (ms) | $idle_ms |
| CPU, exact run time (ms) | $idle_exact_ms |
| Wake-ups | $idle_wakes |

MD
if [[ $idle_secs != 60 ]]; then
  echo "The idle window was ${idle_secs} s (\`BENCH_JOBS_IDLE_SECONDS\`); the targets below scale it to 60 s."
  echo
fi
cat <<MD
| Target | Value | Met |
|---|---:|---|
| RSS with 1 job ≤ 8 MiB | $(mib "$rss_one") MiB | $(yes_no "$rss_one" 8192) |
| RSS with $(fmt_int "$many") jobs ≤ 40 MiB | $(mib "$rss_many") MiB | $(yes_no "$rss_many" 40960) |
| CPU over 60 s idle with $(fmt_int "$many") jobs ≤ 10 ms (utime+stime) | $(per_min "$idle_ms") ms | $(yes_no "$(per_min "$idle_ms")" 10) |

### Start lateness of a 1-second job

One job, \`jobs.cron("* * * * * *", ...)\`, whose function's first line logs \`resi.now() - run.nominal_at\`
to the daemon's JSON log; the daemon runs for $((late_runs + 2)) s and the first $late_runs slots are taken.
**Job start** is that figure: the timer's wake-up and the task's start. The slot's claim
(synchronous=FULL: one fsync) is committed half a second ahead (the scheduler's claim_ahead), so
it is on this path only when it takes longer than that. **Claim** is the store's \`started_at - nominal_at\`
of the same slots (\`db:history\`): a slot claimed ahead records its planned start, 0 here; a slot
claimed at its time records the scheduler's wake-up, before the commit. For scale, the timers alone:
$floor_runs sleeps to the next whole second (the same second of idle between wake-ups: on a VM a
longer idle wakes later), lateness after waking, with \`resi.sleep\` (libuv's millisecond timer,
which resi never lets fire early) and with Python's \`time.sleep\`. p99 is the nearest rank
(of $late_runs or $floor_runs runs: the largest). Each placement starts after a \`sync\` (the earlier
sections' output is written back first, so a commit's fsync does not wait behind it); the machine's
1-minute load average then, and what was dirty before the sync, are given: other work on the machine
shows up here first.

| Measure | Placement | p50 (ms) | p99 (ms) | Max (ms) |
|---|---|---:|---:|---:|
MD
# shellcheck disable=SC2016 # backticks are Markdown
declare -A late_label=(
  [job]='`resi jobs`: job start'
  [claim]='`resi jobs`: claim'
)
for what in job claim; do
  for mode in "${modes[@]}"; do
    read -r p50 p99 mx <<<"${late[$what.$mode]}"
    echo "| ${late_label[$what]} | ${mode_label[$mode]} | $p50 | $p99 | $mx |"
  done
done
for peer in resi python; do
  for mode in "${modes[@]}"; do
    read -r p50 p99 mx <<<"${floor[$peer.$mode]}"
    # shellcheck disable=SC2016 # backticks are Markdown
    case $peer in resi) l='`resi.sleep` to the next second' ;; python) l='Python `time.sleep` to the next second' ;; esac
    echo "| $l | ${mode_label[$mode]} | $p50 | $p99 | $mx |"
  done
done
echo
for mode in "${modes[@]}"; do
  read -r nslots nbad ngaps <<<"${late[check.$mode]}"
  echo "${mode_label[$mode]^}: load average ${load[$mode]}, ${dirty[$mode]} kB dirty before a sync; $nslots slots, each run once, $nbad not succeeded, $ngaps gaps."
done
read -r _ judge99 _ <<<"${late[job.$judge]}"
cat <<MD

Target: job start p99 ≤ 5 ms on an idle machine (${mode_label[$judge]}): $judge99 ms — **$(awk -v v="$judge99" 'BEGIN { print (v <= 5) ? "met" : "not met" }')**.

### A claim's commit

$(fmt_int "$claims") slots claimed one after another in a fresh store in bench/out, each its own commit
(WAL, synchronous=FULL: one fsync of the WAL). **resi**: \`bench/claim_commit.lua\`, \`db:claim_run{job=, nominal_at=}\`.
**Python sqlite3** (standard library, the same libsqlite3): \`bench/claim_commit.py\`, resi.store's claim
statement (\`INSERT ... ON CONFLICT DO NOTHING RETURNING\`) on a store resi created, in
autocommit. Each call timed on its own.

| Client | Placement | Median (ms) | p99 (ms) | Mean (ms) | Max (ms) |
|---|---|---:|---:|---:|---:|
MD
for peer in resi python; do
  for mode in "${modes[@]}"; do
    read -r _ m p mean mx <<<"${claim[$peer.$mode]}"
    # shellcheck disable=SC2016 # backticks are Markdown
    case $peer in resi) l='resi `db:claim_run`' ;; python) l='Python sqlite3, same statement' ;; esac
    echo "| $l | ${mode_label[$mode]} | $m | $p | $mean | $mx |"
  done
done
read -r _ rm _ <<<"${claim[resi.$judge]}"
read -r _ pm _ <<<"${claim[python.$judge]}"
cat <<MD

resi ÷ Python sqlite3 (median, ${mode_label[$judge]}): **$(ratio "$rm" "$pm")×** the time.
MD
