"""SMTP client (lws v2.1's lws_email): mail sent from the context's loop.

    from lws.smtp import Email
    mail = Email(ctx, "smtp.example.com", 587, user="me", password="pw",
                 helo="board.example.com", ca="ca.pem")
    mail.send("me@example.com", ["you@example.com"], "Hello", "Body\\n",
              done=lambda ok, reply: print(ok, reply))

One message at a time from a bounded queue, each over a raw client
connection (Context.connect("raw://...")), so the connect, STARTTLS and
every reply go through the loop: the server is never blocked for it
(the server's name too is looked up on the loop, lws.resolve).
Every outcome reaches done(ok, (code, text, rejected)): the server's last
reply, or code 0 and a local error ('timeout', 'refused', 'dns', 'closed',
'tls', 'starttls', 'cleartext', 'auth', 'reply', 'error'); rejected lists
(address, code, text) of the recipients the server refused.
"""
import time
from . import log
from .protocol import Protocol

_LINE_MAX = const(512)  # RFC 5321 4.5.3.1.5: a reply line, CRLF included
_CHUNK = const(512)     # message bytes handed to the socket at once
_SHAKE_MS = const(20)   # how often a STARTTLS handshake is pushed on
_EAGAIN = const(11)

# where the dialogue is: the reply awaited
_GREET = const(0)
_EHLO = const(1)
_HELO = const(2)
_STARTTLS = const(3)
_AUTH = const(4)        # 235 to AUTH PLAIN, or to the LOGIN password
_AUTH_USER = const(5)   # 334 to AUTH LOGIN
_AUTH_PASS = const(6)   # 334 to the LOGIN user name
_MAIL = const(7)
_RCPT = const(8)
_DATA = const(9)
_BODY = const(10)       # sending the message: no reply awaited
_DOT = const(11)
_QUIT = const(12)

# extensions the EHLO reply offered
_X_TLS = const(1)
_X_PLAIN = const(2)
_X_LOGIN = const(4)

# local errors worth another try later
_TEMP = ("timeout", "refused", "dns", "closed", "error")


def _b64(s):
    import binascii
    return binascii.b2a_base64(s.encode())[:-1].decode()


def _text(b):
    """A reply's text as str, whatever bytes the server sent."""
    try:
        return b.decode()
    except UnicodeError:
        return "".join(chr(x) if 32 <= x < 127 else "?" for x in b)


def _check(s, what):
    if "\r" in s or "\n" in s:
        raise ValueError("line break in " + what)
    return s


def _addr(a):
    if "<" in a or ">" in a:
        raise ValueError("a bare address, no <>: " + a)
    return _check(a, "address")


def _word(s):
    """A header value: RFC 2047 encoded when it is not ASCII."""
    b = s.encode()
    if len(b) == len(s):
        return s
    return "=?utf-8?b?%s?=" % _b64(s)


def _date():
    """RFC 5322's Date, or None while the clock was never set."""
    from .httpmsg import http_date
    d = http_date(int(time.time()))
    return d[:-3] + "+0000" if d else None


def stuff(body):
    """The body's lines with CRLF endings, a leading '.' doubled (RFC 5321
    4.5.2), in pieces of about _CHUNK bytes: the message is never copied
    whole."""
    out = bytearray()
    i = 0
    n = len(body)
    mv = memoryview(body)
    while i < n:
        j = body.find(b"\n", i)
        e = n if j < 0 else j
        k = e - 1 if e > i and body[e - 1] == 13 else e
        if body[i] == 46:
            out.append(46)
        out += mv[i:k]
        out += b"\r\n"
        i = e + 1
        if len(out) >= _CHUNK:
            yield out
            out = bytearray()
    if out:
        yield out


