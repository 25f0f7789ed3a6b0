"""TLS certificates beyond the one leaf: client certificates required
and verified on a vhost that asks for them (tls_client_ca; curl --cert,
CPython's ssl), and certificate chains (openssl s_client -showcerts):
sent whole by the board-faithful 32-bit build, whose mbedTLS reads PEM,
the leaf alone (with a warning) by the PyPI unix port, whose does not.

Every certificate is made here (lwstool.certs); every peer on 127.0.0.1.
"""
import hashlib
import http.client
import re
import socket
import ssl
import subprocess

import pytest

from conftest import free_port, peer, start, wait_port
from lwstool.certs import make_cert

pytestmark = pytest.mark.timeout(60)

APP = """
import hashlib, binascii
import lws
from lws.tls import peer_cert

class Who(lws.Protocol):
    name = "who"

    def on_http(self, conn, req):
        d = peer_cert(conn)
        who = binascii.hexlify(hashlib.sha256(d).digest()) if d else b"-"
        conn.respond(200, None, who, "text/plain")

p = Who()
m = [lws.Mount("/", "callback://who")]
ctx = lws.Context([
    lws.Vhost("open", {open}, m, [p], tls_cert={cert!r}, tls_key={key!r}),
    lws.Vhost("strict", {strict}, m, [p], tls_cert={cert!r},
              tls_key={key!r}, tls_client_ca={ca!r}),
], timeout_secs=2)
ctx.run()
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    c = {"server": make_cert(d / "server")}
    ca = c["ca"] = make_cert(d / "ca", cn="microlws client CA",
                             names=["ca.invalid"])
    c["client"] = make_cert(d / "client", cn="device-1", names=["device-1"],
                            ca=ca[2])
    c["stranger"] = make_cert(d / "stranger", cn="device-2",
                              names=["device-2"])  # self-signed
    return c


@pytest.fixture(scope="module")
def app(tmp_path_factory, pki):
    d = tmp_path_factory.mktemp("clientcert")
    o, s = free_port(), free_port()
    cp, kp, _ = pki["server"]
    script = d / "app.py"
    script.write_text(APP.format(open=o, strict=s, cert=str(cp), key=str(kp),
                                 ca=str(pki["ca"][0])))
    srv = start(d, script=script, port=o)
    try:
        wait_port(s, srv.proc)
    except RuntimeError:
        srv.stop()
        raise
    srv.strict = s
    yield srv
    srv.stop()


def fingerprint(certpath):
    der = ssl.PEM_cert_to_DER_cert(certpath.read_text())
    return hashlib.sha256(der).hexdigest()


def get(port, pki, cert=None, version=None):
    ctx = ssl.create_default_context(cafile=str(pki["server"][0]))
    if version is not None:
        ctx.maximum_version = version
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    c = http.client.HTTPSConnection("localhost", port, context=ctx,
                                    timeout=10)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def curl(port, pki, *args):
    return subprocess.run(
        [peer("curl"), "-sS", "--max-time", "10", "--cacert",
         str(pki["server"][0]), "--resolve", "localhost:%d:127.0.0.1" % port,
         *[str(a) for a in args], "https://localhost:%d/" % port],
        capture_output=True, timeout=20)


def test_a_client_certificate_the_ca_signed_is_let_in(app, pki):
    for v in (None, ssl.TLSVersion.TLSv1_2):  # 1.3's flights, and 1.2's
        st, body = get(app.strict, pki, pki["client"], v)
        assert st == 200 and body == fingerprint(pki["client"][0])
    p = curl(app.strict, pki, "--cert", pki["client"][0], "--key",
             pki["client"][1])
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == fingerprint(pki["client"][0])


@pytest.mark.parametrize("who", [None, "stranger"])
def test_no_or_a_foreign_client_certificate_is_refused(app, pki, who):
    cert = pki[who] if who else None
    with pytest.raises((ssl.SSLError, ConnectionError, OSError,
                        http.client.HTTPException)):
        get(app.strict, pki, cert)
    args = ("--cert", cert[0], "--key", cert[1]) if cert else ()
    p = curl(app.strict, pki, *args)
    assert p.returncode != 0 and p.stdout == b""
    # and the vhost goes on serving the clients it trusts, the open one all
    st, _ = get(app.strict, pki, pki["client"])
    assert st == 200
    assert get(app.port, pki) == (200, "-")
    assert app.proc.poll() is None


def test_a_vhost_without_client_ca_asks_for_none(app, pki):
    # a certificate offered anyway is not asked for, so not seen
    assert get(app.port, pki, pki["client"]) == (200, "-")


# -- chains -------------------------------------------------------------------

CHAIN_APP = """
import lws
from lws.plugins.echo import Echo
ctx = lws.Context([lws.Vhost("tls", {port}, [lws.Mount("/", "callback://echo")],
                             [Echo()], tls_cert={cert!r}, tls_key={key!r})])
