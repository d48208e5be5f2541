"""spec/support/notify_webhook.py: a webhook receiver for spec/notify_spec.lua
that checks resi's signature with the verify() function README.md documents
(the python block in "Notifications" is read and run, so the README's code
is what is tested). POST /hook: 401 when verify() fails ("stale" or "bad
signature"), 409 for a replay (a signature seen before), else 200 and the
request is kept. GET /events: the kept requests as JSON. Prints its port on
the first line of stdout; stops when stdin closes.

  notify_webhook.py SECRET README
"""
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

secret = sys.argv[1].encode()
readme = open(sys.argv[2], encoding="utf-8").read()
block = re.search(r"```python\n(.*?def verify.*?)```", readme, re.S).group(1)
scope = {}
exec(block, scope)
verify = scope["verify"]

events, seen, lock = [], set(), threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self.reply(200, events)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ts = self.headers.get("X-Resi-Timestamp", "")
        if not verify(secret, self.headers, body):
            stale = ts.isdigit() and abs(time.time() - int(ts)) > 300
            return self.reply(401, {"error": "stale" if stale else "bad signature"})
        sig = self.headers["X-Resi-Signature"]
        with lock:
            if sig in seen:
                return self.reply(409, {"error": "replayed"})
            seen.add(sig)
            events.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()})
        self.reply(200, {"ok": True})


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
