"""The simulator's Modbus map, read with a plain pymodbus client and decoded independently of edgekit."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from pymodbus.client import AsyncModbusTcpClient
from scipy import signal as sps

from edgekit.sim.physics import ProcessState
from edgekit.sim.plant import PlantSimulator, SimMachine

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(plant: PlantSimulator) -> AsyncIterator[AsyncModbusTcpClient]:
    c = AsyncModbusTcpClient(plant.modbus_host, port=plant.modbus_port, timeout=3)
    assert await c.connect()
    yield c
    c.close()


def _pack(regs: list[int]) -> bytes:
    return struct.pack(f">{len(regs)}H", *regs)


def decode_holding(r: list[int]) -> dict[str, Any]:
    """The contract in /tmp/simlayout.md, written out by hand."""
    return {
        "speed_rpm": struct.unpack(">f", _pack(r[0:2]))[0],                  # float32 ABCD
        "bearing_temp_c": struct.unpack(">f", _pack([r[3], r[2]]))[0],        # float32 CDAB
        "motor_current_a": struct.unpack(">h", _pack(r[4:5]))[0] * 0.01,      # int16 ×0.01
        "load_pct": r[5] * 0.1,                                               # uint16 ×0.1
        "run_hours": struct.unpack(">I", struct.pack("<2H", *r[6:8]))[0],     # uint32 BADC
        "energy_wh": struct.unpack("<q", _pack(r[8:12]))[0],                  # int64 DCBA
        "running": bool(r[12] & 1),
        "fault_active": bool(r[12] & 2),
        "name": _pack(r[13:21]).rstrip(b"\0").decode("ascii"),               # 16 chars, high byte first
        "vib_rms_g": struct.unpack(">f", _pack(r[21:23]))[0],
        "total_rev": struct.unpack(">d", _pack(r[23:27]))[0],                 # float64 ABCD
        "ambient_c": struct.unpack(">h", _pack(r[27:28]))[0] * 0.1,           # int16 ×0.1
    }


def matches(decoded: dict[str, Any], truth: ProcessState, name: str) -> bool:
    checks = [
        decoded["speed_rpm"] == pytest.approx(truth.speed_rpm, rel=1e-6),
        decoded["bearing_temp_c"] == pytest.approx(truth.bearing_temp_c, rel=1e-6),
        decoded["motor_current_a"] == pytest.approx(truth.motor_current_a, abs=0.0051),
        decoded["load_pct"] == pytest.approx(truth.load_pct, abs=0.051),
        decoded["run_hours"] == truth.run_hours,
        decoded["energy_wh"] == truth.energy_wh,
        decoded["running"] == truth.running,
        decoded["fault_active"] == truth.fault_active,
        decoded["name"] == name,
        decoded["vib_rms_g"] == pytest.approx(truth.vib_rms_g, rel=1e-6),
        decoded["total_rev"] == truth.total_rev,
        decoded["ambient_c"] == pytest.approx(truth.ambient_c, abs=0.051),
    ]
    return all(checks)


async def read_consistent(m: SimMachine, read: Callable[[], Awaitable[Any]],
                          check: Callable[[Any, ProcessState], bool]) -> tuple[Any, ProcessState]:
    """Read until the values match the truth published just before or just after the read."""
    for _ in range(20):
        before = m.truth()
        value = await read()
        after = m.truth()
        for truth in (before, after):
            if check(value, truth):
                return value, truth
    raise AssertionError(f"{m.id}: read {value!r} never matched the truth {m.truth()!r}")


@pytest.mark.parametrize("unit", [1, 2, 3])
async def test_every_process_tag_decodes_to_the_truth(plant: PlantSimulator, client: AsyncModbusTcpClient,
                                                       unit: int) -> None:
    m = plant.machines[f"m{unit:02d}"]

    async def read() -> dict[str, Any]:
        rr = await client.read_holding_registers(0, count=28, device_id=unit)
        assert not rr.isError(), rr
        return decode_holding(rr.registers)

    decoded, truth = await read_consistent(m, read, lambda d, t: matches(d, t, f"MACHINE-{unit:02d}"))
    assert decoded["run_hours"] > 12000 and decoded["energy_wh"] > 2**32  # exercise the wide types
    if unit == 2:
        assert decoded["ambient_c"] < 0 and decoded["fault_active"]
    if unit == 3:
        assert decoded["speed_rpm"] == pytest.approx(2950, rel=0.01)


async def test_coils_discrete_inputs_and_setpoint(plant: PlantSimulator, client: AsyncModbusTcpClient) -> None:
    coils = await client.read_coils(0, count=2, device_id=2)
    assert coils.bits[:2] == [True, True]  # running, remote_enable
    di = await client.read_discrete_inputs(0, count=1, device_id=2)
    assert di.bits[0] is True  # m02 has a severe fault
    di1 = await client.read_discrete_inputs(0, count=1, device_id=1)
    assert di1.bits[0] is False
    sp = await client.read_holding_registers(50, count=2, device_id=1)
    assert (sp.registers[0] << 16 | sp.registers[1]) == 1480


@pytest.mark.parametrize("address", [*range(40, 50), 28, 39])
async def test_unmapped_holding_registers_answer_exception_2(client: AsyncModbusTcpClient, address: int) -> None:
    rr = await client.read_holding_registers(address, count=1, device_id=1)
    assert rr.isError() and rr.exception_code == 2


async def test_reads_spanning_unmapped_registers_and_readonly_writes_are_refused(
        client: AsyncModbusTcpClient) -> None:
    assert (await client.read_holding_registers(20, count=10, device_id=1)).exception_code == 2
    assert (await client.read_input_registers(6, count=4, device_id=1)).exception_code == 2  # 8..999 unmapped
    assert (await client.write_register(0, 1, device_id=1)).exception_code == 2  # speed is read-only
    assert (await client.write_coil(0, False, device_id=1)).exception_code == 2  # running is read-only
    assert (await client.write_registers(50, [0, 6001], device_id=1)).exception_code == 3  # above 6000 r/min
    assert (await client.write_register(50, 1, device_id=1)).exception_code == 3  # high word → 65536+ r/min
    sp = await client.read_holding_registers(50, count=2, device_id=1)
    assert sp.registers == [0, 1480]  # refused writes change nothing


async def test_setpoint_and_remote_enable_writes_take_effect(plant: PlantSimulator,
                                                            client: AsyncModbusTcpClient) -> None:
    m = plant.machines["m01"]
    assert not (await client.write_registers(50, [0, 1400], device_id=1)).isError()
    assert not (await client.write_coil(1, False, device_id=1)).isError()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (m.truth().setpoint_rpm == 1400 and not m.truth().remote_enable):
        await asyncio.sleep(0.05)
    assert m.truth().setpoint_rpm == 1400 and m.truth().remote_enable is False
    seq = m.last_seq
    await m.wait_block(seq + 2)
    assert m.truth().speed_rpm < 1470  # ramping down at 300 r/min per second of sim time
    await client.write_registers(50, [0, 1480], device_id=1)
    await client.write_coil(1, True, device_id=1)


def decode_waveform(header: list[int]) -> tuple[int, float, float, int, int]:
    seq = header[0] << 16 | header[1]
    scale, fs = struct.unpack(">ff", _pack(header[2:6]))
    return seq, scale, fs, header[6], header[7]


async def read_block(client: AsyncModbusTcpClient, unit: int) -> tuple[int, float, float, np.ndarray]:
    for _ in range(20):
        head = (await client.read_input_registers(0, count=8, device_id=unit)).registers
        seq, scale, fs, nch, n = decode_waveform(head)
        regs: list[int] = []
        for start in range(1000, 1000 + nch * n, 125):
            count = min(125, 1000 + nch * n - start)
            rr = await client.read_input_registers(start, count=count, device_id=unit)
            assert not rr.isError(), rr
            regs.extend(rr.registers)
        again = decode_waveform((await client.read_input_registers(0, count=8, device_id=unit)).registers)[0]
        if again == seq:  # not torn
            raw = np.array(regs, dtype=np.uint16).view(np.int16).reshape(nch, n)
            return seq, scale, fs, raw
    raise AssertionError("every waveform read was torn")


async def test_waveform_block_matches_the_physics_block_decimated(plant: PlantSimulator,
                                                                  client: AsyncModbusTcpClient) -> None:
    m = plant.machines["m02"]
    seq, scale, fs, raw = await read_block(client, 2)
    assert fs == pytest.approx(3200.0) and raw.shape == (2, 1024)
    assert scale == pytest.approx(16.0 / 32767, rel=1e-6)
    full = m.signal.block(seq)  # deterministic: the same block the plant published
    expected = sps.resample(full.astype(np.float64), 1024, axis=-1)
    got = raw * scale
    assert np.max(np.abs(got - expected)) < 0.02 * np.max(np.abs(expected)) + 2 * scale


async def test_waveform_blocks_arrive_with_increasing_seq_at_the_configured_rate(
        plant: PlantSimulator, client: AsyncModbusTcpClient) -> None:
    m = plant.machines["m03"]
    await m.wait_block(m.last_seq + 1)  # if the loop was paused (other tests), the catch-up is behind us
    seqs: list[int] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.6:
        head = (await client.read_input_registers(0, count=2, device_id=3)).registers
        seqs.append(head[0] << 16 | head[1])
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - t0
    assert all(b >= a for a, b in zip(seqs, seqs[1:], strict=False))
    steps = {b - a for a, b in zip(seqs, seqs[1:], strict=False)}
    assert steps <= {0, 1}  # no gaps
    expected_rate = plant.cfg.speedup * 25600 / 8192  # 12.5 blocks/s
    rate = (seqs[-1] - seqs[0]) / elapsed
    assert 0.7 * expected_rate < rate < 1.3 * expected_rate
