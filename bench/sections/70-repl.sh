#!/usr/bin/env bash
# Section: the REPL. (1) Time from exec to the first prompt on a
# pseudo-terminal (bench/repl_first_prompt.py: fork, a fresh pty as the
# controlling terminal, exec, read until the prompt string, kill) for bare
# `resi` and `resi repl` against `lua5.4 -i`, `node` and `python3 -i`:
# median and p90 of BENCH_REPL_RUNS runs each, interleaved, after
# BENCH_REPL_WARMUP warm-up runs; ratios to lua5.4 -i (target: resi at most
# 3x) and node (target: at least 10x faster). Pinned (the program on one CPU,
# the driver on another) and not. (2) VmRSS at the first prompt and
# BENCH_REPL_SETTLE seconds later (anything a REPL loads once its prompt is
# up shows there; resi loads nothing until a completion or an entry needs
# it), target at most 12 MiB, with the peers for reference.
# (3) BENCH_REPL_COMPLETIONS Tab completions of `rf:` through the completer
# the CLI gives libedit, in the REPL's own session environment
# (bench/repl_complete.lua, resi.monotonic and os.clock), target at most 1 ms
# each; BENCH_REPL_COMPLETE_REPEAT runs, the median.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

runs=${BENCH_REPL_RUNS:-30}
warmup=${BENCH_REPL_WARMUP:-3}
rss_runs=${BENCH_REPL_RSS_RUNS:-5}
settle=${BENCH_REPL_SETTLE:-0.5}
completions=${BENCH_REPL_COMPLETIONS:-1000}
complete_repeat=${BENCH_REPL_COMPLETE_REPEAT:-5}

