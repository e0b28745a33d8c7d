"""The simulator's OPC UA server: ``Objects/Plant/MachineNN/…`` with string node ids ``ns=2;s=MachineNN.…``.

Namespace ``urn:edgekit:sim`` is registered first (index 2). Process variables come from
:data:`edgekit.sim.layout.OPCUA_TAGS`; each machine also has ``Vibration/Ch0…ChN`` (Float arrays, g),
``Vibration/SampleRateHz``, ``Vibration/SpeedHz`` and ``Vibration/BlockSeq`` — written after the
channel arrays, so a client that sees a new BlockSeq can read arrays of that block or a newer one.

Security (optional, :class:`~edgekit.sim.config.SecurityOptions`): a self-signed server key and
certificate are generated into ``cert_dir`` (``server_key.pem``, ``server_cert.der`` and
``server_cert.pem``; reused when present and still valid), the listed policies × modes are offered,
plus the None endpoint when ``allow_none``; user names/passwords from the options are checked on
every endpoint, anonymous sessions only when ``allow_anonymous``.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import EdgekitError
from .config import SecurityOptions
from .layout import NAMESPACE_URI, OPCUA_TAGS, OpcUaTag, opcua_folder

__all__ = ["SimOpcUaServer", "ensure_server_certificate"]

_POLICY = {
    ("Basic256Sha256", "Sign"): ua.SecurityPolicyType.Basic256Sha256_Sign,
    ("Basic256Sha256", "SignAndEncrypt"): ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ("Aes128_Sha256_RsaOaep", "Sign"): ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"): ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ("Aes256_Sha256_RsaPss", "Sign"): ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ("Aes256_Sha256_RsaPss", "SignAndEncrypt"): ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
}

_log = logging.getLogger(__name__)


class _PasswordUsers(UserManager):
    def __init__(self, users: dict[str, str], allow_anonymous: bool) -> None:
        self._users = users
        self._anonymous = allow_anonymous

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self._anonymous else None
        if username in self._users and password == self._users[username]:
            return User(role=UserRole.User, name=username)
        return None


def ensure_server_certificate(cert_dir: Path, application_uri: str) -> tuple[Path, Path]:
    """Create (or reuse) ``server_key.pem`` and ``server_cert.der`` in ``cert_dir``; returns their paths.

    The certificate is self-signed, valid 365 days, with subjectAltName URI = ``application_uri``,
    DNS ``localhost`` and IP 127.0.0.1. A PEM copy (``server_cert.pem``) is written for clients to pin.
    """
    cert_dir.mkdir(parents=True, exist_ok=True)
    key_path, der_path, pem_path = cert_dir / "server_key.pem", cert_dir / "server_cert.der", cert_dir / "server_cert.pem"
    if key_path.is_file() and der_path.is_file():
        cert = x509.load_der_x509_certificate(der_path.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            uris = []
        fresh = cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
        if application_uri in uris and fresh:
            return key_path, der_path
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, "edgekit simulator", {"organizationName": "edgekit"},
        [x509.UniformResourceIdentifier(application_uri), x509.DNSName("localhost"),
         x509.DNSName(socket.gethostname()), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=365,
    )
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    key_path.chmod(0o600)
    der_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    pem_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, der_path


def _variant_value(tag: OpcUaTag, value: Any) -> Any:
    if tag.variant in ("Int16", "UInt32", "Int64"):
        return int(round(value))
    if tag.variant in ("Float", "Double"):
        return float(value)
    if tag.variant == "Boolean":
        return bool(value)
    return str(value)


class SimOpcUaServer:
    """asyncua server with one folder per machine; values are pushed with :meth:`publish_*`."""

    def __init__(self, host: str, port: int, path: str, machines: Sequence[tuple[int, int, int]],
                 security: SecurityOptions | None = None) -> None:
        """``machines``: ``(index, channels, block_len)`` per machine."""
        self.host, self.port, self.path = host, port, path
        self._machines = list(machines)
        self._security = security or SecurityOptions()
        self.cert_path: Path | None = None
        self._server: Server | None = None
        self._nodes: dict[tuple[int, str], ua.NodeId] = {}
        self.ns = 2

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.path}"

    def nodeid(self, index: int, path: str) -> ua.NodeId:
        """``nodeid(1, "Vibration.Ch0")`` → ``ns=2;s=Machine01.Vibration.Ch0`` (cached: published every block)."""
        key = (index, path)
        nid = self._nodes.get(key)
        if nid is None:
            nid = self._nodes[key] = _nid(f"{opcua_folder(index)}.{path}", self.ns)
        return nid

    async def start(self) -> None:
        if self.port == 0:  # asyncua advertises the configured URL, so pick the port before binding
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = int(probe.getsockname()[1])
        sec = self._security
        users = {name: secret.value() for name, secret in sec.users.items()}
        server = Server(user_manager=_PasswordUsers(users, sec.allow_anonymous))
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("edgekit plant simulator")
        policies: list[ua.SecurityPolicyType] = []
        if sec.enabled:
            key_path, der_path = ensure_server_certificate(Path(sec.cert_dir), sec.application_uri)
            await server.set_application_uri(sec.application_uri)
            await server.load_certificate(str(der_path))
            await server.load_private_key(str(key_path))
            self.cert_path = der_path
            policies = [_POLICY[(p, m)] for p in sec.policies for m in sec.modes]
        if sec.allow_none or not sec.enabled:
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(policies)
        tokens: list[type] = [ua.UserNameIdentityToken] if users else []
        if sec.allow_anonymous:
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        self.ns = await server.register_namespace(NAMESPACE_URI)
        if self.ns != 2:
            raise EdgekitError(f"namespace {NAMESPACE_URI} got index {self.ns}, the layout promises 2")
        plant = await server.nodes.objects.add_folder(_nid("Plant", self.ns), f"{self.ns}:Plant")
        for index, channels, block_len in self._machines:
            folder = opcua_folder(index)
            mnode = await plant.add_object(_nid(folder, self.ns), f"{self.ns}:{folder}")
            for tag in OPCUA_TAGS:
                initial = _variant_value(tag, "" if tag.variant == "String" else 0)
                var = await mnode.add_variable(self.nodeid(index, tag.name), f"{self.ns}:{tag.name}",
                                               ua.Variant(initial, getattr(ua.VariantType, tag.variant)))
                if tag.writable:
                    await var.set_writable()
                if tag.unit:
                    await var.add_property(_nid(f"{folder}.{tag.name}.EngineeringUnits", self.ns),
                                           "EngineeringUnits", _eu(tag.unit))
            vib = await mnode.add_object(self.nodeid(index, "Vibration"), f"{self.ns}:Vibration")
            for c in range(channels):
                var = await vib.add_variable(self.nodeid(index, f"Vibration.Ch{c}"), f"{self.ns}:Ch{c}",
                                             ua.Variant([0.0] * block_len, ua.VariantType.Float))
                await var.add_property(_nid(f"{folder}.Vibration.Ch{c}.EngineeringUnits", self.ns),
                                       "EngineeringUnits", _eu("g"))
            for name, vtype, init, unit in (("SampleRateHz", ua.VariantType.Double, 0.0, "Hz"),
                                            ("SpeedHz", ua.VariantType.Double, 0.0, "Hz"),
                                            ("BlockSeq", ua.VariantType.UInt32, 0, "")):
                var = await vib.add_variable(self.nodeid(index, f"Vibration.{name}"), f"{self.ns}:{name}",
                                             ua.Variant(init, vtype))
                if unit:
                    await var.add_property(_nid(f"{folder}.Vibration.{name}.EngineeringUnits", self.ns),
                                           "EngineeringUnits", _eu(unit))
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _write(self, nodeid: ua.NodeId, value: Any, vtype: ua.VariantType,
                     ts: datetime.datetime) -> None:
        assert self._server is not None
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=ts, ServerTimestamp=ts)  # type: ignore[arg-type]
        await self._server.write_attribute_value(nodeid, dv)

    async def publish_process(self, index: int, values: dict[str, Any], ts: datetime.datetime) -> None:
        for tag in OPCUA_TAGS:
            if tag.writable:
                continue  # the plant writes the setpoint only when it changes
            await self._write(self.nodeid(index, tag.name), _variant_value(tag, values[tag.field]),
                              getattr(ua.VariantType, tag.variant), ts)

    async def publish_block(self, index: int, block: npt.NDArray[np.float32], seq: int, fs: float,
                            speed_hz: float, ts: datetime.datetime) -> None:
        for c in range(block.shape[0]):
            await self._write(self.nodeid(index, f"Vibration.Ch{c}"), block[c].tolist(), ua.VariantType.Float, ts)
        await self._write(self.nodeid(index, "Vibration.SampleRateHz"), float(fs), ua.VariantType.Double, ts)
        await self._write(self.nodeid(index, "Vibration.SpeedHz"), float(speed_hz), ua.VariantType.Double, ts)
        await self._write(self.nodeid(index, "Vibration.BlockSeq"), seq & 0xFFFFFFFF, ua.VariantType.UInt32, ts)

    def read_setpoint(self, index: int) -> float:
        assert self._server is not None
        dv = self._server.read_attribute_value(self.nodeid(index, "Setpoint"))
        return float(dv.Value.Value) if dv.Value is not None and dv.Value.Value is not None else 0.0

    async def write_setpoint(self, index: int, rpm: float, ts: datetime.datetime) -> None:
        await self._write(self.nodeid(index, "Setpoint"), float(rpm), ua.VariantType.Double, ts)


def _nid(identifier: str, ns: int) -> ua.NodeId:
    return ua.NodeId(identifier, ns)  # type: ignore[arg-type]  # asyncua's NewType hints


def _eu(unit: str) -> ua.EUInformation:
    eu = ua.EUInformation()
    eu.NamespaceUri = "http://www.opcfoundation.org/UA/units/un/cefact"
    eu.DisplayName = ua.LocalizedText(unit)
    eu.Description = ua.LocalizedText(unit)
    return eu
