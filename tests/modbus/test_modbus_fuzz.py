"""Fuzzed responses never crash the connector: the response checks (on objects pymodbus really
decodes from garbage bytes, and on arbitrary objects), and a live TCP device answering garbage."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from modbus_helpers import CollectSink, Running
from pymodbus.pdu.decoders import DecodePDU

from edgekit.config.parse import parse
from edgekit.connectors import modbus
from edgekit.connectors.modbus.config import ModbusConnectionConfig
from edgekit.connectors.modbus.decode import BlockDecoder, compile_decoder, compile_scan
from edgekit.connectors.modbus.device import ResolvedTag
from edgekit.connectors.modbus.transport import ModbusExceptionResponse, check_payload, check_response
from edgekit.errors import DecodeError
from edgekit.types import Quality

DECODER = DecodePDU(False)


KINDS = (("int16", 1), ("float32", 2), ("uint64", 4), ("bool", 1), ("bit", 1), ("uint32", 2), ("float16", 1))
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def decoder_for(fc: int, count: int) -> BlockDecoder:
    """Tags filling ``count`` registers (mixed types and byte orders) or every other of ``count`` bits."""
    if fc in (1, 2):
        tags = [ResolvedTag(f"c{a}", "coil", a, "bool", 1, 0, "ABCD", 1.0, 0.0, "", 0.0, "default", True)
                for a in range(0, count, 2)]
        return compile_decoder(tags, 0, bits=True)
    tags, addr, i = [], 0, 0
    while True:
        kind, words = KINDS[i % len(KINDS)]
        if addr + words > count:
            break
        tags.append(ResolvedTag(f"t{i}", "holding_register", addr, kind, words, i % 16, ORDERS[i % 4],
                                0.5 if i % 3 else 1.0, 0.0, "", 0.0, "default", True))
        addr, i = addr + words, i + 1
    return compile_decoder(tags, 0, bits=False)


def checked(fc: int, count: int, pdu: Any) -> None:
    # the poller's fast path: structural check, then the struct decoder on the response's list
    dec = decoder_for(fc, count)
    assert dec.fast is not None
    fast: Any = None
    try:
        fast = dec.fast.values(check_payload(fc, count, pdu))
    except (DecodeError, ModbusExceptionResponse):
        pass
    # the poll loop's own path: a response with the request's function code goes to the scan
    # decoder, which checks its list; any other goes through check_payload at once
    scan: Any = None
    if getattr(pdu, "function_code", None) is fc:
        try:
            scan = compile_scan([dec.fast], [(fc, count)]).responses([pdu])  # type: ignore[misc]
        except DecodeError:
            pass
    try:
        out = check_response(fc, count, pdu)
    except (DecodeError, ModbusExceptionResponse):
        assert fast is None, "the fast path accepted what the strict check refuses"
        assert scan is None, "the scan decoder accepted what the strict check refuses"
        return
    if scan is not None:
        assert fast is not None and np.array_equal(np.array(scan, dtype=np.float64), np.array(fast, dtype=np.float64),
                                                   equal_nan=True)
    assert out.shape == (count,)
    assert out.dtype in (np.uint16, np.uint8)
    if fast is not None:  # both paths accepted it: they agree
        values, _ = dec.decode(out)
        got = np.array(fast, dtype=np.float64) * (dec.scale if not dec.bits else 1.0)
        assert np.array_equal(got, values, equal_nan=True)


@settings(max_examples=400, deadline=None)
@given(fc=st.sampled_from([1, 2, 3, 4]), count=st.integers(1, 125),
       frame=st.one_of(
           st.binary(max_size=260),
           st.builds(lambda f, n, body: bytes([f, n]) + body, st.integers(0, 255), st.integers(0, 255),
                     st.binary(max_size=255)),
       ))
def test_fuzz_pymodbus_decoded_garbage(fc: int, count: int, frame: bytes) -> None:
    try:
        pdu = DECODER.decode(frame)
    except Exception:  # pymodbus' own decoder may reject; we only check what it returns
        return
    checked(fc, count, pdu)


class Fake:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


ANY = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=3),
                st.lists(st.one_of(st.integers(-5, 70000), st.booleans(), st.none(), st.floats()), max_size=130))


@settings(max_examples=150, deadline=None)
@given(fc=st.sampled_from([1, 2, 3, 4]), count=st.integers(1, 125), function_code=ANY, exception_code=ANY,
       registers=ANY, bits=ANY)
def test_fuzz_arbitrary_response_objects(fc: int, count: int, function_code: Any, exception_code: Any,
                                         registers: Any, bits: Any) -> None:
    checked(fc, count, Fake(function_code=function_code, exception_code=exception_code, registers=registers,
                            bits=bits))
    checked(fc, count, None)


def garbage_reply(rng: random.Random, request: bytes) -> bytes:
    """A reply to one MBAP request: valid, wrong length, wrong FC, exception, random bytes, or nothing."""
    tid, _pid, _len, unit, fc = struct.unpack(">HHHBB", request[:8])
    count = struct.unpack(">H", request[10:12])[0] if len(request) >= 12 else 1
    kind = rng.randrange(8)
    if kind == 0:  # well formed
        body = bytes([fc, 2 * count]) + rng.randbytes(2 * count)
    elif kind == 1:  # wrong byte count
        n = rng.randrange(0, 250)
        body = bytes([fc, n]) + rng.randbytes(rng.randrange(0, 250))
    elif kind == 2:  # wrong function code
        body = bytes([rng.choice([5, 6, 7, 15, 16, 43, 99]), 2 * count]) + rng.randbytes(2 * count)
    elif kind == 3:  # exception, possibly for another function
        body = bytes([0x80 | rng.choice([fc, fc, 1, 99]), rng.randrange(0, 256)])
    elif kind == 4:  # random bytes with a plausible header
        body = rng.randbytes(rng.randrange(1, 40))
    elif kind == 5:  # nothing at all (timeout)
        return b""
    elif kind == 6:  # wrong transaction id
        tid ^= 0x5A5A
        body = bytes([fc, 2 * count]) + rng.randbytes(2 * count)
    else:  # pure noise
        return rng.randbytes(rng.randrange(1, 64))
    return struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body


async def test_live_garbage_device_never_crashes_the_connector(port: int) -> None:
    rng = random.Random(1234)
    replies = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal replies
        try:
            while True:
                head = await reader.readexactly(6)
                length = struct.unpack(">H", head[4:6])[0]
                request = head + await reader.readexactly(length)
                data = garbage_reply(rng, request)
                replies += 1
                if data:
                    writer.write(data)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    cfg = parse(ModbusConnectionConfig, {
        "name": "fuzz", "port": port, "timeout": "50ms", "retries": 0, "reconnect_min": "20ms",
        "reconnect_max": "100ms", "down_poll_max": "200ms",
        "devices": [{"name": "junk", "poll": {"default": "20ms"}, "tags": [
            {"name": "a", "address": 0, "table": "holding_register", "type": "float32"},
            {"name": "b", "address": 2, "table": "holding_register", "type": "int64", "byte_order": "DCBA"},
            {"name": "s", "address": 6, "table": "holding_register", "type": "string", "length": 4},
            {"name": "c", "address": 0, "table": "coil"},
            {"name": "i", "address": 3, "table": "input_register"}]}]}, "modbus[0]")
    connector = modbus.build(cfg)
    sink = CollectSink()
    try:
        async with Running(connector, sink) as running:
            await sink.wait_for(lambda: replies >= 150, timeout=30)
            assert running.task is not None and not running.task.done()
            n = len(sink.batches)
            await sink.wait_for(lambda: len(sink.batches) > n + 2)  # still polling
            health = connector.health()
    finally:
        server.close()
        await server.wait_closed()
    assert health["loop_restarts"] == 0
    qualities = np.concatenate([b.quality for b in sink.batches])
    assert (qualities == Quality.GOOD).any() and (qualities == Quality.BAD).any()
    for b in sink.batches:
        for q, r in zip(b.quality, b.reasons or [""] * len(b), strict=True):
            assert (q == Quality.GOOD) == (r == "")
    assert health["errors"].get("decode", 0) + health["errors"].get("timeout", 0) > 0
