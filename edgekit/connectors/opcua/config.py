"""OPC UA connector configuration: one ``[[opcua]]`` table per server connection.

Nodes are named by node id (``ns=2;s=Machine01.SpeedRpm`` or ``nsu=urn:edgekit:sim;s=…``) and/or
by browse path below the Objects folder (``Plant/Machine01/SpeedRpm``; an element may carry a
namespace index prefix ``2:Plant``, otherwise ``namespace`` (a URI) applies). A connection may also
name a device profile (``profile = "edgekit-sim"``) whose ``{machine}`` templates are expanded once
per entry of ``machines`` (see :mod:`.profile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config.parse import Duration, Secret, opt
from ...errors import ConfigError

__all__ = [
    "NodeConfig",
    "NodeRef",
    "OpcUaConnectionConfig",
    "SecurityMode",
    "SecurityPolicyName",
    "WaveformChannelConfig",
    "WaveformConfig",
]

SecurityPolicyName = Literal["auto", "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityMode = Literal["Sign", "SignAndEncrypt"]
Resolve = Literal["auto", "node_id", "browse_path"]


def _check_ref(node_id: str, browse_path: str, resolve: str, where: str = "") -> None:
    pre = f"{where}." if where else ""
    if not node_id and not browse_path:
        raise ConfigError(f"{pre}node_id", "give node_id or browse_path (or both)")
    if resolve == "browse_path" and not browse_path:
        raise ConfigError(f"{pre}resolve", "resolve = \"browse_path\" needs browse_path")
    if resolve == "node_id" and not node_id:
        raise ConfigError(f"{pre}resolve", "resolve = \"node_id\" needs node_id")
    if node_id and not (node_id.startswith(("ns=", "nsu=", "i=", "s=", "g=", "b="))):
        raise ConfigError(f"{pre}node_id", f"{node_id!r} is not a node id (like \"ns=2;s=Machine01.SpeedRpm\")")


@dataclass(frozen=True)
class NodeRef:
    """A node named by id and/or browse path (used for waveform sequence, rate and speed nodes)."""

    node_id: str = opt("", "Node id, e.g. \"ns=2;s=Machine01.Vibration.BlockSeq\"")
    browse_path: str = opt("", "Browse path below Objects, e.g. \"Plant/Machine01/Vibration/BlockSeq\"")
    resolve: Resolve = opt("auto", "auto: node id if given else browse path; browse_path: re-resolve each connect")
    namespace: str = opt("", "Namespace URI for browse-path elements without an index prefix (default: connection's)")

    def _validate(self) -> None:
        _check_ref(self.node_id, self.browse_path, self.resolve)


@dataclass(frozen=True)
class NodeConfig:
    """One scalar tag."""

    tag: str = opt(doc="Tag name in PointBatches")
    node_id: str = opt("", "Node id, e.g. \"ns=2;s=Machine01.SpeedRpm\"")
    browse_path: str = opt("", "Browse path below Objects, e.g. \"Plant/Machine01/SpeedRpm\"")
    resolve: Resolve = opt("auto", "auto: node id if given else browse path; browse_path: re-resolve each connect")
    namespace: str = opt("", "Namespace URI for browse-path elements without an index prefix (default: connection's)")
    device: str = opt("", "PointBatch.device for this tag (default: the connection name)")
    mode: Literal["inherit", "subscribe", "poll"] = opt("inherit", "Subscribe or poll this node (inherit: connection mode)")
    sampling_interval: Duration | None = opt(None, "Server sampling interval (default: the publishing interval)")
    queue_size: int = opt(1, "Server-side queue of the monitored item")
    discard_oldest: bool = opt(True, "When the server queue overflows, drop the oldest value (else the newest)")
    deadband_type: Literal["none", "absolute", "percent"] = opt("none", "Data-change filter deadband")
    deadband: float = opt(0.0, "Deadband value (engineering units, or percent of EURange)")
    trigger: Literal["status", "status_value", "status_value_timestamp"] = opt(
        "status_value", "What counts as a data change"
    )
    writable: bool = opt(False, "Allow writes to this node through Connector.write()")
    data_type: str = opt("", "Informational: OPC UA data type (written by `edgekit browse`)")
    unit: str = opt("", "Informational: engineering unit (written by `edgekit browse`)")

    def _validate(self) -> None:
        if not self.tag:
            raise ConfigError("tag", "must not be empty")
        _check_ref(self.node_id, self.browse_path, self.resolve)
        if self.queue_size < 0:
            raise ConfigError("queue_size", f"{self.queue_size!r} must be >= 0")
        if self.deadband < 0:
            raise ConfigError("deadband", f"{self.deadband!r} must be >= 0")
        if self.deadband_type == "percent" and self.deadband > 100:
            raise ConfigError("deadband", f"{self.deadband!r} percent must be <= 100")


@dataclass(frozen=True)
class WaveformChannelConfig:
    id: str = opt(doc="Channel id in the WaveformBlock, e.g. \"ch0\"")
    node_id: str = opt("", "Node id of the Float/Double array node")
    browse_path: str = opt("", "Browse path of the array node")
    resolve: Resolve = opt("auto", "auto | node_id | browse_path")
    namespace: str = opt("", "Namespace URI for unprefixed browse-path elements")
    unit: Literal["g", "m/s2", "mm/s"] = opt("g", "Engineering unit of the samples")

    def _validate(self) -> None:
        if not self.id:
            raise ConfigError("id", "must not be empty")
        _check_ref(self.node_id, self.browse_path, self.resolve)


@dataclass(frozen=True)
class WaveformConfig:
    """Several array nodes of one asset read together as one WaveformBlock."""

    asset: str = opt(doc="Asset name of the blocks")
    channels: list[WaveformChannelConfig] = opt(doc="Array nodes, one per channel", factory=list)
    seq: NodeRef | None = opt(None, "Block counter node (written after the arrays); drives reads and gap detection")
    fs_node: NodeRef | None = opt(None, "Node holding the sample rate in Hz")
    fs: float = opt(0.0, "Sample rate in Hz when there is no fs_node")
    speed_node: NodeRef | None = opt(None, "Node holding the shaft speed in Hz for the block")
    poll_interval: Duration = opt(0.1, "How often the sequence node is polled in poll mode")

    def _validate(self) -> None:
        if not self.asset:
            raise ConfigError("asset", "must not be empty")
        if not self.channels:
            raise ConfigError("channels", "a waveform needs at least one channel")
        if self.fs_node is None and self.fs <= 0:
            raise ConfigError("fs", "give fs (> 0 Hz) or fs_node")
        ids = [c.id for c in self.channels]
        if len(set(ids)) != len(ids):
            raise ConfigError("channels", f"channel ids must be unique, got {ids}")


@dataclass(frozen=True)
class OpcUaConnectionConfig:
    name: str = opt(doc="Connection name, unique in the gateway")
    endpoint: str = opt("", "Server endpoint URL, e.g. \"opc.tcp://127.0.0.1:4840/edgekit/sim\"")
    security_policy: SecurityPolicyName = opt("auto", "auto = the strongest policy the server offers")
    security_mode: SecurityMode = opt("SignAndEncrypt", "Message security mode for secure policies")
    client_cert: str = opt("", "Client certificate (DER or PEM), made by `edgekit certs generate`")
    client_key: str = opt("", "Client private key (PEM)")
    application_uri: str = opt("", "Client application URI (default: the URI in the certificate's subjectAltName)")
    trust_dir: str = opt("", "Folder of trusted server certificates (.der/.pem); unknown servers are rejected")
    trust_on_first_use: bool = opt(False, "Record an unknown server certificate into trust_dir instead of rejecting it")
    allow_insecure: bool = opt(False, "Required for security_policy = \"None\" (and for auto picking None)")
    username: str = opt("", "User name (only over an encrypted channel)")
    password: Secret | None = opt(None, "Password: { env = \"NAME\" }, { file = \"/path\" } or a string")
    session_timeout: Duration = opt(60.0, "Requested session timeout")
    keepalive: Duration = opt(2.0, "Session probe interval and subscription keep-alive period")
    request_timeout: Duration = opt(5.0, "Timeout of every service request")
    reconnect_min: Duration = opt(0.5, "First reconnect delay")
    reconnect_max: Duration = opt(30.0, "Cap of the exponential reconnect delay (jitter is added)")
    mode: Literal["subscribe", "poll"] = opt("subscribe", "Default for nodes: subscription or polling reads")
    publishing_interval: Duration = opt(0.25, "Subscription publishing interval")
    poll_interval: Duration = opt(1.0, "Interval of polling reads")
    poll_group_size: int = opt(500, "Nodes per Read request when polling")
    create_batch: int = opt(500, "Monitored items per CreateMonitoredItems request")
    timestamps: Literal["source", "server", "gateway"] = opt(
        "source", "Which time becomes Point.source_ts (falls back to server, then gateway time)"
    )
    namespace: str = opt("", "Default namespace URI for unprefixed browse-path elements")
    writable: bool = opt(False, "Allow writes and method calls through the API at all")
    profile: str = opt("", "Device profile name (connectors/opcua/<name>.toml) or path to a .toml file")
    machines: list[str] = opt(doc="Values of {machine} in the profile, e.g. [\"Machine01\", \"Machine02\"]", factory=list)
    nodes: list[NodeConfig] = opt(doc="Scalar tags", factory=list)
    waveforms: list[WaveformConfig] = opt(doc="Waveform groups of array nodes", factory=list)

    def _validate(self) -> None:
        if not self.name:
            raise ConfigError("name", "must not be empty")
        if not self.endpoint.startswith("opc.tcp://"):
            raise ConfigError("endpoint", f"{self.endpoint!r} must be an opc.tcp:// URL")
        if self.security_policy == "None" and not self.allow_insecure:
            raise ConfigError("security_policy", "\"None\" sends everything in clear text; set allow_insecure = true")
        secure = self.security_policy not in ("None",)
        if self.security_policy != "None" and bool(self.client_cert) != bool(self.client_key):
            raise ConfigError("client_key", "client_cert and client_key go together")
        if self.security_policy not in ("None", "auto") and not self.client_cert:
            raise ConfigError("client_cert", f"security_policy {self.security_policy!r} needs client_cert and client_key")
        if self.security_policy not in ("None", "auto") and not self.trust_dir:
            raise ConfigError("trust_dir", "a secure policy needs trust_dir to validate the server certificate")
        if (self.username or self.password is not None) and (
            not secure or self.security_mode != "SignAndEncrypt"
        ):
            raise ConfigError(
                "password",
                "username/password are only sent over an encrypted channel "
                "(security_policy other than None, security_mode = \"SignAndEncrypt\")",
            )
        if bool(self.username) != (self.password is not None):
            raise ConfigError("username", "username and password go together")
        for key in ("keepalive", "request_timeout", "publishing_interval", "poll_interval", "reconnect_min"):
            if getattr(self, key) <= 0:
                raise ConfigError(key, "must be > 0")
        if self.reconnect_max < self.reconnect_min:
            raise ConfigError("reconnect_max", "must be >= reconnect_min")
        if self.create_batch < 1 or self.poll_group_size < 1:
            raise ConfigError("create_batch", "batch sizes must be >= 1")
        if self.machines and not self.profile:
            raise ConfigError("machines", "machines only make sense with a profile")
        if self.profile:
            from .profile import load_profile  # local: profile imports this module

            load_profile(self.profile, self.machines, "profile")
        elif not self.nodes and not self.waveforms:
            raise ConfigError("nodes", "no nodes, waveforms or profile: nothing to read")
        tags = [(n.device or self.name, n.tag) for n in self.nodes]
        if len(set(tags)) != len(tags):
            raise ConfigError("nodes", "each (device, tag) may appear only once")
