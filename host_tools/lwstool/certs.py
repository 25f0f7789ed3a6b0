"""Self-signed test certificates (ECDSA P-256), made on the host."""
import datetime
import ipaddress
from pathlib import Path


def make_cert(folder, cn="localhost", days=365, ca=None, names=None,
              is_ca=None):
    """Write cert.pem and key.pem (PKCS#8, as openssl 3 does) in folder,
    signed by ca=(cert, key) objects or self-signed; returns their paths
    and the (cert, key) objects.

    names: the subjectAltName DNS names and IP addresses (default: cn,
    localhost and 127.0.0.1). days < 0 makes a certificate that expired
    that many days ago (valid for a day before that), for tests. is_ca:
    a certificate that signs others (default: the self-signed ones), such
    as an intermediate signed by ca."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    end = now + datetime.timedelta(days=days)
    begin = min(now - datetime.timedelta(minutes=5),
                end - datetime.timedelta(days=1))
    if names is None:
        names = [cn, "localhost", "127.0.0.1"]
    alt = []
    for n in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    if is_ca is None:
        is_ca = ca is None
    issuer, signer = (name, key) if ca is None else (ca[0].subject, ca[1])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(begin).not_valid_after(end)
         .add_extension(x509.SubjectAlternativeName(alt), False)
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None),
                        True))
    cert = b.sign(signer, hashes.SHA256())
    cp, kp = folder / "cert.pem", folder / "key.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)
    return cp, kp, (cert, key)


def ensure_cert(folder):
    """The test server's certificate: made on first use, then kept."""
    folder = Path(folder)
    cp, kp = folder / "cert.pem", folder / "key.pem"
    if not (cp.exists() and kp.exists()):
        make_cert(folder)
    return cp, kp
