"""OPC UA test fixtures (defined in opcua_helpers.py): ``pki``, ``opcua_server``."""

from opcua_helpers import opcua_server, pki

__all__ = ["opcua_server", "pki"]
