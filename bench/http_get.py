#!/usr/bin/python3
"""http_get.py: the Python peer in the HTTP benchmark (Debian's python3-requests).

    /usr/bin/python3 bench/http_get.py URL N CONC

N GETs of URL, each response's JSON decoded (res.json()) and checked. CONC=1:
one requests.Session, one request after another. CONC>1: a
ThreadPoolExecutor(CONC) running CONC workers, each with its own Session (a
keep-alive connection per thread), each taking the next request index until N
are done. Prints requests/second on stdout.
"""
import itertools
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
counter = itertools.count()
lock = threading.Lock()


def get_one(session):
    res = session.get(url)
    if res.status_code != 200:
        raise RuntimeError(f"status {res.status_code}")
    doc = res.json()
    if "token" not in doc:
        raise RuntimeError("unexpected document")


def worker():
    with requests.Session() as session:
        while True:
            with lock:
                i = next(counter)
            if i >= n:
                return
            get_one(session)


t0 = time.perf_counter()
if conc <= 1:
    worker()
else:
    with ThreadPoolExecutor(conc) as pool:
        for f in [pool.submit(worker) for _ in range(conc)]:
            f.result()
secs = time.perf_counter() - t0
print(f"{n} requests, {secs:.3f} s", file=sys.stderr)
print(f"{n / secs:.1f}")
