# bench/claim_commit.py PATH N SQL: the same claim through Python's sqlite3
# (the standard library's binding of Debian's libsqlite3): PATH is an empty
# store that resi created (the same schema), SQL resi.store's claim
# statement; WAL and synchronous=FULL as resi sets them, autocommit, so each
# INSERT ... ON CONFLICT DO NOTHING RETURNING is its own commit. Prints the
# same line as bench/claim_commit.lua: N, median, p99, mean, max (ms).
import math, re, socket, sqlite3, sys, time

path, n, sql = sys.argv[1], int(sys.argv[2]), re.sub(r"\$(\d+)", r"?\1", sys.argv[3])
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = FULL")
node, pid, base = socket.gethostname(), 0, 1800000000
ms = []
for i in range(1, n + 1):
    t0 = time.perf_counter()
    rows = db.execute(sql, ("bench", base + i, 1, node, pid, time.time(), 0)).fetchall()
    ms.append((time.perf_counter() - t0) * 1000)
    assert rows, "slot already claimed"
db.close()
ms.sort()
pct = lambda p: ms[max(0, math.ceil(n * p) - 1)]
print(f"{n} {pct(0.5):.4f} {pct(0.99):.4f} {sum(ms) / n:.4f} {ms[-1]:.4f}")
