"""Streamed form parsing (lws_spa): application/x-www-form-urlencoded and
multipart/form-data (RFC 7578) bodies, fed the pieces on_http_body gets,
in bounded memory whatever the body; uploads saved to flash whole or not
at all. Imported only by the protocols that use it.

    from lws.spa import Form

    class Upload(lws.Protocol):
        name = "upload"
        def on_http(self, conn, req):
            conn.user = Form(conn, save_to="/data")
        def on_http_body(self, conn, data):
            conn.user.feed(data)
        def on_http_body_completion(self, conn):
            f = conn.user
            if f.finish():  # errors were answered already
                conn.respond(200, body="%r %d" % (f.fields, len(f.files)))
        def on_closed_http(self, conn):
            conn.user.abort()  # dropped mid-body: no file left behind

Spa is the parser itself (lws_spa_create / _process / _finalize): give
it the Content-Type, subclass it and override the callbacks, which are
lws's LWS_UFS_OPEN, _CONTENT, _FINAL_CONTENT and _CLOSE:
  on_part(part)          a field starts (part.name, .filename, .content_type)
  on_data(part, data)    a piece of its value (memoryview, valid during the call)
  on_part_end(part)      the field ended cleanly (part.size bytes)
  on_form_end()          the whole form arrived well
  on_abort(part)         the form failed or was abandoned (part: the open one)
process() and finalize() raise HttpError(413) for a limit, (400) for a
malformed form; after it the parser ignores what it is fed.
"""
from .httpmsg import HttpError, bad_value
from .util import unquote

_PRE = const(0)    # multipart: before the first delimiter
_AFTER = const(1)  # after a delimiter: "--" or padding and CRLF
_HEAD = const(2)   # a part's headers
_BODY = const(3)   # a part's content
_EPI = const(4)    # after the close delimiter: ignored
_URL = const(5)    # urlencoded
_ERR = const(6)    # failed: input ignored
_DONE = const(7)   # finalized

_PAD = const(32)   # most transport padding after a delimiter
_MAX_BOUNDARY = const(70)  # RFC 2046
_MAX_FILENAME = const(64)


class Part:
    """A form field: name, filename (None: not a file), content_type,
    size (bytes so far), path (where Form saved it, else None)."""

    path = None

    def __init__(self, name, filename, content_type):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.size = 0


def _nop(*args):
    pass


