"""OPC UA connector (asyncua): subscriptions or polling, security, recovery, discovery, waveforms.

Public API for the runtime::

    from edgekit.connectors.opcua import build
    connector = build(cfg)            # cfg: OpcUaConnectionConfig (the [[opcua]] table)
    await connector.run(sink)         # until cancelled; reconnects on its own
    connector.health()                # state, last_good_read, errors, subscriptions, …

See docs/opcua.md for the configuration and connectors/opcua/*.toml for device profiles.
"""

from __future__ import annotations

from ... import config as _config  # noqa: F401 — import the schema first (it imports .config)
from .config import NodeConfig, NodeRef, OpcUaConnectionConfig, WaveformChannelConfig, WaveformConfig
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


def build(cfg: OpcUaConnectionConfig) -> OpcUaConnector:
    """The connector for one ``[[opcua]]`` section (profile expanded, config already validated)."""
    return OpcUaConnector(cfg)
