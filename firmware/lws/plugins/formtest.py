"""lws-formtest: the test server's form demo (lws's formtest).

GET  .../   a page with two forms: multipart/form-data (text fields and
            a file) and urlencoded
POST .../   what arrived, as JSON: {"fields": {name: value}, "files":
            [{"name", "filename", "type", "size", "sha256", "saved"}]};
            with a folder, files are saved there (whole or not at all),
            "saved" their name there, else null
"""
import json
from lws import Protocol

_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>microlws formtest</title></head><body><h1>formtest</h1>
<form method="post" enctype="multipart/form-data">
<p><label>text <input name="text" value="hello"></label>
<label>number <input name="number" value="42"></label></p>
<p><input type="file" name="file"> <input type="submit" value="Upload"></p>
</form>
<form method="post"><p><label>text <input name="text"></label>
<label><input type="checkbox" name="tick" value="on"> tick</label>
<input type="submit" value="Send urlencoded"></p></form>
</body></html>
"""


def _form_class():
    """The form, made at the first POST: lws.spa is not loaded before."""
    from lws.spa import Form

    class _Form(Form):
        max_fields = 16
        max_file = 4 << 20
        max_total = 8 << 20
        window = 2048

        def on_part(self, part):
            super().on_part(part)
            if part.filename is not None:
                from lws.genhash import Hash
                part.h = Hash("sha256")

        def on_data(self, part, data):
            super().on_data(part, data)
            if part.filename is not None:
                part.h.update(data)
    return _Form


class FormTest(Protocol):
    name = "lws-formtest"
    _form = None

    def __init__(self, folder=None):
        self.folder = folder
        if folder:
            import os
            try:
                os.mkdir(folder)
            except OSError:
                pass  # there already

    def on_http(self, conn, req):
        if req.method == "POST":
            if self._form is None:
                self._form = _form_class()
            conn.user = self._form(conn, save_to=self.folder)
        elif req.method in ("GET", "HEAD"):
            conn.respond(200, body=_PAGE, content_type="text/html")
        else:
            conn.send_error(405)

    def on_http_body(self, conn, data):
        if conn.user is not None:
            conn.user.feed(data)

    def on_http_body_completion(self, conn):
        f = conn.user
        if f is None or not f.finish():
            return
        import binascii
        files = []
        for p in f.files:
            files.append({
                "name": p.name, "filename": p.filename,
                "type": p.content_type, "size": p.size,
                "sha256": binascii.hexlify(p.h.digest()).decode(),
                "saved": p.path and p.path[p.path.rfind("/") + 1:]})
        fields = {}
        for k, v in f.fields.items():
            fields[k] = v if isinstance(v, str) else repr(v)
        conn.user = None
        conn.respond(200, body=json.dumps({"fields": fields, "files": files}),
                     content_type="application/json")

    def on_closed_http(self, conn):
        if conn.user is not None:
            conn.user.abort()