class Spa:
    """A streaming form parser; limits as class attributes, or keywords."""

    #: longest field name (characters)
    max_name = 64
    #: longest value of a field that is not a file (bytes)
    max_value = 1024
    #: most fields, files included
    max_fields = 32
    #: largest file (bytes)
    max_file = 512 * 1024
    #: largest body (bytes)
    max_total = 1024 * 1024
    #: the parse window (bytes, >= 256); a part's headers must fit in it
    window = 1024

    part = None

    def __init__(self, content_type, **limits):
        for k, v in limits.items():
            if not (k.startswith("max_") or k == "window") or \
                    not hasattr(Spa, k):
                raise TypeError("no limit " + k)
            setattr(self, k, v)
        self.total = 0
        self.count = 0
        self._acc = None
        self._n = 0
        kind, p = _params(content_type or "", False)
        if kind == "application/x-www-form-urlencoded":
            self._st = _URL
        elif kind == "multipart/form-data":
            b = p.get("boundary")
            if not b or len(b) > _MAX_BOUNDARY or b[-1] == " " \
                    or min(b) < " " or max(b) > "~":
                raise HttpError(400, "multipart without a good boundary")
            self._delim = b"\r\n--" + b.encode()
            self._st = _PRE
            self._n = 2  # as if the body began with CRLF (RFC 2046)
        else:
            raise HttpError(400, "not a form")
        self._w = bytearray(max(self.window, 256))
        self._w[0:2] = b"\r\n"
        self._mv = memoryview(self._w)

    on_part = on_data = on_part_end = on_form_end = on_abort = _nop

    # -- feeding ---------------------------------------------------------

    def process(self, data):
        """Parse a piece of the body (bytes or memoryview)."""
        if self._st >= _ERR:
            return
        try:
            mv = memoryview(data)
            n = len(mv)
            self.total += n
            if self.total > self.max_total:
                raise HttpError(413, "form larger than %d" % self.max_total)
            w = self._w
            cap = len(w)
            run = self._url if self._st == _URL else self._multipart
            i = 0
            while i < n:
                k = min(n - i, cap - self._n)
                w[self._n:self._n + k] = mv if k == n else mv[i:i + k]
                self._n += k
                i += k
                run()
        except BaseException:
            self._fail()
            raise

    def finalize(self):
        """The body has ended: the last field, the end of the form."""
        st = self._st
        if st >= _ERR:
            return
        try:
            if st == _URL:
                if self._acc:
                    a = self._acc
                    self._acc = None
                    self._token(a)
            elif st != _EPI:
                raise HttpError(400, "form ends before its final boundary")
        except BaseException:
            self._fail()
            raise
        self._st = _DONE
        self._w = self._mv = None
        self.on_form_end()

    def abort(self):
        """Give up (the connection is gone): on_abort for the open field."""
        if self._st < _ERR:
            self._fail()

    def _fail(self):
        self._st = _ERR
        self._w = self._mv = self._acc = None
        p = self.part
        self.part = None
        self.on_abort(p)

    # -- fields ----------------------------------------------------------

    def _open(self, name, filename, ctype):
        self.count += 1
        if self.count > self.max_fields:
            raise HttpError(413, "more than %d fields" % self.max_fields)
        if len(name) > self.max_name:
            raise HttpError(413, "field name longer than %d" % self.max_name)
        p = self.part = Part(name, filename, ctype)
        self.on_part(p)

    def _data(self, mv):
        p = self.part
        p.size += len(mv)
        if p.filename is None:
            if p.size > self.max_value:
                raise HttpError(413, "value of %s longer than %d"
                                % (p.name, self.max_value))
        elif p.size > self.max_file:
            raise HttpError(413, "file larger than %d" % self.max_file)
        self.on_data(p, mv)

    def _close(self):
        p = self.part
        self.part = None
        self.on_part_end(p)

    # -- urlencoded ------------------------------------------------------

    def _url(self):
        w = self._w
        mv = self._mv
        n = self._n
        p = 0
        while True:
            j = w.find(b"&", p, n)
            if j < 0:
                break
            if self._acc is not None:
                a = self._acc
                self._acc = None
                a.extend(mv[p:j])
                self._token(a)
            else:
                self._token(mv[p:j])
            p = j + 1
        self._n = 0
        if p < n:
            a = self._acc
            if a is None:
                a = self._acc = bytearray()
            a.extend(mv[p:n])
            if len(a) > 3 * (self.max_name + self.max_value) + 1:
                if a.find(b"=") < 0:
                    raise HttpError(413, "field name longer than %d"
                                    % self.max_name)
                raise HttpError(413, "value longer than %d" % self.max_value)

    def _token(self, t):
        t = bytes(t)
        if not t:
            return
        k, _, v = t.partition(b"=")
        if len(k) > 3 * self.max_name:
            raise HttpError(413, "field name longer than %d" % self.max_name)
        if len(v) > 3 * self.max_value:
            raise HttpError(413, "value longer than %d" % self.max_value)
        try:
            k = unquote(k.decode(), True).decode()
            v = unquote(v.decode(), True)
        except (ValueError, UnicodeError):
            raise HttpError(400, "bad urlencoding")
        self._open(k, None, None)
        if v:
            self._data(memoryview(v))
        self._close()

    # -- multipart -------------------------------------------------------

    def _multipart(self):
        w = self._w
        mv = self._mv
        d = self._delim
        ln = len(d)
        n = self._n
        p = 0
        while p < n:
            st = self._st
            if st == _BODY or st == _PRE:
                j = w.find(d, p, n)
                if j < 0:
                    # keep back what may be the delimiter's beginning
                    k = w.find(b"\r", max(p, n - ln + 1), n)
                    if k < 0:
                        k = n
                    if st == _BODY and k > p:
                        self._data(mv[p:k])
                    p = k
                    break
                if st == _BODY:
                    if j > p:
                        self._data(mv[p:j])
                    self._close()
                p = j + ln
                self._st = _AFTER
            elif st == _AFTER:
                if n - p < 2:
                    break
                if w[p] == 45 and w[p + 1] == 45:  # "--": the last one
                    self._st = _EPI
                    p = n
                    break
                j = w.find(b"\n", p, n)
                if j < 0:
                    if n - p > _PAD:
                        raise HttpError(400, "bad boundary line")
                    break
                if j - p > _PAD or w[j - 1] != 13 or \
                        bytes(mv[p:j - 1]).strip(b" \t"):
                    raise HttpError(400, "bad boundary line")
                p = j + 1
                self._st = _HEAD
            elif st == _HEAD:
                if n - p < 2:
                    break
                if w[p] == 13 and w[p + 1] == 10:
                    raise HttpError(400, "part without headers")
                j = w.find(b"\r\n\r\n", p, n)
                if j < 0:
                    if p == 0 and n == len(w):
                        raise HttpError(413, "part headers longer than %d"
                                        % len(w))
                    break
                self._head(bytes(mv[p:j]))
                p = j + 4
                self._st = _BODY
            else:  # the epilogue
                p = n
        t = n - p
        if t and p:
            w[0:t] = mv[p:n] if p >= t else bytes(mv[p:n])
        self._n = t

    def _head(self, head):
        cd = ct = None
        for line in head.split(b"\r\n"):
            c = line.find(b":")
            if c <= 0 or line[0] in (32, 9) or bad_value(line):
                raise HttpError(400, "bad part header")
            k = line[:c].strip().lower()
            try:
                v = line[c + 1:].strip(b" \t").decode()
            except UnicodeError:
                raise HttpError(400, "part header is not UTF-8")
            if k == b"content-disposition":
                if cd is not None:
                    raise HttpError(400, "two Content-Dispositions")
                cd = v
            elif k == b"content-type":
                ct = v
        if cd is None:
            raise HttpError(400, "part without Content-Disposition")
        try:
            kind, p = _params(cd, True)
        except ValueError as e:
            raise HttpError(400, "bad Content-Disposition (%s)" % e)
        name = p.get("name")
        if kind != "form-data" or name is None:
            raise HttpError(400, "part is not form-data with a name")
        fn = p.get("filename")
        x = p.get("filename*")
        if x is not None:
            x = _ext_value(x)
            if x is not None:
                fn = x
        self._open(name, fn, ct or "text/plain")


