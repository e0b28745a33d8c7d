"""OPC UA connector (asyncua): subscriptions or polling, security, recovery, discovery, waveforms.

Public API for the runtime::

    from edgekit.connectors.opcua import build
    connector = build(cfg)            # cfg: OpcUaConnectionConfig (the [[opcua]] table)
    await connector.run(sink)         # until cancelled; reconnects on its own
    connector.health()                # state, last_good_read, errors, subscriptions, …

See docs/opcua.md for the configuration and connectors/opcua/*.toml for device profiles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import config as _config  # noqa: F401 — import the schema first (it imports .config)
from .config import NodeConfig, NodeRef, OpcUaConnectionConfig, WaveformChannelConfig, WaveformConfig

if TYPE_CHECKING:
    from .connector import OpcUaConnector

__all__ = [
    "NodeConfig",
    "NodeRef",
    "OpcUaConnectionConfig",
    "OpcUaConnector",
    "WaveformChannelConfig",
    "WaveformConfig",
    "build",
]


def __getattr__(name: str) -> Any:
    # asyncua costs ~1 s to import: only load the client when it is used, not with the config types
    if name == "OpcUaConnector":
        from .connector import OpcUaConnector

        return OpcUaConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(cfg: OpcUaConnectionConfig) -> OpcUaConnector:
    """The connector for one ``[[opcua]]`` section (profile expanded, config already validated)."""
    from .connector import OpcUaConnector

    return OpcUaConnector(cfg)
