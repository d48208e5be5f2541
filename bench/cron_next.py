# bench/cron_next.py EXPR TZ N START [list]: croniter's side of the next()
# bench (Debian's python3-croniter). The iterator starts at START (epoch
# seconds) as an aware datetime in zone TZ (zoneinfo, Debian's tzdata) and
# get_next(float) is called N times: N consecutive fire times as epoch
# seconds. Prints one line: N, the last slot, the sum of the slots (compared
# with resi's) and the loop's wall seconds (start-up excluded). With `list`,
# prints the N slots instead, one a line.
import sys, time
from datetime import datetime
from zoneinfo import ZoneInfo
from croniter import croniter

expr, zone, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
get_next = croniter(expr, datetime.fromtimestamp(start, ZoneInfo(zone))).get_next
if sys.argv[5:] == ["list"]:
    print("\n".join(str(int(get_next(float))) for _ in range(n)))
    sys.exit()
total = 0
t = start
t0 = time.perf_counter()
for _ in range(n):
    t = int(get_next(float))
    total += t
print(f"{n} {t} {total} {time.perf_counter() - t0:.6f}")