class Email(Protocol):
    """Mail to one SMTP server (lws_email). Options are keyword arguments,
    or class attributes to override."""

    name = "lws-smtp"
    #: STARTTLS when the server offers it (True), always ('required': no
    #: mail without it), or never (False)
    starttls = True
    #: implicit TLS from the first byte (SMTPS, port 465)
    tls = False
    #: the server's certificate is checked against ca (PEM or DER, a file
    #: or bytes) and its name against host; insecure=True checks nothing
    ca = None
    insecure = False
    #: AUTH PLAIN or LOGIN with these, whichever the server offers; never
    #: in clear unless cleartext_auth=True
    user = None
    password = None
    cleartext_auth = False
    #: the name given in EHLO/HELO (and Message-IDs): the board's own
    helo = "localhost"
    #: seconds for the connect and for each reply
    timeout = 30
    #: more tries after a temporary failure (4xx, refused, timeout, a
    #: hang-up), retry_delay seconds apart; a 5xx is final
    retries = 2
    retry_delay = 30
    #: messages queued at once (the one being sent included)
    queue_max = 4

    def __init__(self, ctx, host, port=25, **options):
        for k in options:
            if k[0] == "_" or not hasattr(Email, k) or \
                    callable(getattr(Email, k)):
                raise ValueError("unknown option " + k)
            setattr(self, k, options[k])
        self.ctx = ctx
        self.host = host
        self.port = port
        self._q = []      # [from, [to], head, body, done, tries]
        self._c = None    # the connection, while there is one
        self._timer = None
        self._st = _GREET
        self._ln = bytearray()
        self._txt = ""
        self._x = 0
        self._rcpt = 0
        self._ok = 0
        self._rej = None
        self._out = None
        self._hs = False
        self._shake = None  # the timer of a STARTTLS handshake

    # -- the API -----------------------------------------------------------

    def send(self, from_addr, to_addrs, subject, body, headers=None,
             done=None):
        """Queue a message: True, or False when the queue is full.
        to_addrs: an address or a list; body: str or bytes (lines end in
        LF or CRLF); headers: more of them, a dict or (name, value) pairs,
        overriding ours (Content-Type, ...). ValueError for what would
        break the dialogue (line breaks in addresses or headers)."""
        if isinstance(to_addrs, str):
            to_addrs = [to_addrs]
        if not to_addrs:
            raise ValueError("no recipient")
        if len(self._q) >= self.queue_max:
            return False
        to_addrs = [_addr(a) for a in to_addrs]
        if isinstance(body, str):
            body = body.encode()
        head = self._head(_addr(from_addr), to_addrs, subject, headers)
        self._q.append([from_addr, to_addrs, head, body, done, 0])
        self._next()
        return True

    def pending(self):
        """Messages queued, the one being sent included."""
        return len(self._q)

    def close(self):
        """Stop: the connection dropped, every queued message failed with
        'closed' (closing the context alone leaves them waiting)."""
        if self._timer is not None:
            self.ctx.cancel(self._timer)
            self._timer = None
        c = self._c
        self._c = None
        self._unshake()
        if c is not None:
            c.drop()
        while self._q:
            self._report(self._q.pop(0), False, 0, "closed")

    # -- the message -----------------------------------------------------

    def _head(self, frm, to, subject, extra):
        if isinstance(extra, dict):
            extra = extra.items()
        have = []
        h = ""
        for k, v in extra or ():
            h += "%s: %s\r\n" % (_check(k, "header"), _check(_word(v),
                                                              "header"))
            have.append(k.lower())
        std = [("From", frm), ("To", ", ".join(to)),
               ("Subject", _word(_check(subject, "subject"))),
               ("Date", _date()), ("Message-ID", self._msgid()),
               ("MIME-Version", "1.0"),
               ("Content-Type", "text/plain; charset=utf-8"),
               ("Content-Transfer-Encoding", "8bit")]
        out = ""
        for k, v in std:
            if v is not None and k.lower() not in have:
                out += "%s: %s\r\n" % (k, v)
        return (out + h + "\r\n").encode()

    def _msgid(self):
        import binascii
        import os
        return "<%s.%d@%s>" % (binascii.hexlify(os.urandom(6)).decode(),
                               time.ticks_ms(), self.helo.strip("[]"))

    # -- connections -----------------------------------------------------

    def _next(self):
        """Start on the queue's first message if nothing runs or waits."""
        if self._c is not None or self._timer is not None or not self._q:
            return
        h = self.host
        url = "raw://%s:%d" % ("[%s]" % h if ":" in h else h, self.port)
        try:
            c = self.ctx.connect(url, self)
        except Exception as e:  # a bad host, a full heap
            log.warn("smtp: %s", e)
            self._failed(0, "error")
            return
        self._c = c
        self._st = _GREET
        self._ln = bytearray()
        self._txt = ""
        self._x = 0
        self._hs = False
        c.set_timeout(self.timeout)  # the connect's time too

    def on_client_connection_error(self, c, why):
        if c is not self._c:
            return
        self._c = None
        w = "closed"
        for k, v in (("DNS", "dns"), ("refused", "refused"),
                     ("timed out", "timeout"), ("TLS", "tls"),
                     ("failed", "refused")):
            if k in why:
                w = v
                break
        log.info("smtp: %s: %s", self.host, why)
        self._failed(0, w)

    def on_raw_adopt(self, c):
        c.set_timeout(self.timeout)
        if self.tls and self._wrap(c):
            # mbedTLS sends its hello when first read from, and the
            # server speaks only after the handshake: read once now
            b = bytearray(1)
            n = c.recv_into(b)
            if n == 0:
                self._fail(c, 0, "tls")
            elif n:
                self.on_raw_rx(c, memoryview(b))

    def _wrap(self, c):
        from .tls import client_context, wrap
        try:
            wrap(c, client_context(self.ca, self.insecure), self.host)
            self._hs = True  # until the first reply over TLS
            return True
        except (OSError, ValueError, MemoryError) as e:
            log.info("smtp: TLS: %s", e)
            self._fail(c, 0, "tls")
            return False

    def on_raw_close(self, c):
        if c is not self._c:
            return  # we hung up ourselves
        self._c = None
        self._unshake()
        if self._st == _QUIT:
            self._next()
            return
        d = c.deadline
        if d is not None and time.ticks_diff(time.ticks_ms(), d) >= 0:
            w = "timeout"
        elif self._hs:
            w = "tls"  # the handshake failed
        else:
            w = "closed"
        if c.err is not None:
            log.info("smtp: %s: %s", self.host, c.err)
        self._failed(0, w)

    # -- replies -------------------------------------------------------------

    def on_raw_rx(self, c, data):
        """Reply lines, each cut at _LINE_MAX (the rest is dropped). What
        came in clear behind the 220 to STARTTLS is dropped too: it would
        pass for the server's word over TLS (CVE-2011-0411's kind)."""
        d = bytes(data)
        ln = self._ln
        i = 0
        n = len(d)
        tls = c.tls
        while i < n and c is self._c:
            if c.tls != tls:
                log.warn("smtp: %d bytes in clear after STARTTLS dropped",
                         n - i)
                return
            j = d.find(b"\n", i)
            e = n if j < 0 else j
            room = _LINE_MAX - len(ln)
            if room > 0:
                ln += d[i:min(e, i + room)]
            if j < 0:
                return
            i = j + 1
            line = bytes(ln)
            ln[:] = b""
            self._line(c, line[:-1] if line.endswith(b"\r") else line)

    def _line(self, c, b):
        if len(b) < 3 or not b[:3].isdigit() or len(b) > 3 and \
                b[3] not in b" -":
            log.info("smtp: bad reply line %r", b[:40])
            self._fail(c, 0, "reply")
            return
        self._hs = False
        more = len(b) > 3 and b[3] == 45  # '-'
        t = b[4:]
        if self._st == _EHLO:
            u = t.upper()
            if u == b"STARTTLS":
                self._x |= _X_TLS
            elif u.startswith(b"AUTH"):
                for m in u[5:].split():
                    self._x |= (_X_PLAIN if m == b"PLAIN" else
                                _X_LOGIN if m == b"LOGIN" else 0)
        if self._txt:
            if len(self._txt) < _LINE_MAX:
                self._txt += "\n" + _text(t)
        else:
            self._txt = _text(t)
        if more:
            return
        code = int(b[:3])
        txt = self._txt
        self._txt = ""
        self._reply(c, code, txt)

    def _reply(self, c, code, txt):
        st = self._st
        c.set_timeout(self.timeout)
        if st == _BODY:  # a server that gave up while we were sending
            self._fail(c, code, txt)
        elif st == _GREET:
            self._expect(c, code, 220, txt) and self._ehlo(c)
        elif st == _EHLO:
            if code == 250:
                self._hello(c)
            elif code >= 500:
                self._cmd(c, _HELO, "HELO " + self.helo)
            else:
                self._fail(c, code, txt)
        elif st == _HELO:
            self._expect(c, code, 250, txt) and self._hello(c)
        elif st == _STARTTLS:
            if code == 220:
                if self._wrap(c):
                    self._x = 0
                    self._st = _EHLO
                    self._shake = self.ctx.every(_SHAKE_MS, self._push)
                    self._push()
            elif self.starttls == "required":
                self._fail(c, code, txt)
            else:
                self._x &= ~_X_TLS
                self._hello(c)
        elif st == _AUTH_USER or st == _AUTH_PASS:
            if self._expect(c, code, 334, txt):
                u = self.user if st == _AUTH_USER else self.password
                self._cmd(c, _AUTH_PASS if st == _AUTH_USER else _AUTH,
                          _b64(u))
        elif st == _AUTH:
            self._expect(c, code, 235, txt) and self._mail(c)
        elif st == _MAIL:
            self._expect(c, code, 250, txt) and self._to(c)
        elif st == _RCPT:
            if code == 250 or code == 251:
                self._ok += 1
            else:
                self._rej.append((self._q[0][1][self._rcpt], code, txt))
            self._rcpt += 1
            if self._rcpt < len(self._q[0][1]):
                self._to(c)
            elif self._ok:
                self._cmd(c, _DATA, "DATA")
            else:
                self._fail(c, code, txt)
        elif st == _DATA:
            if self._expect(c, code, 354, txt):
                m = self._q[0]
                c.send(m[2])
                self._out = stuff(m[3])
                self._st = _BODY
                c.callback_on_writable()
        elif st == _DOT:
            if self._expect(c, code, 250, txt):
                self._report(self._q.pop(0), True, code, txt)
                if self._c is not c:
                    return  # done() closed us
                if self._q:
                    self._mail(c)
                else:
                    self._cmd(c, _QUIT, "QUIT")
        elif st == _QUIT:
            self._c = None
            c.drop()
            self._next()

    def _expect(self, c, code, want, txt):
        if code == want:
            return True
        self._fail(c, code, txt)
        return False

    def _cmd(self, c, st, line):
        self._st = st
        c.send(line.encode() + b"\r\n")
        c.set_timeout(self.timeout)

    def _ehlo(self, c):
        self._x = 0
        self._cmd(c, _EHLO, "EHLO " + self.helo)

    def _hello(self, c):
        """Greeted (again, after STARTTLS): TLS, AUTH, then the mail."""
        if not c.tls and self.starttls:
            if self._x & _X_TLS:
                self._cmd(c, _STARTTLS, "STARTTLS")
                return
            if self.starttls == "required":
                self._fail(c, 0, "starttls", False)
                return
        if self.user is None:
            self._mail(c)
        elif not c.tls and not self.cleartext_auth:
            self._fail(c, 0, "cleartext", False)
        elif self._x & _X_PLAIN:
            self._cmd(c, _AUTH, "AUTH PLAIN " + _b64("\0%s\0%s" % (
                self.user, self.password)))
        elif self._x & _X_LOGIN:
            self._cmd(c, _AUTH_USER, "AUTH LOGIN")
        else:
            self._fail(c, 0, "auth", False)

    def _mail(self, c):
        self._rcpt = self._ok = 0
        self._rej = []
        self._cmd(c, _MAIL, "MAIL FROM:<%s>" % self._q[0][0])

    def _to(self, c):
        self._cmd(c, _RCPT, "RCPT TO:<%s>" % self._q[0][1][self._rcpt])

    def on_raw_writeable(self, c):
        """The message goes out a piece at a time, as the socket takes it."""
        if self._st != _BODY or c is not self._c:
            return
        p = next(self._out, None)
        c.set_timeout(self.timeout)
        if p is None:
            self._out = None
            self._cmd(c, _DOT, ".")
        else:
            c.send(p)
            c.callback_on_writable()

    # -- outcomes ------------------------------------------------------------

    def _push(self):
        """The EHLO after STARTTLS, written by the timer until the
        handshake lets it through: queued on the connection instead, it
        would have the loop poll for POLLOUT, which the TCP socket always
        has, spinning for as long as the server takes to answer."""
        c = self._c
        if c is None:
            self._unshake()
            return
        line = ("EHLO %s\r\n" % self.helo).encode()
        try:
            n = c.sock.write(line)
        except (OSError, ValueError) as e:
            if isinstance(e, OSError) and e.args[0] == _EAGAIN:
                return
            log.info("smtp: TLS: %s", e)
            self._fail(c, 0, "tls")
            return
        if n is None:
            return  # still shaking hands
        self._unshake()
        if n < len(line):
            c.send(line[n:])

    def _unshake(self):
        if self._shake is not None:
            self.ctx.cancel(self._shake)
            self._shake = None

    def _fail(self, c, code, txt, temp=None):
        """This message failed on c: QUIT, hang up, and retry or report."""
        self._c = None
        self._unshake()
        self._out = None
        if code or txt in ("starttls", "cleartext", "auth"):
            c.send(b"QUIT\r\n")  # the session is still up: goodbye
        c.drop()
        self._failed(code, txt, temp)

    def _failed(self, code, txt, temp=None):
        if not self._q:
            return
        if temp is None:
            temp = 400 <= code < 500 or code == 0 and txt in _TEMP
        m = self._q[0]
        if temp and m[5] < self.retries:
            m[5] += 1
            log.info("smtp: %s %s: try %d in %ds", code, txt, m[5] + 1,
                     self.retry_delay)
            self._timer = self.ctx.every(int(self.retry_delay * 1000),
                                         self._retry)
            return
        self._report(self._q.pop(0), False, code, txt)
        self._next()

    def _retry(self):
        self.ctx.cancel(self._timer)
        self._timer = None
        self._next()

    def _report(self, m, ok, code, txt):
        log.info("smtp: %s: %s %d %s", m[1][0], "sent" if ok else "failed",
                 code, txt)
        rej = self._rej or []
        self._rej = None
        done = m[4]
        if done is not None:
            try:
                done(ok, (code, txt, rej))
            except Exception as e:
                log.exc(e, "smtp: done callback")