def _params(s, strict):
    """'type; a=1; b="x;y"' -> ('type', {'a': '1', 'b': 'x;y'}), names in
    lower case; in a quoted value backslash escapes only '"' and itself.
    ValueError (strict: also a parameter twice or without '=')."""
    i = s.find(";")
    if i < 0:
        return s.strip().lower(), {}
    kind = s[:i].strip().lower()
    d = {}
    n = len(s)
    while i < n:
        i += 1  # past the ';'
        e = s.find("=", i)
        sc = s.find(";", i)
        end = n if sc < 0 else sc
        if e < 0 or e > end:
            if strict and s[i:end].strip():
                raise ValueError("parameter without a value")
            i = end
            continue
        k = s[i:e].strip().lower()
        i = e + 1
        while i < n and s[i] in " \t":
            i += 1
        if i < n and s[i] == '"':
            i += 1
            v = []
            while True:
                q = s.find('"', i)
                if q < 0:
                    raise ValueError("unclosed quote")
                b = s.find("\\", i, q)
                if b >= 0 and b + 1 < n and s[b + 1] in '"\\':
                    v.append(s[i:b])
                    v.append(s[b + 1])
                    i = b + 2
                elif b >= 0:
                    v.append(s[i:b + 1])
                    i = b + 1
                else:
                    v.append(s[i:q])
                    i = q + 1
                    break
            v = "".join(v)
            sc = s.find(";", i)
            end = n if sc < 0 else sc
            if s[i:end].strip():
                raise ValueError("bytes after a quoted value")
        else:
            v = s[i:end].strip()
        i = end
        if strict and k in d:
            raise ValueError("%s twice" % k)
        d[k] = v
    return kind, d


def _ext_value(x):
    """RFC 5987: "UTF-8''%e2%82%ac.txt" -> the text, None if unreadable."""
    p = x.split("'", 2)
    if len(p) != 3 or p[0].lower() not in ("utf-8", "us-ascii"):
        return None
    try:
        return unquote(p[2]).decode()
    except (ValueError, UnicodeError):
        return None


