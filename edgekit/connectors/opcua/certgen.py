"""Self-signed OPC UA application instance certificates (``edgekit certs generate``).

Writes ``<out>/cert.der`` (X.509 v3, DER) and ``<out>/key.pem`` (RSA 2048 PKCS#8, mode 0600). The
application URI goes into subjectAltName as a URI — OPC UA peers check it, and the client's
``application_uri`` must equal it (edgekit reads it back from the certificate by default); the
host names go in as DNS names. Key usage and extended key usage follow OPC UA Part 6 §6.2.2.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["GeneratedCert", "application_uri_of", "fingerprint", "generate", "load_cert"]


@dataclass(frozen=True)
class GeneratedCert:
    cert_path: Path
    key_path: Path
    application_uri: str
    fingerprint: str


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, lower-case hex with colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":")


def load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def application_uri_of(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def generate(
    out: Path,
    uri: str,
    hostnames: list[str] | None = None,
    common_name: str = "edgekit",
    days: int = 3650,
    server: bool = False,
    overwrite: bool = False,
) -> GeneratedCert:
    """Create a key pair and a self-signed certificate for ``uri`` in folder ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / "cert.der", out / "key.pem"
    if not overwrite and (cert_path.exists() or key_path.exists()):
        raise FileExistsError(f"{cert_path} or {key_path} exists; pass overwrite to replace them")
    hosts = hostnames or [socket.gethostname()]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgekit"),
    ])
    now = dt.datetime.now(dt.UTC)
    eku = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uri), *(x509.DNSName(h) for h in hosts)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=True,
                data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return GeneratedCert(cert_path, key_path, uri, fingerprint(cert))
