"""The gateway's device certificate (issue 13): self-signed, made at first start, pinned.

No authority vouches for a lock on a home LAN, so the lock makes its own certificate (EC
P-256) the first time it serves TLS and keeps it in the gateway's private folder, the key
0600. The claim's answer carries the certificate's SHA-256 fingerprint: the phone, which
claims at the door in pairing mode, pins it from then on. The same certificate is used on
every later start, or the pin would break; a factory reset does not change it.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proto import files

CERT_FILE = "device-cert.pem"
KEY_FILE = "device-key.pem"
VALID_DAYS = 20 * 365  # a pinned certificate is not renewed: it lives as long as the lock


@dataclass(frozen=True)
class DeviceCertificate:
    cert: Path
    key: Path
    sha256: str  # "AB:CD:…": what the app pins

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def fingerprint(pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure(folder: Path) -> DeviceCertificate:
    """The device certificate in folder, made (key first, both whole) if it is not there."""
    files.private_dir(folder)
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if not key.exists() and files.create_private(key, _new_key()):
        cert.unlink(missing_ok=True)  # a certificate of a lost key is of no use
    key_pem = files.read_private(key)  # refused, naming it, if others can read it
    if not cert.exists():
        files.create_private(cert, _new_certificate(key_pem), mode=0o644)
    return DeviceCertificate(cert, key, fingerprint(cert.read_bytes()))


def _new_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_certificate(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise files.FileRefused(f"{KEY_FILE} is not an EC private key")
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"lockmesh {host}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names: list[x509.GeneralName] = [
        x509.DNSName(host),
        x509.DNSName(f"{host}.local"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
