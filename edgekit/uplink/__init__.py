"""edgekit.uplink: acknowledged, CURVE-secured ZeroMQ delivery of spool records to collectors.

Public API: :class:`UplinkClient` (the runtime's Uplink), :class:`UplinkConfig`, the wire protocol
in :mod:`edgekit.uplink.frames`, keys and checks in :mod:`edgekit.uplink.security`.
"""

from .client import UplinkClient
from .config import UplinkConfig
from .deadletter import DeadLetters

__all__ = ["DeadLetters", "UplinkClient", "UplinkConfig"]
