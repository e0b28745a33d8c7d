"""edgekit's one exception tree, and translation of third-party errors at the library boundary.

    EdgekitError
    ├── ConfigError            invalid configuration (message names the dotted key path)
    ├── ConnectorError         a device or protocol failure
    │   ├── DeviceTimeout      no answer within the request timeout
    │   ├── DeviceRefused      an exception response / bad status from the device
    │   └── SecurityError      certificate, policy or credential problem
    ├── DecodeError            bytes that cannot be turned into values (frames, registers)
    ├── PipelineError          a stage was misused (unfitted, wrong shape/dtype)
    ├── ModelContractError     an ONNX model does not match the running pipeline
    ├── SpoolError             the durable spool cannot do what was asked
    │   └── SpoolFull          quota reached under the ``block`` policy
    └── UplinkError            delivery upstream failed (transport, protocol, auth)

Code below a library boundary raises the third-party error; the boundary calls
:func:`translate` and re-raises ``… from exc`` so the original stays in ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConnectorError",
    "DecodeError",
    "DeviceRefused",
    "DeviceTimeout",
    "EdgekitError",
    "ModelContractError",
    "PipelineError",
    "SecurityError",
    "SpoolError",
    "SpoolFull",
    "UplinkError",
    "translate",
]


class EdgekitError(Exception):
    """Root of every error edgekit raises on purpose."""


class ConfigError(EdgekitError):
    """Invalid configuration. ``path`` is the dotted key path (``devices[2].tags[5].type``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ConnectorError(EdgekitError):
    """A device or protocol failure."""


class DeviceTimeout(ConnectorError):
    """The device did not answer within the request timeout."""


class DeviceRefused(ConnectorError):
    """The device answered with an exception response or a bad status."""


class SecurityError(ConnectorError):
    """Certificate, security policy or credential problem."""


class DecodeError(EdgekitError):
    """Bytes that cannot be decoded into values."""


class PipelineError(EdgekitError):
    """A pipeline stage was misused (not fitted, wrong shape or dtype)."""


class ModelContractError(EdgekitError):
    """An ONNX model does not satisfy edgekit's model contract."""


class SpoolError(EdgekitError):
    """The durable spool cannot do what was asked."""


class SpoolFull(SpoolError):
    """The spool quota is reached and the full policy is ``block``."""


class UplinkError(EdgekitError):
    """Delivery upstream failed."""


def translate(exc: BaseException, context: str = "") -> EdgekitError:
    """Map a third-party exception to the matching edgekit error (not raised here).

    Use as ``raise translate(exc, "reading unit 3") from exc``. Unknown exceptions become a
    plain :class:`EdgekitError` so nothing foreign escapes the library boundary.
    """
    if isinstance(exc, EdgekitError):
        return exc
    prefix = f"{context}: " if context else ""
    mod = type(exc).__module__ or ""
    name = type(exc).__name__
    text = f"{prefix}{name}: {exc}"
    if isinstance(exc, TimeoutError):
        return DeviceTimeout(text)
    if mod.startswith("pymodbus"):
        if "Timeout" in name:
            return DeviceTimeout(text)
        return ConnectorError(text)
    if mod.startswith("asyncua"):
        if "BadUserAccessDenied" in name or "BadIdentity" in name or "BadSecurity" in name:
            return SecurityError(text)
        if name.startswith("Bad"):
            return DeviceRefused(text)
        return ConnectorError(text)
    if mod.startswith("zmq"):
        return UplinkError(text)
    if mod.startswith("onnxruntime") or "onnxruntime" in name.lower():
        return ModelContractError(text)
    if isinstance(exc, (ConnectionError, OSError)):
        return ConnectorError(text)
    return EdgekitError(text)
