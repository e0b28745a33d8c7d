"""Secure-channel setup: endpoint/policy choice, server certificate trust, credentials.

asyncua does not validate the server certificate on its own. Here the certificate of the chosen
endpoint is checked *before* a secure channel is opened or a password is sent: it is trusted when
its SHA-256 fingerprint equals a certificate in ``trust_dir`` or it was issued (signature checked)
by a CA certificate there, and it is inside its validity period. An unknown certificate is
rejected with :class:`SecurityError` naming its fingerprint and the file to trust, unless
``trust_on_first_use`` is set — then it is written to ``trust_dir/<fingerprint>.der`` and trusted
from then on (so a later, different certificate is rejected). A validator is also installed on
the client so the certificate the server presents in CreateSession must be the validated one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies as sp
from cryptography import x509

from ...errors import SecurityError
from .certgen import application_uri_of, fingerprint, load_cert
from .config import OpcUaConnectionConfig

__all__ = ["POLICIES", "SecurityChoice", "TrustStore", "apply_security", "choose_endpoint"]

log = logging.getLogger(__name__)

# Strongest first: the order "auto" prefers.
POLICIES: dict[str, type[sp.SecurityPolicy]] = {
    "Aes256_Sha256_RsaPss": sp.SecurityPolicyAes256Sha256RsaPss,
    "Basic256Sha256": sp.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": sp.SecurityPolicyAes128Sha256RsaOaep,
}
_NONE_URI = "http://opcfoundation.org/UA/SecurityPolicy#None"
_MODES = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}


@dataclass(frozen=True)
class SecurityChoice:
    policy: str  # "None" or a key of POLICIES
    mode: str  # "None", "Sign", "SignAndEncrypt"
    server_cert: bytes | None


def _der_first(der: bytes) -> bytes:
    length = int.from_bytes(der[2:4], "big") + 4  # peel the first cert off a chain
    return der[:length]


class TrustStore:
    """Trusted server certificates: a folder of ``.der``/``.pem``/``.crt`` files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _certs(self) -> list[x509.Certificate]:
        certs = []
        if self.folder.is_dir():
            for p in sorted(self.folder.iterdir()):
                if p.suffix.lower() in (".der", ".pem", ".crt", ".cer"):
                    try:
                        certs.append(load_cert(p))
                    except ValueError:
                        log.warning("ignoring unreadable certificate %s in trust dir", p)
        return certs

    def check(self, cert: x509.Certificate, tofu: bool) -> str:
        """Return how the certificate is trusted ("pinned", "ca", "recorded") or raise SecurityError."""
        now = dt.datetime.now(dt.UTC)
        fp = fingerprint(cert)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SecurityError(
                f"server certificate {fp} is outside its validity period "
                f"({cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d})"
            )
        trusted = self._certs()
        if any(fingerprint(t) == fp for t in trusted):
            return "pinned"
        for ca in trusted:
            try:
                cert.verify_directly_issued_by(ca)
            except Exception:  # any failure means "not issued by this CA"
                continue
            return "ca"
        if tofu:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{fp.replace(':', '')[:40]}.der"
            from cryptography.hazmat.primitives.serialization import Encoding

            path.write_bytes(cert.public_bytes(Encoding.DER))
            log.warning("trust on first use: recorded server certificate %s into %s", fp, path)
            return "recorded"
        subject = cert.subject.rfc4514_string()
        raise SecurityError(
            f"server certificate is not trusted: subject {subject!r}, SHA-256 {fp}. "
            f"Copy it into {self.folder} after checking the fingerprint, or set trust_on_first_use = true"
        )


def choose_endpoint(cfg: OpcUaConnectionConfig, endpoints: list[ua.EndpointDescription]) -> SecurityChoice:
    """Pick the endpoint the config asks for (``auto``: strongest offered) or raise SecurityError."""
    offered = {(e.SecurityPolicyUri, e.SecurityMode): e for e in endpoints}
    wanted = list(POLICIES) if cfg.security_policy == "auto" else [cfg.security_policy]
    if cfg.security_policy == "auto" and not cfg.client_cert:
        wanted = []  # cannot do a secure channel without a client certificate
    for name in wanted:
        if name == "None":
            break
        ep = offered.get((POLICIES[name].URI, _MODES[cfg.security_mode]))
        if ep is not None:
            return SecurityChoice(name, cfg.security_mode, _der_first(ep.ServerCertificate))
    secure_offered = sorted(
        f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints
        if e.SecurityPolicyUri != _NONE_URI
    )
    if cfg.security_policy in ("auto", "None") and (_NONE_URI, ua.MessageSecurityMode.None_) in offered:
        if not cfg.allow_insecure:
            hint = "configure client_cert/client_key (edgekit certs generate)" if secure_offered else ""
            raise SecurityError(
                f"only security policy None is usable (server offers {secure_offered or 'no secure policy'}); "
                f"{hint + ' or ' if hint else ''}set allow_insecure = true"
            )
        return SecurityChoice("None", "None", None)
    raise SecurityError(
        f"server does not offer {cfg.security_policy}/{cfg.security_mode}; it offers {secure_offered or 'only None'}"
    )


async def apply_security(client: Client, cfg: OpcUaConnectionConfig, choice: SecurityChoice) -> str:
    """Validate the server certificate and configure ``client``; returns how it was trusted."""
    if choice.policy == "None":
        log.warning("%s: OPC UA connection without security (policy None): traffic is readable and forgeable", cfg.name)
        return "insecure"
    assert choice.server_cert is not None
    server_cert = x509.load_der_x509_certificate(choice.server_cert)
    how = TrustStore(Path(cfg.trust_dir)).check(server_cert, cfg.trust_on_first_use)
    try:
        client_cert = load_cert(Path(cfg.client_cert))
    except (OSError, ValueError) as exc:
        raise SecurityError(f"cannot load client_cert {cfg.client_cert!r}: {exc}") from exc
    cert_uri = application_uri_of(client_cert)
    if cfg.application_uri and cert_uri != cfg.application_uri:
        raise SecurityError(
            f"application_uri {cfg.application_uri!r} differs from the URI in client_cert ({cert_uri!r}); "
            "servers reject that — regenerate the certificate with edgekit certs generate --uri"
        )
    if not cert_uri:
        raise SecurityError(f"client_cert {cfg.client_cert!r} has no application URI in subjectAltName")
    client.application_uri = cert_uri
    pinned = choice.server_cert

    async def validator(cert: x509.Certificate, _app: ua.ApplicationDescription) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        if cert.public_bytes(Encoding.DER) != pinned:
            raise SecurityError("server presented a different certificate in CreateSession than its endpoint")

    client.certificate_validator = validator
    try:
        await client.set_security(
            POLICIES[choice.policy],
            certificate=cfg.client_cert,
            private_key=cfg.client_key,
            server_certificate=choice.server_cert,
            mode=_MODES[choice.mode],
        )
    except (OSError, ValueError) as exc:
        raise SecurityError(f"cannot load client certificate/key: {exc}") from exc
    return how
