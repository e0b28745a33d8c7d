"""Configuration of one uplink (``[[uplinks]]``): where to deliver, with which keys, what, how fast.

An uplink is one destination upstream (the equipment data centre, the cloud platform): an ordered
list of collector endpoints (the first reachable one is used, the next on failure), the collector's
public key that the gateway pins, the gateway's own CURVE key pair, the record kinds it receives and
the flow-control limits of the wire protocol (see :mod:`edgekit.uplink.frames`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config.parse import ByteSize, Duration, Secret, opt
from ..errors import ConfigError

__all__ = ["ALL_KINDS", "UplinkConfig"]

ALL_KINDS = ("points", "waveform", "features", "event", "gap")
Kind = Literal["points", "waveform", "features", "event", "gap"]


@dataclass(frozen=True)
class UplinkConfig:
    name: str = opt(doc="Uplink name, unique in the gateway")
    endpoints: list[str] = opt(
        doc="Collector endpoints in order of preference (tcp://host:port, ipc://path); the next one "
        "is tried when the current one fails", factory=list,
    )
    server_public_key: str = opt("", "File holding the collector's CURVE public key (pinned); "
                                     "required for tcp:// unless insecure")
    secret_key: Secret | None = opt(None, "This gateway's CURVE secret key: { file = \"gw.key_secret\" } "
                                          "as written by `edgekit keys generate`, or the Z85 text")
    public_key: str = opt("", "File with this gateway's public key (optional; checked against the secret)")
    insecure: bool = opt(False, "Allow plain NULL (unauthenticated, unencrypted) on tcp://; warns at every start")
    routes: list[Kind] = opt(doc="Record kinds sent to this uplink (gap records always follow their stream)",
                             factory=lambda: list(ALL_KINDS))
    credit: int = opt(256, "Most records in flight (sent, not yet acknowledged); the collector may grant fewer")
    window_bytes: ByteSize = opt(8 << 20, "Most bytes in flight")
    batch_records: int = opt(64, "Most records per DATA message")
    ack_timeout: Duration = opt(10.0, "No ACK for this long while records are in flight: reconnect and resend")
    hello_timeout: Duration = opt(5.0, "Wait this long for WELCOME before trying the next endpoint")
    heartbeat: Duration = opt(2.0, "ZMQ and application heartbeat interval (0 = off)")
    heartbeat_timeout: Duration = opt(6.0, "Peer silent this long: connection considered dead")
    max_message_bytes: ByteSize = opt(16 << 20, "Largest message sent or accepted")
    compression: Literal["none", "zstd", "auto"] = opt(
        "auto", "zstd (with byte-shuffle of float arrays) on every blob, never, or only where it pays"
    )
    reconnect_initial: Duration = opt(0.2, "First delay before reconnecting")
    reconnect_max: Duration = opt(10.0, "Cap of the exponential reconnect backoff (with jitter)")

    def kinds(self) -> frozenset[str]:
        """The record kinds routed to this uplink (gap records included)."""
        return frozenset(self.routes) | {"gap"}

    def _validate(self) -> None:
        if not self.name:
            raise ConfigError("name", "must not be empty")
        if not self.endpoints:
            raise ConfigError("endpoints", "at least one collector endpoint is required")
        for i, ep in enumerate(self.endpoints):
            if not ep.startswith(("tcp://", "ipc://", "inproc://")):
                raise ConfigError(f"endpoints[{i}]", f"{ep!r} must start with tcp://, ipc:// or inproc://")
        needs_curve = any(ep.startswith("tcp://") for ep in self.endpoints) and not self.insecure
        if needs_curve:
            if not self.server_public_key:
                raise ConfigError("server_public_key", "required for tcp:// endpoints (or set insecure = true)")
            if self.secret_key is None:
                raise ConfigError("secret_key", "required for tcp:// endpoints (or set insecure = true)")
        if self.credit < 1:
            raise ConfigError("credit", f"{self.credit!r} must be >= 1")
        if not 1 <= self.batch_records <= 1024:
            raise ConfigError("batch_records", f"{self.batch_records!r} must be in 1..1024")
        if self.max_message_bytes < 4096:
            raise ConfigError("max_message_bytes", f"{self.max_message_bytes!r} must be >= 4096")
        if self.ack_timeout <= 0:
            raise ConfigError("ack_timeout", "must be > 0")
        if self.heartbeat and self.heartbeat_timeout <= self.heartbeat:
            raise ConfigError("heartbeat_timeout", "must be longer than heartbeat")
        if self.reconnect_initial <= 0 or self.reconnect_max < self.reconnect_initial:
            raise ConfigError("reconnect_max", "need 0 < reconnect_initial <= reconnect_max")
