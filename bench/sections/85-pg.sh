#!/usr/bin/env bash
# Section: several daemons on one PostgreSQL (issue 19). bench/pg_bench.lua
# starts a throw-away PostgreSQL on loopback (spec/support/postgres.lua:
# Debian's postgresql, initdb + pg_ctl, fsync off as a test server) and
# measures (1) a claim's round trip and commit: bench/claim_commit.lua's
# db:claim_run on a SQLite file (WAL, synchronous=FULL) and on PostgreSQL,
# and db:claim_leased (the database-clock claim under a lease); (2) slots
# per second claimed by three processes claiming the same BENCH_PG_SLOTS
# slots at once, as three daemons computing the same slots do; (3) failover
# after kill -9 of the daemon running a job (two `resi jobs` daemons, a
# 1-second job, lease BENCH_PG_LEASE s): how late the next slot started on
# the other daemon, and how long after the kill the killed run was recorded
# interrupted.
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh" # strict mode, in ROOT

claims=${BENCH_PG_CLAIMS:-1000}
slots=${BENCH_PG_SLOTS:-5000}
lease=${BENCH_PG_LEASE:-15}
command -v pg_ctlcluster >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
  { echo "PostgreSQL is missing (make deps installs postgresql)" >&2; exit 1; }

WORK=$(mktemp -d "$OUT/pg.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
export RESI_LOG_FORMAT=json

load=$(cut -d' ' -f1 /proc/loadavg)
"$RESI" bench/pg_bench.lua "$WORK" "$claims" "$slots" "$lease" >"$WORK/out"
cat "$WORK/out" >&2
get() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$WORK/out"; }
read -r _ sq_med sq_p99 sq_mean sq_max <<<"$(get claim_sqlite)"
read -r _ pg_med pg_p99 pg_mean pg_max <<<"$(get claim_pg)"
read -r _ ls_med ls_p99 ls_mean ls_max <<<"$(get lease_pg)"
read -r n_slots secs per_sec <<<"$(get slots3)"
read -r next_late interrupted_after lease_used <<<"$(get failover)"
pg_version=$(dpkg-query -W -f='${Version}' postgresql 2>/dev/null || echo unknown)
yes_no() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 >= t + 0) ? "yes" : "**no**" }'; }
le() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "none" && v + 0 <= t + 0) ? "yes" : "**no**" }'; }

cat <<MD
## Several daemons on one PostgreSQL

PostgreSQL $pg_version (Debian), started for the run on loopback by \`spec/support/postgres.lua\`
(a test server: fsync off, so a commit costs no disk flush there, unlike the SQLite file in bench/out
with synchronous=FULL). The 1-minute load average when the section began: $load.

### A claim's round trip and commit

$(fmt_int "$claims") slots claimed one after another, each its own statement and commit, timed one by one.

| Claim | Median (ms) | p99 (ms) | Mean (ms) | Max (ms) |
|---|---:|---:|---:|---:|
| SQLite file, \`db:claim_run\` (bench/claim_commit.lua) | $sq_med | $sq_p99 | $sq_mean | $sq_max |
| PostgreSQL, \`db:claim_run\` (the same program and statement) | $pg_med | $pg_p99 | $pg_mean | $pg_max |
| PostgreSQL, \`db:claim_leased\` (database clock, lease, why-refused in the same round trip) | $ls_med | $ls_p99 | $ls_mean | $ls_max |

### Slots per second, three daemons together

Three resi processes, each with its own connection, claim the same $(fmt_int "$n_slots") past slots of one job
with \`db:claim_leased\` as fast as they can (each slot is won by one; the two others are refused):
$secs s, **$(fmt_int "$per_sec") slots/s**.

### Failover after kill -9

Two \`resi jobs --store postgresql://... --lease $lease_used\` daemons, \`jobs.every(1, ...)\` of 0.5 s
(\`overlap = "allow"\`: with the default skip a dead node's run holds its job until its lease ends, as a
frozen node cannot be told from a dead one). The daemon running a run is killed with SIGKILL.

| Measure | Value (s) |
|---|---:|
| The next slot's start on the other daemon, after its nominal time | $next_late |
| The killed run recorded \`interrupted\`, after the kill | $interrupted_after |

| Target | Value | Met |
|---|---:|---|
| ≥ 1,000 slots/s claimed by three daemons on loopback | $(fmt_int "$per_sec") | $(yes_no "$per_sec" 1000) |
| The next slot on time on another node (≤ 1 s late) | $next_late s | $(le "$next_late" 1) |
| Interrupted recorded within one lease period (+1 s reap interval) | $interrupted_after s | $(le "$interrupted_after" "$((lease_used + 1))") |
MD
