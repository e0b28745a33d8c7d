"""One exception tree; third-party errors are translated at the boundary with the cause kept."""

from __future__ import annotations

import pytest
import zmq
from asyncua import ua
from pymodbus.exceptions import ConnectionException, ModbusIOException

import edgekit
from edgekit.errors import (
    ConfigError,
    ConnectorError,
    DeviceRefused,
    DeviceTimeout,
    EdgekitError,
    ModelContractError,
    SecurityError,
    SpoolFull,
    UplinkError,
    translate,
)


def test_every_public_error_derives_from_the_root() -> None:
    for name in edgekit.__all__:
        obj = getattr(edgekit, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, EdgekitError), name
    assert issubclass(SpoolFull, edgekit.SpoolError)


def test_all_is_sorted_and_complete() -> None:
    assert list(edgekit.__all__) == sorted(edgekit.__all__)
    for name in edgekit.__all__:
        assert hasattr(edgekit, name)


def test_config_error_carries_path() -> None:
    err = ConfigError("devices[2].tags[5].byte_order", "'XYZW' is not one of ABCD, BADC, CDAB, DCBA")
    assert err.path == "devices[2].tags[5].byte_order"
    assert str(err).startswith("devices[2].tags[5].byte_order: ")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionException("no route"), ConnectorError),
        (ModbusIOException("timeout waiting"), ConnectorError),
        (ua.UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied), SecurityError),
        (ua.UaStatusCodeError(ua.StatusCodes.BadNodeIdUnknown), DeviceRefused),
        (zmq.ZMQError(zmq.EAGAIN), UplinkError),
        (TimeoutError("late"), DeviceTimeout),
        (ConnectionRefusedError(111, "refused"), ConnectorError),
    ],
)
def test_translate_third_party_errors(exc: BaseException, expected: type) -> None:
    err = translate(exc, "reading m01")
    assert isinstance(err, expected)
    assert str(err).startswith("reading m01: ")
    with pytest.raises(expected) as info:
        try:
            raise exc
        except Exception as e:
            raise translate(e, "reading m01") from e
    assert info.value.__cause__ is exc


def test_onnxruntime_load_error_becomes_model_contract_error(tmp_path: object) -> None:
    import onnxruntime as ort

    try:
        ort.InferenceSession(b"not an onnx model", providers=["CPUExecutionProvider"])
    except Exception as exc:
        assert isinstance(translate(exc), ModelContractError)
    else:  # pragma: no cover
        pytest.fail("onnxruntime accepted garbage")
