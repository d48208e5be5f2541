"""spec/support/notify_smtp.py: a real SMTP server (Debian's python3-aiosmtpd)
for spec/notify_email_spec.lua. Accepts AUTH LOGIN/PLAIN for one user, and
STARTTLS when given a certificate; writes each message it receives to
DIR/N.eml with DIR/N.json ({mail_from, rcpt_tos, login}); prints its port on
the first line of stdout; stops when stdin closes.

  notify_smtp.py DIR USER PASSWORD [CERT KEY]
"""
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

directory, user, password = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
cert = sys.argv[4] if len(sys.argv) > 5 else None
key = sys.argv[5] if len(sys.argv) > 5 else None


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
    if ok:
        session.resi_login = auth_data.login.decode()
    return AuthResult(success=ok, handled=False)


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        base = os.path.join(directory, str(Handler.count))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        login = getattr(session, "resi_login", None)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "login": login,
                       "tls": session.ssl is not None}, f)
        return "250 Message accepted for delivery"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


kwargs = {"authenticator": authenticate, "auth_required": True}
if cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
else:
    kwargs.update(auth_require_tls=False)
port = free_port()
controller = Controller(Handler(), hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs)
controller.start()
print(port, flush=True)
sys.stdin.read()
controller.stop()
