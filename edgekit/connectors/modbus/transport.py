"""One Modbus link (TCP socket, serial bus, RTU over TCP) on a pymodbus async client, and the strict
check of every response.

pymodbus's own retries and auto-reconnect are switched off (``retries=0``, ``reconnect_delay=0``):
the poller owns both, so timeouts, backoff and down/up reporting follow edgekit's rules. Every
request goes through :meth:`ModbusLink.execute`: one request at a time per connection (pymodbus'
transaction lock; on RTU also the bus lock, which keeps the inter-frame silence inside it), retries
of timed-out requests, and every outcome turned into registers/bits or an edgekit error:

* no answer within ``timeout`` (after ``retries``) → :class:`~edgekit.errors.DeviceTimeout`;
* exception response → :class:`ModbusExceptionResponse` (a ``DeviceRefused`` with ``code``);
* wrong function code, wrong length, garbage → :class:`~edgekit.errors.DecodeError`;
* link down or lost → :class:`~edgekit.errors.ConnectorError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import numpy.typing as npt
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from ...errors import ConnectorError, DecodeError, DeviceRefused, DeviceTimeout
from .config import ModbusConnectionConfig
from .decode import to_registers

__all__ = ["EXCEPTION_NAMES", "POLL_ERRORS", "READ_FC", "PollCall", "ModbusExceptionResponse", "ModbusLink", "check_payload", "check_response",
           "to_array"]

EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
    5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
READ_FC = {"coil": 1, "discrete_input": 2, "holding_register": 3, "input_register": 4}
_BIT_FC = (1, 2)
_READ_METHOD = {1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers", 4: "read_input_registers"}
# what a poll-path read may raise that :meth:`ModbusLink.recover` turns into an edgekit error
# (AttributeError: a response object without a function code — never from pymodbus' decoder)
POLL_ERRORS = (TimeoutError, OSError, ModbusException, ConnectorError, DecodeError, AttributeError)
PollCall = tuple[Callable[..., Any], Any, int]
_READ_REQUEST = {1: ReadCoilsRequest, 2: ReadDiscreteInputsRequest, 3: ReadHoldingRegistersRequest,
                 4: ReadInputRegistersRequest}


class ModbusExceptionResponse(DeviceRefused):
    """The device answered with a Modbus exception; ``code`` is the exception code (2 = illegal address)."""

    def __init__(self, code: int, function_code: int) -> None:
        self.code = code
        self.function_code = function_code
        super().__init__(f"exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')}) to FC{function_code}")


def check_payload(fc: int, count: int, pdu: Any) -> list[Any]:
    """Validate the structure of a read response for function ``fc`` of ``count`` items and return
    its list (``registers``, or ``bits`` — up to 7 padding bits past ``count``) unconverted; the
    values themselves are checked where they are decoded (:func:`to_array`, ``FastDecoder``)."""
    got_fc = getattr(pdu, "function_code", None)
    if got_fc == fc and type(got_fc) is int:  # the common case, checked in the same order as below
        if fc < 3:  # bits
            bits = getattr(pdu, "bits", None)
            if type(bits) is list and count <= len(bits) <= count + 7:
                return bits
        else:
            regs = getattr(pdu, "registers", None)
            if type(regs) is list and len(regs) == count:
                return regs
    if pdu is None:
        raise DecodeError(f"FC{fc}: no response object")
    if not isinstance(got_fc, int):
        raise DecodeError(f"FC{fc}: response without a function code ({type(pdu).__name__})")
    if got_fc & 0x80:
        code = getattr(pdu, "exception_code", 0)
        if (got_fc & 0x7F) != fc:
            raise DecodeError(f"FC{fc}: exception response for FC{got_fc & 0x7F}")
        raise ModbusExceptionResponse(int(code) if isinstance(code, int) else 0, fc)
    if got_fc != fc:
        raise DecodeError(f"FC{fc}: response carries FC{got_fc}")
    if fc in _BIT_FC:
        bits = getattr(pdu, "bits", None)
        if not isinstance(bits, list) or len(bits) < count or len(bits) > count + 7:
            n = len(bits) if isinstance(bits, list) else type(bits).__name__
            raise DecodeError(f"FC{fc}: {n} bits for a request of {count}")
        return bits
    regs = getattr(pdu, "registers", None)
    if not isinstance(regs, list) or len(regs) != count:
        n = len(regs) if isinstance(regs, list) else type(regs).__name__
        raise DecodeError(f"FC{fc}: {n} registers for a request of {count}")
    return regs


def to_array(fc: int, count: int, payload: list[Any]) -> npt.NDArray[np.generic]:
    """The checked payload as uint16 registers or uint8 bits (length ``count``); raises DecodeError."""
    if fc in _BIT_FC:
        try:
            return np.asarray(payload[:count], dtype=np.bool_).astype(np.uint8)
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"FC{fc}: bits are not booleans: {exc}") from exc
    return to_registers(payload)


def check_response(fc: int, count: int, pdu: Any) -> npt.NDArray[np.generic]:
    """Validate a read response for function ``fc`` of ``count`` items; return uint16 registers or
    uint8 bits (length ``count``). Never returns anything unchecked."""
    return to_array(fc, count, check_payload(fc, count, pdu))


class ModbusLink:
    """A pymodbus client plus the bus lock; ``repr`` shows where it points and its state."""

    def __init__(self, cfg: ModbusConnectionConfig) -> None:
        self.cfg = cfg
        self.lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        if cfg.transport == "rtu":
            self.inter_frame_s = cfg.inter_frame_delay or max(3.5 * 11 / cfg.baudrate, 0.00175)
        else:
            self.inter_frame_s = cfg.inter_frame_delay
        self.requests = 0
        self.timeouts = 0
        self.last_error = ""
        self.connected_since: float | None = None
        self._bound: dict[tuple[tuple[tuple[int, int, int], ...], int], tuple[PollCall, ...]] = {}
        self._bound_client: object = None
        self.epoch = 0  # changes whenever the client does: what :meth:`bound` gave under an older epoch is stale

    def __repr__(self) -> str:
        where = self.cfg.serial_port if self.cfg.transport == "rtu" else f"{self.cfg.host}:{self.cfg.port}"
        return f"ModbusLink({self.cfg.transport} {where}, {'connected' if self.connected else 'disconnected'})"

    @property
    def where(self) -> str:
        c = self.cfg
        return c.serial_port if c.transport == "rtu" else f"{c.host}:{c.port}"

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.cfg
        if c.transport == "rtu":
            return AsyncModbusSerialClient(
                c.serial_port, framer=FramerType.RTU, baudrate=c.baudrate, bytesize=c.bytesize,
                parity=c.parity, stopbits=c.stopbits, timeout=c.timeout, retries=0, reconnect_delay=0,
                name=f"edgekit-{c.name}",
            )
        framer = FramerType.SOCKET if c.transport == "tcp" else FramerType.RTU
        return AsyncModbusTcpClient(c.host, port=c.port, framer=framer, timeout=c.timeout, retries=0,
                                    reconnect_delay=0, name=f"edgekit-{c.name}")

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """Open a fresh client; raises ConnectorError when the device cannot be reached."""
        self.close()
        client = self._make_client()
        client.set_max_no_responses(1 << 30)  # we decide when a silent link is dead, not pymodbus
        self._client = client
        self.epoch += 1
        try:
            async with asyncio.timeout(self.cfg.timeout + 1.0):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException) as exc:
            self.close()
            raise ConnectorError(f"connect to {self.where}: {type(exc).__name__}: {exc}") from exc
        if not ok:
            self.close()
            raise ConnectorError(f"connect to {self.where} failed")
        self.connected_since = time.time()

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            self.epoch += 1
            client.close()
        self.connected_since = None

    async def execute(self, method: str, *args: Any, unit: int, **kwargs: Any) -> Any:
        """Call ``client.<method>`` with retries; return the response PDU.

        pymodbus itself runs one transaction at a time per client; the bus lock is taken in addition
        only where silence must be kept between frames (RTU), so that the pause belongs to the bus."""
        if self.inter_frame_s:
            async with self.lock:
                return await self._attempts(method, args, unit, kwargs, 0, 0)
        return await self._attempts(method, args, unit, kwargs, 0, 0)

    async def _locked_read(self, fc: int, start: int, count: int, unit: int) -> list[Any]:
        async with self.lock:
            return await self._attempts(_READ_METHOD[fc], (start,), unit, {"count": count}, fc, count)  # type: ignore[no-any-return]

    async def _read_attempts(self, fc: int, start: int, count: int, unit: int) -> list[Any]:
        """The poll path's read: the first attempt inline (no argument tuple or dict, no extra frame),
        any retry through :meth:`_attempts`; the response's list after :func:`check_payload`."""
        client = self._client
        if client is None or not client.connected:
            raise ConnectorError(f"not connected to {self.where}")
        self.requests += 1
        try:
            # pymodbus applies ``timeout`` to every attempt itself; a lower layer that hangs
            # beyond that is the poll loop watchdog's business (no second timer per request)
            pdu = await getattr(client, _READ_METHOD[fc])(start, count=count, device_id=unit)
        except (TimeoutError, ModbusIOException) as exc:
            self.timeouts += 1
            if self.cfg.retries == 0:
                raise self._no_answer(unit, 1) from exc
            return await self._attempts(_READ_METHOD[fc], (start,), unit, {"count": count}, fc, count, 1)  # type: ignore[no-any-return]
        except ConnectionException as exc:
            raise ConnectorError(f"{self.where}: connection lost: {exc}") from exc
        except (OSError, ModbusException) as exc:
            raise ConnectorError(f"{self.where} unit {unit}: {type(exc).__name__}: {exc}") from exc
        return check_payload(fc, count, pdu)

    def _no_answer(self, unit: int, attempts: int) -> DeviceTimeout:
        return DeviceTimeout(f"{self.where} unit {unit}: no answer within {self.cfg.timeout:g}s "
                             f"({attempts} attempt{'s' if attempts > 1 else ''})")

    async def _attempts(self, method: str, args: tuple[Any, ...], unit: int, kwargs: dict[str, Any],
                        fc: int, count: int, done: int = 0) -> Any:
        """The attempts of one request (``done`` of them already made); with ``fc`` (a read's
        function code) the response goes through :func:`check_payload` and its list is returned,
        else the PDU itself."""
        attempts = self.cfg.retries + 1
        for attempt in range(done, attempts):
            client = self._client
            if client is None or not client.connected:
                raise ConnectorError(f"not connected to {self.where}")
            self.requests += 1
            try:
                pdu = await getattr(client, method)(*args, device_id=unit, **kwargs)
            except (TimeoutError, ModbusIOException) as exc:
                # pymodbus raises ModbusIOException for "no response" and for a stale answer
                # (transaction/device id mismatch after an earlier timeout): both are retried
                self.timeouts += 1
                if attempt + 1 == attempts:
                    raise self._no_answer(unit, attempts) from exc
                continue
            except ConnectionException as exc:
                raise ConnectorError(f"{self.where}: connection lost: {exc}") from exc
            except (OSError, ModbusException) as exc:
                raise ConnectorError(f"{self.where} unit {unit}: {type(exc).__name__}: {exc}") from exc
            finally:
                if self.inter_frame_s:
                    await asyncio.sleep(self.inter_frame_s)
            return check_payload(fc, count, pdu) if fc else pdu
        raise AssertionError("unreachable")  # pragma: no cover

    async def read(self, table: str, start: int, count: int, unit: int) -> npt.NDArray[np.generic]:
        """Read and check ``count`` registers/bits; returns uint16 registers or uint8 bits."""
        return to_array(READ_FC[table], count, await self.read_payload(table, start, count, unit))

    def read_payload(self, table: str, start: int, count: int, unit: int) -> Coroutine[Any, Any, list[Any]]:
        """Read ``count`` registers/bits; the coroutine returns the response's structurally checked
        list (see :func:`check_payload`) — the poller decodes it without building an array first.
        A plain function handing out the attempts' coroutine: one frame less per request."""
        fc = READ_FC[table]
        if self.inter_frame_s:
            return self._locked_read(fc, start, count, unit)
        return self._read_attempts(fc, start, count, unit)

    def reader(self) -> Callable[[int, int, int, int], Coroutine[Any, Any, list[Any]]]:
        """A read as one call: ``reader()(fc, start, count, unit)`` is :meth:`read_payload` by
        function code (on RTU inside the bus lock)."""
        return self._locked_read if self.inter_frame_s else self._read_attempts

    def bound(self, calls: tuple[tuple[int, int, int], ...], unit: int) -> tuple[PollCall, ...]:
        """The poll path's reads of a plan's ``calls`` (function code, start, count) to ``unit`` on
        the current client: per call ``(execute, request, fc)`` where ``await execute(False,
        request)`` sends the prebuilt pymodbus read request (pymodbus' public ``execute``, on RTU
        wrapped in the bus lock and the inter-frame pause) and returns the response PDU. A request
        object serves one transaction at a time (the poll loop is sequential) — what the client's
        ``read_*`` methods would build anew for every call. Cached per client, plan and unit (a
        caller may keep the result while :attr:`epoch` stays the same); the caller checks each
        response (:func:`check_payload`'s rules) and hands any exception to :meth:`recover`."""
        client = self._client
        if client is not self._bound_client:
            self._bound.clear()
            self._bound_client = client
        got = self._bound.get((calls, unit))
        if got is None:
            if client is None:
                raise ConnectorError(f"not connected to {self.where}")
            execute = self._rtu_call(client.execute) if self.inter_frame_s else client.execute
            got = tuple((execute, _READ_REQUEST[fc](address=start, count=count, dev_id=unit), fc)
                        for fc, start, count in calls)
            self._bound[calls, unit] = got
        return got

    def _rtu_call(self, execute: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def call(no_response_expected: bool, request: Any) -> Any:
            async with self.lock:
                try:
                    return await execute(no_response_expected, request)
                finally:
                    await asyncio.sleep(self.inter_frame_s)
        return call

    async def recover(self, exc: BaseException, fc: int, start: int, count: int, unit: int) -> Any:
        """A poll-path read (see :meth:`bound`) raised ``exc``: turn it into the edgekit error
        :meth:`read_payload` raises for it — or, for a timeout with ``retries`` left, make the
        remaining attempts and return the response PDU, its function code checked as
        :func:`check_payload` does (the caller checks its item list). Counts the first attempt."""
        if isinstance(exc, (ConnectorError, DecodeError)):  # the response check refused it
            self.requests += 1
            raise exc
        client = self._client
        if client is None or not client.connected:  # never sent (pymodbus refuses a closed socket)
            raise ConnectorError(f"not connected to {self.where}") from exc
        self.requests += 1
        if isinstance(exc, (TimeoutError, ModbusIOException)):
            self.timeouts += 1
            if self.cfg.retries == 0:
                raise self._no_answer(unit, 1) from exc
            if self.inter_frame_s:
                async with self.lock:
                    pdu = await self._attempts(_READ_METHOD[fc], (start,), unit, {"count": count}, 0, 0, 1)
            else:
                pdu = await self._attempts(_READ_METHOD[fc], (start,), unit, {"count": count}, 0, 0, 1)
            if getattr(pdu, "function_code", None) is not fc:
                check_payload(fc, count, pdu)  # raises for an exception response, as the first attempt would
            return pdu
        if isinstance(exc, ConnectionException):
            raise ConnectorError(f"{self.where}: connection lost: {exc}") from exc
        raise ConnectorError(f"{self.where} unit {unit}: {type(exc).__name__}: {exc}") from exc

    async def write(self, table: str, address: int, value: list[int] | bool, unit: int, *, multiple: bool) -> None:
        if table == "coil":
            if multiple:
                pdu = await self.execute("write_coils", address, [bool(value)], unit=unit)
                fc = 15
            else:
                pdu = await self.execute("write_coil", address, bool(value), unit=unit)
                fc = 5
        else:
            assert isinstance(value, list)
            if len(value) == 1 and not multiple:
                pdu = await self.execute("write_register", address, value[0], unit=unit)
                fc = 6
            else:
                pdu = await self.execute("write_registers", address, value, unit=unit)
                fc = 16
        got = getattr(pdu, "function_code", None)
        if isinstance(got, int) and got & 0x80:
            raise ModbusExceptionResponse(int(getattr(pdu, "exception_code", 0) or 0), fc)
        if got != fc:
            raise DecodeError(f"FC{fc}: write answered with {got!r}")
