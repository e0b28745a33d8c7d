"""``edgekit simulate`` as a real subprocess: READY line, SIGKILL and restart on the same ports, SIGTERM exit 0."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from portutil import free_port
from pymodbus.client import ModbusTcpClient

from edgekit.cli import main
from edgekit.sim.spawn import spawn, wait_ready

REPO = Path(__file__).resolve().parents[2]


def _fault_active(port: int, unit: int) -> bool:
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert c.connect()
    try:
        rr = c.read_discrete_inputs(0, count=1, device_id=unit)
        assert not rr.isError(), rr
        return bool(rr.bits[0])
    finally:
        c.close()


def test_simulate_prints_endpoints_survives_sigkill_restart_and_exits_0_on_sigterm() -> None:
    opc, mb = free_port(), free_port()
    args = ["--config", str(REPO / "examples" / "sim.toml"), "--opcua-port", str(opc), "--modbus-port", str(mb),
            "--speedup", "4", "--fault", "m01:unbalance:0.9"]
    first = spawn(args, cwd=str(REPO))
    try:
        info = wait_ready(first, timeout=60)
        assert info["OPCUA_ENDPOINT"] == f"opc.tcp://127.0.0.1:{opc}/edgekit/sim"
        assert info["MODBUS"] == f"127.0.0.1:{mb}"
        assert info["MACHINES"] == "m01,m02,m03,m04"
        assert _fault_active(mb, 1) is True  # from --fault
        assert _fault_active(mb, 2) is False  # m02's outer-race fault starts at 60 s
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.stdout is not None
        first.stdout.close()
    second = spawn(["--machines", "2", "--no-opcua", "--modbus-port", str(mb)], cwd=str(REPO))
    try:
        info = wait_ready(second, timeout=60)
        assert info["MACHINES"] == "m01,m02" and "OPCUA_ENDPOINT" not in info
        assert _fault_active(mb, 1) is False
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)
        assert second.stdout is not None
        second.stdout.close()


def test_bad_fault_flag_exits_2_naming_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--fault", "m01:rust:0.5"]) == 2
    err = capsys.readouterr().err
    assert "--fault" in err and "rust" in err and "outer_race" in err
    assert main(["simulate", "--machines", "2", "--fault", "m05:unbalance:0.5"]) == 2
    assert "m05" in capsys.readouterr().err


def test_busy_port_exits_1_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["simulate", "--machines", "1", "--no-opcua", "--modbus-port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "port in use" in err
