"""The simulator's OPC UA address space, read with a plain asyncua client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from asyncua import Client, ua

from edgekit.config.parse import Secret
from edgekit.sim.config import SecurityOptions, load_sim_config
from edgekit.sim.physics import ProcessState
from edgekit.sim.plant import PlantSimulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

# (browse name, expected variant type, truth field)
TAGS = [
    ("SpeedRpm", ua.VariantType.Float, "speed_rpm"),
    ("BearingTempC", ua.VariantType.Double, "bearing_temp_c"),
    ("MotorCurrentA", ua.VariantType.Float, "motor_current_a"),
    ("LoadPct", ua.VariantType.Int16, "load_pct"),
    ("RunHours", ua.VariantType.UInt32, "run_hours"),
    ("EnergyWh", ua.VariantType.Int64, "energy_wh"),
    ("Running", ua.VariantType.Boolean, "running"),
    ("FaultActive", ua.VariantType.Boolean, "fault_active"),
]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(plant: PlantSimulator) -> AsyncIterator[Client]:
    async with Client(plant.opcua_endpoint) as c:
        yield c


def _equal(value: Any, truth: ProcessState, field: str, vtype: ua.VariantType) -> bool:
    expected = getattr(truth, field)
    if vtype == ua.VariantType.Float:
        return bool(np.float32(value) == np.float32(expected))
    if vtype == ua.VariantType.Int16:
        return bool(value == round(expected))
    return bool(value == expected)


async def test_namespace_index_and_browse_paths(client: Client) -> None:
    assert await client.get_namespace_index("urn:edgekit:sim") == 2
    node = await client.nodes.objects.get_child(["2:Plant", "2:Machine02", "2:Vibration", "2:Ch1"])
    assert node.nodeid == ua.NodeId("Machine02.Vibration.Ch1", 2)
    speed = await client.nodes.objects.get_child(["2:Plant", "2:Machine01", "2:SpeedRpm"])
    assert speed.nodeid.to_string() == "ns=2;s=Machine01.SpeedRpm"


@pytest.mark.parametrize("index", [1, 2, 3])
async def test_every_process_tag_has_its_type_and_decodes_to_the_truth(plant: PlantSimulator, client: Client,
                                                                      index: int) -> None:
    m = plant.machines[f"m{index:02d}"]
    nodes = [client.get_node(f"ns=2;s=Machine{index:02d}.{name}") for name, _, _ in TAGS]
    for _ in range(20):
        before = m.truth()
        dvs = await client.read_attributes(nodes, ua.AttributeIds.Value)
        after = m.truth()
        for truth in (before, after):
            if all(_equal(dv.Value.Value, truth, f, vt) for dv, (_, vt, f) in zip(dvs, TAGS, strict=True)):
                break
        else:
            continue
        break
    else:
        raise AssertionError(f"OPC UA values {[dv.Value.Value for dv in dvs]} never matched {m.truth()}")
    assert [dv.Value.VariantType for dv in dvs] == [vt for _, vt, _ in TAGS]
    name = await client.get_node(f"ns=2;s=Machine{index:02d}.Name").read_data_value()
    assert name.Value.VariantType == ua.VariantType.String and name.Value.Value == f"MACHINE-{index:02d}"
    assert dvs[0].SourceTimestamp is not None


async def test_engineering_units_are_attached(client: Client) -> None:
    node = client.get_node("ns=2;s=Machine01.Vibration.Ch0")
    eu = await (await node.get_child("0:EngineeringUnits")).read_value()
    assert eu.DisplayName.Text == "g"
    eu = await (await client.get_node("ns=2;s=Machine01.SpeedRpm").get_child("0:EngineeringUnits")).read_value()
    assert eu.DisplayName.Text == "r/min"


async def test_vibration_arrays_are_the_physics_block_named_by_blockseq(plant: PlantSimulator,
                                                                       client: Client) -> None:
    m = plant.machines["m02"]
    vib = "ns=2;s=Machine02.Vibration."
    for _ in range(20):
        seq = await client.get_node(vib + "BlockSeq").read_value()
        ch0, ch1, fs, speed = [dv.Value.Value for dv in await client.read_attributes(
            [client.get_node(vib + n) for n in ("Ch0", "Ch1", "SampleRateHz", "SpeedHz")])]
        if await client.get_node(vib + "BlockSeq").read_value() == seq:
            break
    expected = m.signal.block(seq)
    assert len(ch0) == 8192 and fs == 25600.0
    assert np.array_equal(np.asarray(ch0, dtype=np.float32), expected[0])
    assert np.array_equal(np.asarray(ch1, dtype=np.float32), expected[1])
    assert speed == pytest.approx(m.signal.speed_hz(seq))


async def test_blockseq_subscription_sees_every_block_in_order(plant: PlantSimulator, client: Client) -> None:
    got: list[int] = []

    class Handler:
        def datachange_notification(self, node: Any, val: int, data: Any) -> None:
            got.append(val)

    m = plant.machines["m03"]
    await m.wait_block(m.last_seq + 1)  # if the loop was paused (other tests), the catch-up is behind us
    sub = await client.create_subscription(20, Handler())
    await sub.subscribe_data_change(client.get_node("ns=2;s=Machine03.Vibration.BlockSeq"))
    t0 = time.monotonic()
    await asyncio.sleep(1.5)
    await sub.delete()
    elapsed = time.monotonic() - t0
    assert len(got) >= 5
    assert all(b == a + 1 for a, b in zip(got[1:], got[2:], strict=False))  # first is the current value
    rate = (got[-1] - got[1]) / elapsed
    expected = plant.cfg.speedup * 25600 / 8192
    assert 0.6 * expected < rate < 1.3 * expected


async def test_setpoint_write_reaches_truth_and_modbus(plant: PlantSimulator, client: Client) -> None:
    m = plant.machines["m03"]
    await client.get_node("ns=2;s=Machine03.Setpoint").write_value(ua.Variant(2900.0, ua.VariantType.Double))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and m.truth().setpoint_rpm != 2900:
        await asyncio.sleep(0.05)
    assert m.truth().setpoint_rpm == 2900
    assert plant._modbus is not None and plant._modbus.read_setpoint(3) == 2900
    await client.get_node("ns=2;s=Machine03.Setpoint").write_value(ua.Variant(2950.0, ua.VariantType.Double))


async def test_secured_endpoint_with_users(tmp_path: Path) -> None:
    from asyncua.crypto.cert_gen import (
        dump_private_key_as_pem,
        generate_private_key,
        generate_self_signed_app_certificate,
    )
    from asyncua.crypto.security_policies import (
        SecurityPolicyAes256Sha256RsaPss,
        SecurityPolicyBasic256Sha256,
    )
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    sec = SecurityOptions(enabled=True, allow_none=False, allow_anonymous=False,
                          users={"operator": Secret("s3cret")}, cert_dir=str(tmp_path / "pki"))
    cfg = load_sim_config(data={"machines": 1, "opcua": {"port": 0}, "modbus": {"enabled": False}})
    uri = "urn:edgekit:test:client"
    key = generate_private_key()
    cert = generate_self_signed_app_certificate(key, "test client", {}, [x509.UniformResourceIdentifier(uri)],
                                                [ExtendedKeyUsageOID.CLIENT_AUTH], 30)
    (tmp_path / "key.pem").write_bytes(dump_private_key_as_pem(key))
    (tmp_path / "cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))

    async with PlantSimulator(cfg, security=sec) as sim:
        assert sim.opcua_cert_path is not None and sim.opcua_cert_path.is_file()
        assert (tmp_path / "pki" / "server_cert.pem").is_file()

        async def connect(policy: Any, mode: ua.MessageSecurityMode, password: str) -> str:
            c = Client(sim.opcua_endpoint)
            c.application_uri = uri
            await c.set_security(policy, str(tmp_path / "cert.der"), str(tmp_path / "key.pem"),
                                 server_certificate=str(sim.opcua_cert_path), mode=mode)
            c.set_user("operator")
            c.set_password(password)
            async with c:
                return str(await c.get_node("ns=2;s=Machine01.Name").read_value())

        assert sim.machines["m01"].last_seq >= 0  # block 0 is out before start() returns
        assert sim.machines["m01"].last_block is not None and sim.machines["m01"].last_block.shape == (2, 8192)

        assert await connect(SecurityPolicyBasic256Sha256, ua.MessageSecurityMode.SignAndEncrypt, "s3cret") == "MACHINE-01"
        assert await connect(SecurityPolicyAes256Sha256RsaPss, ua.MessageSecurityMode.Sign, "s3cret") == "MACHINE-01"
        with pytest.raises(ua.UaStatusCodeError):
            await connect(SecurityPolicyBasic256Sha256, ua.MessageSecurityMode.SignAndEncrypt, "wrong")
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises a bare UaError for a missing endpoint
            async with Client(sim.opcua_endpoint) as plain:
                await plain.get_node("ns=2;s=Machine01.Name").read_value()
        endpoints = await Client(sim.opcua_endpoint).connect_and_get_server_endpoints()
        offered = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in endpoints}
        assert offered == {(p, m) for p in ("Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
                           for m in ("Sign", "SignAndEncrypt")}
