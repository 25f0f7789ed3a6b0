"""Notes: routes, a WebSocket protocol and logins on one vhost.

usage: micropython notes.py [PORT]    (then log in at /auth/login)
"""
import json
import sys

import lws
from lws.app import App, abort
from lws.sessions import Sessions

s = Sessions("accounts.json")             # the login pages at /auth
if not s.accounts.exists("admin"):
    s.add_user("admin", "a long password", admin=True)

app = App()
notes = []


class Live(lws.Protocol):
    """Every new note, pushed to each logged-in WebSocket client."""
    name = "live"

    def new_user(self, conn):
        return [0]                        # how many notes it has seen

    def on_established(self, conn):
        conn.user[0] = len(notes)

    def on_server_writeable(self, conn):
        seen = conn.user
        if seen[0] < len(notes):
            conn.send_text(json.dumps(notes[seen[0]]))
            seen[0] += 1
            conn.callback_on_writable()   # one a time: the next one later


live = Live()


@app.get("/api/notes")
@s.login_required
def list_notes(request):
    return {"user": request.user, "notes": notes}


@app.post("/api/notes")
@s.login_required
def add_note(request):
    text = (request.json or {}).get("text")
    if not isinstance(text, str) or not 0 < len(text) <= 200:
        abort(400, "text: 1 to 200 characters")
    notes.append({"by": request.user, "text": text})
    request.conn.ctx.callback_on_writable_all_protocol(live)
    return {"n": len(notes)}, 201


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
lws.Context(port=port,
            mounts=[lws.Mount("/auth", "callback://lws-sessions"),
                    lws.Mount("/live", "callback://live"), app.mount("/")],
            protocols=[s.protocol(), s.guard(live), app]).run()