ctx.run()
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """root -> intermediate -> leaf; chain.pem is the leaf then the
    intermediate, as a CA hands them out."""
    d = tmp_path_factory.mktemp("chain")
    root = make_cert(d / "root", cn="microlws root", names=["root.invalid"])
    mid = make_cert(d / "mid", cn="microlws intermediate",
                    names=["mid.invalid"], ca=root[2], is_ca=True)
    leaf = make_cert(d / "leaf", ca=mid[2])
    pem = d / "chain.pem"
    pem.write_bytes(leaf[0].read_bytes() + mid[0].read_bytes())
    return {"root": root[0], "chain": pem, "key": leaf[1], "dir": d}


def serve_chain(chain, exe=None):
    port = free_port()
    script = chain["dir"] / ("app-%d.py" % port)
    script.write_text(CHAIN_APP.format(port=port, cert=str(chain["chain"]),
                                       key=str(chain["key"])))
    return start(chain["dir"], script=script, port=port, exe=exe)


def showcerts(port):
    p = subprocess.run([peer("openssl"), "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-showcerts"],
                       input=b"", capture_output=True, timeout=20)
    return p.stdout.decode(errors="replace")


def sent(out):
    return len(re.findall(r"-----BEGIN CERTIFICATE-----", out))


def verified_by_root(port, chain):
    ctx = ssl.create_default_context(cafile=str(chain["root"]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.version()


def board_interpreter():
    from lwstool import unix32
    why = unix32.missing()
    if why:
        pytest.skip("no 32-bit build: " + why)
    return unix32.build("esp32", quiet=True)


def test_a_chain_is_sent_whole_where_mbedtls_reads_pem(chain):
    srv = serve_chain(chain, exe=board_interpreter())
    try:
        out = showcerts(srv.port)
        assert sent(out) == 2, out
        assert "microlws intermediate" in out
        # a client that trusts the root alone verifies the leaf
        assert verified_by_root(srv.port, chain)
    finally:
        srv.stop()


def test_without_a_pem_parser_the_leaf_alone_with_a_warning(chain):
    srv = serve_chain(chain)
    try:
        out = showcerts(srv.port)
        assert sent(out) == 1, out
        with pytest.raises(ssl.SSLCertVerificationError):
            verified_by_root(srv.port, chain)
        assert srv.proc.poll() is None
        assert "intermediates are not sent" in srv.log()
    finally:
        srv.stop()


def test_lwsws_configuration_asks_for_client_certificates(tmp_path, pki):
    """host-ssl-ca in a configuration file (lwsws's name) is tls_client_ca."""
    import json
    port = free_port()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("inside")
    conf = tmp_path / "lws.json"
    conf.write_text(json.dumps({"vhosts": [{
        "name": "localhost", "port": port,
        "host-ssl-cert": str(pki["server"][0]),
        "host-ssl-key": str(pki["server"][1]),
        "host-ssl-ca": str(pki["ca"][0]),
        "mounts": [{"mountpoint": "/", "origin": "file://" + str(site)}]}]}))
    srv = start(tmp_path, args=["--config", conf], port=port)
    try:
        assert get(port, pki, pki["client"]) == (200, "inside")
        with pytest.raises((ssl.SSLError, ConnectionError, OSError,
                            http.client.HTTPException)):
            get(port, pki)
        assert srv.proc.poll() is None
    finally:
        srv.stop()
