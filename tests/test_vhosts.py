"""Vhosts: several names on one port (picked by Host), another port."""
import http.client

from conftest import free_port, start

APP = """
import lws

class Who(lws.Protocol):
    name = "who"
    def __init__(self, me):
        self.me = me
    def on_http(self, conn, req):
        conn.respond(200, body=self.me + " " + req.subpath,
                     content_type="text/plain")

def vh(name, port):
    return lws.Vhost(name, port, [lws.Mount("/", "callback://who")], [Who(name)])

lws.Context([vh("a.example", {p1}), vh("b.example", {p1}),
             vh("other-port", {p2})]).run()
"""


def get(port, host, path="/x"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers={"Host": host})
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def test_vhosts_by_host_and_port(tmp_path):
    p1, p2 = free_port(), free_port()
    script = tmp_path / "vh.py"
    script.write_text(APP.format(p1=p1, p2=p2))
    srv = start(tmp_path, script=script, port=p1)
    try:
        assert get(p1, "a.example") == (200, "a.example /x")
        assert get(p1, "b.example:%d" % p1) == (200, "b.example /x")
        # unknown names go to the first vhost on the port, as lws does
        assert get(p1, "unknown.example") == (200, "a.example /x")
        assert get(p2, "b.example") == (200, "other-port /x")
    finally:
        srv.stop()
