"""edgekit.uplink: acknowledged, CURVE-secured ZeroMQ delivery of spool records to collectors.

Public API: :class:`UplinkClient` (the runtime's Uplink), :class:`UplinkConfig`, the wire protocol
in :mod:`edgekit.uplink.frames`, keys and checks in :mod:`edgekit.uplink.security`.
"""

# edgekit.config imports every section type (this package's config too): load it first, or importing
# edgekit.uplink before edgekit.config would enter that cycle from the wrong end.
from .. import config as _config  # noqa: F401  (import order, see above)
from .client import UplinkClient
from .config import UplinkConfig
from .deadletter import DeadLetters

__all__ = ["DeadLetters", "UplinkClient", "UplinkConfig"]