# A fresh HOME for every program (no history file, no user site, no rc file).
WORK=$(mktemp -d "$OUT/repl.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/home"

# Placements: pinned (the program on lib.sh's client CPUs, set in the child
# before exec as `taskset -c` does; the driver on the server CPU) when the
# machine has two or more, and not pinned.
modes=(free)
[[ -n $SERVER_CPUS ]] && modes=(pinned free)

# --- 1 and 2. first prompt and RSS -------------------------------------------

for mode in "${modes[@]}"; do
  pin=() cpus=
  [[ $mode == pinned ]] && pin=("${SERVER_PIN[@]}") cpus=$CLIENT_CPUS
  "$PY" - "$RESI" "$WORK/home" "$runs" "$warmup" "$rss_runs" "$settle" "$cpus" >"$WORK/req-$mode.json" <<'PY'
import json, sys
resi, home, runs, warmup, rss_runs, settle, cpus = sys.argv[1:]
print(json.dumps({
    "programs": [
        {"name": "resi", "argv": [resi], "prompt": "> "},
        {"name": "resi repl", "argv": [resi, "repl"], "prompt": "> "},
        {"name": "lua5.4 -i", "argv": ["/usr/bin/lua5.4", "-i"], "prompt": "> "},
        {"name": "node", "argv": ["/usr/bin/node"], "prompt": "> "},
        {"name": "python3 -i", "argv": ["/usr/bin/python3", "-i"], "prompt": ">>> "},
    ],
    "runs": int(runs), "warmup": int(warmup), "rss_runs": int(rss_runs), "settle": float(settle),
    "timeout": 10, "cpus": cpus or None, "rows": 24, "cols": 80,
    "env": {"HOME": home, "TERM": "xterm", "XDG_STATE_HOME": None, "XDG_CONFIG_HOME": None,
            "RESI_HISTORY": None, "LUA_INIT": None, "LUA_INIT_5_4": None, "NODE_OPTIONS": None,
            "NODE_REPL_HISTORY": None, "PYTHONSTARTUP": None},
}))
PY
  "${pin[@]}" "$PY" bench/repl_first_prompt.py <"$WORK/req-$mode.json" >"$OUT/repl-prompt-$mode.json"
  echo "repl: first prompt, $mode: done" >&2
done

# --- 3. completion -------------------------------------------------------------

for mode in "${modes[@]}"; do
  pin=()
  [[ $mode == pinned ]] && pin=("${CLIENT_PIN[@]}")
  for ((r = 1; r <= complete_repeat; r++)); do
    "${pin[@]}" "$RESI" bench/repl_complete.lua "$completions" | sed "s/^/$mode /"
  done
done >"$OUT/repl-complete.txt"
cat "$OUT/repl-complete.txt" >&2

# --- the section ---------------------------------------------------------------

if [[ -n $SERVER_CPUS ]]; then
  placement="Pinned runs put the program on CPU $CLIENT_CPUS (the driver sets the child's affinity
before exec, as \`taskset -c $CLIENT_CPUS\` does, so no extra program is timed) and the driver on
CPU $SERVER_CPUS (\`taskset -c $SERVER_CPUS\`); the completion runs use \`taskset -c $CLIENT_CPUS\`
(\`BENCH_PIN=0\` turns this off). The targets are judged on the pinned runs."
else
  placement="No CPU pinning."
fi

cat <<MD
## The REPL: first prompt, memory at the prompt, completion

$placement

### Time from exec to the first prompt

\`bench/repl_first_prompt.py\` (Debian's python3) runs each program on a fresh pseudo-terminal
(24×80, the program's controlling terminal and its stdin, stdout and stderr) with \`TERM=xterm\`
and an empty HOME (no history or rc files; \`LUA_INIT\`, \`NODE_OPTIONS\`, \`PYTHONSTARTUP\` unset).
The child reads CLOCK_MONOTONIC just before \`execve\`; the driver reads it again when the
program's output first holds its prompt (\`> \`; \`>>> \` for Python), then kills it (SIGKILL).
$warmup warm-up runs of each, then $runs runs, one of each program in turn; the table gives
the median, the p90 (nearest rank) and the min–max in milliseconds. Bare \`resi\` and
\`resi repl\` are the same REPL (bare \`resi\` with a terminal as stdin starts it).

MD

"$PY" - "$OUT" "$settle" "$rss_runs" "$completions" "${modes[@]}" <<'PY'
import json, math, statistics, sys, textwrap
out = sys.argv[1]
settle, rss_runs, completions = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
complete_file = f"{out}/repl-complete.txt"
modes = sys.argv[5:]
label = {"pinned": "pinned", "free": "not pinned"}
data = {m: json.load(open(f"{out}/repl-prompt-{m}.json")) for m in modes}
judge = modes[0]
names = ["resi", "resi repl", "lua5.4 -i", "node", "python3 -i"]

def para(text):
    print(textwrap.fill(text, width=95, break_long_words=False, break_on_hyphens=False))

def p90(v):
    s = sorted(v)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]

med = {(m, n): statistics.median(data[m][n]["ms"]) for m in modes for n in names}
print("| Program | Placement | Median (ms) | p90 (ms) | Min–max (ms) | × lua5.4 -i | node ÷ this |")
print("|---|---|---:|---:|---:|---:|---:|")
for n in names:
    for m in modes:
        v = data[m][n]["ms"]
        print(f"| `{n}` | {label[m]} | {med[m, n]:.2f} | {p90(v):.2f} | {min(v):.2f}–{max(v):.2f} "
              f"| {med[m, n] / med[m, 'lua5.4 -i']:.2f}× | {med[m, 'node'] / med[m, n]:.1f}× |")

print()
print("| Target | Placement | Value | Met |")
print("|---|---|---:|---|")
for m in modes:
    for n in ("resi", "resi repl"):
        r = med[m, n] / med[m, "lua5.4 -i"]
        f = med[m, "node"] / med[m, n]
        mark = "" if m == judge else " (for reference)"
        print(f"| `{n}` ÷ `lua5.4 -i` ≤ 3× | {label[m]}{mark} | {r:.2f}× | {'yes' if r <= 3 else '**no**'} |")
        print(f"| `node` ÷ `{n}` ≥ 10× | {label[m]}{mark} | {f:.1f}× | {'yes' if f >= 10 else '**no**'} |")

print()
print("What each program wrote up to its prompt (first run; escape sequences shown as `\\e`):")
print()
for n in names:
    s = data[judge][n]["sample"].replace("\x1b", "\\e").replace("\r", "").replace("\n", "⏎")
    print(f"- `{n}`: `{s}`")

# --- RSS
mib = lambda kb: kb / 1024
print()
print("### Memory at the prompt")
print()
para(f"VmRSS of the program's process (/proc/PID/status) the moment its first prompt was read, median of "
      f"the {len(data[judge]['resi']['rss_kb'])} timed runs ({label[judge]}), and {settle:g} s later in the first "
      f"{rss_runs} of them while the driver kept reading the terminal, so the later figure is the RSS while "
      "the REPL waits for input. resi loads nothing more once its prompt is up: the provider clients (and "
      "resi.http with libcurl and TLS under them) load on the first completion, help or entry that needs "
      "them (resi.repl.context's lazy stand-ins). The target is judged on the later figure.")
print()
print("| Program | VmRSS at the first prompt (MiB) | VmRSS " + f"{settle:g}" + " s later (MiB) |")
print("|---|---:|---:|")
for n in names:
    d = data[judge][n]
    print(f"| `{n}` | {mib(statistics.median(d['rss_kb'])):.1f} | {mib(statistics.median(d['settled_rss_kb'])):.1f} |")
print()
print("| Target | Value | Met |")
print("|---|---:|---|")
for n in ("resi", "resi repl"):
    d = data[judge][n]
    at, later = mib(statistics.median(d["rss_kb"])), mib(statistics.median(d["settled_rss_kb"]))
    print(f"| `{n}`: RSS at the prompt ≤ 12 MiB, {settle:g} s after it appeared | {later:.1f} MiB | {'yes' if later <= 12 else '**no**'} |")
    print(f"| `{n}`: RSS at the prompt ≤ 12 MiB, the moment it appeared | {at:.1f} MiB | {'yes' if at <= 12 else '**no**'} |")

# --- completion
rows = {}
for line in open(complete_file):
    m, case, n, count, ms, us, cpu = line.split()
    rows.setdefault((m, case), []).append((int(count), float(ms), float(us), float(cpu)))
reps = len(rows[(judge, "unbound")])
print()
print(f"### {completions:,} completions of `rf:`")
print()
para(f"`bench/repl_complete.lua`: the REPL's own session (`resi.repl.standard`, resi.repl.context's environment, "
      "modules loaded up front with context.preload, as they are after the first completion that needs them) "
      "and the completer the CLI hands to libedit "
      "(`resi.repl.complete.completer`), called as libedit calls it for the line `rf:` with the cursor at its "
      f"end. {completions:,} calls after 50 warm-up calls, timed with `resi.monotonic` (wall) and `os.clock` "
      f"(the process's CPU time); median of {reps} runs. **rf not bound**: no credentials, no client built yet — "
      "completion reads the client class that stands in for the lazily bound `rf`. **rf bound**: after the "
      "first use of `rf` built the client (a dummy `RF_API_KEY`, no request made).")
print()
print("| Case | Placement | Candidates | Total (ms) | Wall per call (µs) | CPU per call (µs) |")
print("|---|---|---:|---:|---:|---:|")
case_label = {"unbound": "`rf` not bound yet", "bound": "`rf` bound"}
for case in ("unbound", "bound"):
    for m in modes:
        v = rows[(m, case)]
        print(f"| {case_label[case]} | {label[m]} | {v[0][0]} | {statistics.median(x[1] for x in v):.2f} "
              f"| {statistics.median(x[2] for x in v):.1f} | {statistics.median(x[3] for x in v):.1f} |")
print()
worst = max(statistics.median(x[2] for x in rows[(judge, c)]) for c in ("unbound", "bound"))
print(f"Target: ≤ 1 ms per completion ({label[judge]}, the slower case): {worst:.1f} µs — "
      + ("**met**." if worst <= 1000 else "**not met**."))
PY