def safe_name(name, maxlen=_MAX_FILENAME):
    """A client's filename made safe to save: its last path segment, no
    control or reserved characters, no leading or trailing dots or
    spaces, at most maxlen characters; None if nothing is left."""
    if not name:
        return None
    name = name[max(name.rfind("/"), name.rfind("\\")) + 1:]
    out = []
    for ch in name:
        out.append("_" if ch < " " or ch in '<>:"|?*\x7f' else ch)
    name = "".join(out).strip(" .")[:maxlen].strip(" .")
    return name or None


class Saver:
    """A file written under a temporary name beside it (.<name>.<n>.part):
    commit() renames it into place, discard() removes it, so a broken
    upload leaves nothing half-written."""

    def __init__(self, path):
        i = path.rfind("/") + 1
        self.path = path
        self.tmp = "%s.%s.%x.part" % (path[:i], path[i:], id(self) & 0xffffff)
        self.f = open(self.tmp, "wb")

    def write(self, data):
        self.f.write(data)

    def close(self):
        """All written: the file closed, still under its temporary name."""
        f = self.f
        self.f = None
        if f is not None:
            f.close()

    def commit(self):
        """Into place (replacing a file of that name); returns the path."""
        import os
        self.close()
        try:
            os.rename(self.tmp, self.path)
        except OSError:
            # a port whose rename does not replace (FAT)
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.rename(self.tmp, self.path)
        self.tmp = None
        return self.path

    def discard(self):
        import os
        try:
            self.close()
        except OSError:
            pass
        if self.tmp is not None:
            try:
                os.remove(self.tmp)
            except OSError:
                pass
            self.tmp = None


class Form(Spa):
    """The simple case, made in on_http: small values gathered in
    form.fields ({name: str, or bytes if not UTF-8}; the last of a name
    wins), files listed in form.files (Parts) and, with save_to, saved in
    that folder under their sanitised names (part.path): each is put in
    place only when the whole form has arrived well, so a form answered
    with an error leaves no file. Errors are answered on conn (4xx, then
    the connection closes)."""

    def __init__(self, conn, save_to=None, **limits):
        self.conn = conn
        self.save_to = save_to
        self.fields = {}
        self.files = []
        self.failed = False
        self._val = self._f = None
        self._saved = []
        req = conn.req
        try:
            Spa.__init__(self, req.h.get("content-type"), **limits)
            if req.remaining > self.max_total:
                raise HttpError(413, "form larger than %d" % self.max_total)
        except HttpError as e:
            self._st = _ERR
            self._w = self._mv = None
            self._answer(e)

    def _answer(self, e):
        self.failed = True
        self.conn.send_error(e.args[0], e.args[1], True)

    def feed(self, data):
        """Give it what on_http_body got."""
        if not self.failed:
            try:
                self.process(data)
            except HttpError as e:
                self._answer(e)

    def finish(self):
        """In on_http_body_completion: True when the whole form arrived
        well (answer it then), False when an error was answered."""
        if self.failed:
            return False
        try:
            self.finalize()
        except HttpError as e:
            self._answer(e)
            return False
        return True

    def on_part(self, part):
        if part.filename is None:
            self._val = bytearray()
        else:
            self.files.append(part)
            name = safe_name(part.filename) if self.save_to else None
            if name:
                try:
                    self._f = Saver(self.save_to + "/" + name)
                except OSError as e:
                    raise HttpError(500, "cannot save %s (%s)" % (name, e))

    def on_data(self, part, data):
        if part.filename is None:
            self._val.extend(data)
        elif self._f is not None:
            try:
                self._f.write(data)
            except OSError as e:
                raise HttpError(500, "cannot save the upload (%s)" % e)

    def on_part_end(self, part):
        if part.filename is None:
            v = bytes(self._val)
            self._val = None
            try:
                v = v.decode()
            except UnicodeError:
                pass
            self.fields[part.name] = v
        elif self._f is not None:
            f = self._f
            self._saved.append((part, f))
            self._f = None
            try:
                f.close()
            except OSError as e:
                raise HttpError(500, "cannot save the upload (%s)" % e)

    def on_form_end(self):
        try:
            for part, f in self._saved:
                part.path = f.commit()
        except OSError as e:
            self.on_abort(None)
            raise HttpError(500, "cannot save the upload (%s)" % e)
        self._saved = []

    def on_abort(self, part):
        self._val = None
        f = self._f
        self._f = None
        if f is not None:
            f.discard()
        for _, f in self._saved:
            f.discard()
        self._saved = []
