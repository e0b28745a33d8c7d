"""A small asyncua server with the simulator's OPC UA layout, for the OPC UA connector tests.

Runs in-process (``async with SimServer(...)``) or as a subprocess
(``python tests/opcua/server_app.py --port P [--pki DIR] [--user U --password PW]``, prints
``READY <endpoint>`` when listening) so tests can SIGKILL and restart it. Layout: /tmp/simlayout.md
(``ns=2;s=Machine01.SpeedRpm`` …, waveform arrays written before ``BlockSeq``), plus
``Types/<DataType>`` variables of every scalar data type, a ``Test.Counter`` Double that changes
every update, and ``Test.SubscriptionCount`` (live subscriptions on the server) for the
no-duplicates check. With ``pki``, every security policy × mode is offered besides None.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import Server, ua, uamethod
from asyncua.crypto.permission_rules import User, UserRole

NAMESPACE = "urn:edgekit:sim"
SERVER_URI = "urn:edgekit:test:server"

SCALARS: list[tuple[str, ua.VariantType, Any, str]] = [
    ("SpeedRpm", ua.VariantType.Float, 1480.0, "r/min"),
    ("BearingTempC", ua.VariantType.Double, 45.5, "°C"),
    ("MotorCurrentA", ua.VariantType.Float, 12.25, "A"),
    ("LoadPct", ua.VariantType.Int16, 75, "%"),
    ("RunHours", ua.VariantType.UInt32, 1234, "h"),
    ("EnergyWh", ua.VariantType.Int64, 2**40 + 5, "Wh"),
    ("Running", ua.VariantType.Boolean, True, ""),
    ("FaultActive", ua.VariantType.Boolean, False, ""),
    ("Name", ua.VariantType.String, "MACHINE-01", ""),
    ("Setpoint", ua.VariantType.Double, 1500.0, "r/min"),
]

TYPES: list[tuple[ua.VariantType, Any]] = [
    (ua.VariantType.Boolean, True),
    (ua.VariantType.SByte, -5),
    (ua.VariantType.Byte, 200),
    (ua.VariantType.Int16, -1234),
    (ua.VariantType.UInt16, 60000),
    (ua.VariantType.Int32, -123456),
    (ua.VariantType.UInt32, 4000000000),
    (ua.VariantType.Int64, -(2**40)),
    (ua.VariantType.UInt64, 2**50),
    (ua.VariantType.Float, 1.5),
    (ua.VariantType.Double, 2.25),
    (ua.VariantType.String, "hello"),
    (ua.VariantType.DateTime, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
    (ua.VariantType.ByteString, b"\x01\x02"),
    (ua.VariantType.LocalizedText, ua.LocalizedText("text-en")),
]

BLOCK = 1024
FS = 25600.0


class Users:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is None:
            return User(role=UserRole.User)  # anonymous stays allowed
        if username in self.users and self.users[username] == password:
            return User(role=UserRole.User, name=username)
        return None


@uamethod
def _twice(parent: Any, x: float) -> float:
    return 2 * x


def machine(i: int) -> str:
    return f"Machine{i:02d}"


class SimServer:
    """The server and its update loop."""

    def __init__(self, port: int, machines: int = 2, pki: Path | None = None,
                 users: dict[str, str] | None = None, period: float = 0.05, allow_none: bool = True) -> None:
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/edgekit/sim"
        self.n_machines = machines
        self.pki = pki
        self.users = users
        self.period = period
        self.allow_none = allow_none
        self.server = Server(user_manager=Users(users) if users else None)
        self.vars: dict[str, Any] = {}
        self.seq = 0
        self.counter = 0.0
        self._task: asyncio.Task[None] | None = None
        self.paused = False

    async def start(self) -> SimServer:
        s = self.server
        await s.init()
        s.set_endpoint(self.endpoint)
        s.set_server_name("edgekit test server")
        if self.pki is not None:
            await s.set_application_uri(SERVER_URI)
            await s.load_certificate(str(self.pki / "cert.der"))
            await s.load_private_key(str(self.pki / "key.pem"))
            T = ua.SecurityPolicyType
            pols = [T.Basic256Sha256_Sign, T.Basic256Sha256_SignAndEncrypt, T.Aes128Sha256RsaOaep_Sign,
                    T.Aes128Sha256RsaOaep_SignAndEncrypt, T.Aes256Sha256RsaPss_Sign, T.Aes256Sha256RsaPss_SignAndEncrypt]
            s.set_security_policy(([T.NoSecurity] if self.allow_none else []) + pols)
        if self.users:
            s.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        ns = await s.register_namespace(NAMESPACE)
        assert ns == 2, ns
        objects = s.nodes.objects
        plant = await objects.add_folder(ua.NodeId("Plant", ns), ua.QualifiedName("Plant", ns))
        for i in range(1, self.n_machines + 1):
            m = machine(i)
            mf = await plant.add_object(ua.NodeId(m, ns), ua.QualifiedName(m, ns))
            for leaf, vt, value, unit in SCALARS:
                v = await mf.add_variable(ua.NodeId(f"{m}.{leaf}", ns), ua.QualifiedName(leaf, ns), value, vt)
                if unit:
                    eu = ua.EUInformation(DisplayName=ua.LocalizedText(unit), Description=ua.LocalizedText(unit))
                    await v.add_property(ua.NodeId(f"{m}.{leaf}.EngineeringUnits", ns),
                                         ua.QualifiedName("EngineeringUnits", 0), eu)
                self.vars[f"{m}.{leaf}"] = v
            await self.vars[f"{m}.Setpoint"].set_writable()
            vf = await mf.add_folder(ua.NodeId(f"{m}.Vibration", ns), ua.QualifiedName("Vibration", ns))
            for ch in ("Ch0", "Ch1"):
                arr = await vf.add_variable(ua.NodeId(f"{m}.Vibration.{ch}", ns), ua.QualifiedName(ch, ns),
                                            ua.Variant([0.0] * BLOCK, ua.VariantType.Float))
                await arr.write_attribute(ua.AttributeIds.ValueRank, ua.DataValue(ua.Variant(1, ua.VariantType.Int32)))
                await arr.write_attribute(ua.AttributeIds.ArrayDimensions,
                                          ua.DataValue(ua.Variant([BLOCK], ua.VariantType.UInt32)))
                self.vars[f"{m}.Vibration.{ch}"] = arr
            for leaf, vt, value in (("SampleRateHz", ua.VariantType.Double, FS),
                                    ("BlockSeq", ua.VariantType.UInt32, 0),
                                    ("SpeedHz", ua.VariantType.Double, 1480 / 60)):
                self.vars[f"{m}.Vibration.{leaf}"] = await vf.add_variable(
                    ua.NodeId(f"{m}.Vibration.{leaf}", ns), ua.QualifiedName(leaf, ns), value, vt)
        tf = await objects.add_folder(ua.NodeId("Types", ns), ua.QualifiedName("Types", ns))
        for vt, value in TYPES:
            self.vars[f"Types.{vt.name}"] = await tf.add_variable(
                ua.NodeId(f"Types.{vt.name}", ns), ua.QualifiedName(vt.name, ns), value, vt)
        test = await objects.add_folder(ua.NodeId("Test", ns), ua.QualifiedName("Test", ns))
        self.vars["Test.Counter"] = await test.add_variable(ua.NodeId("Test.Counter", ns),
                                                            ua.QualifiedName("Counter", ns), 0.0)
        await self.vars["Test.Counter"].set_writable()
        self.vars["Test.SubscriptionCount"] = await test.add_variable(
            ua.NodeId("Test.SubscriptionCount", ns), ua.QualifiedName("SubscriptionCount", ns), 0, ua.VariantType.Int32)
        await test.add_method(ua.NodeId("Test.Twice", ns), ua.QualifiedName("Twice", ns), _twice,
                              [ua.VariantType.Double], [ua.VariantType.Double])
        await s.start()
        self._task = asyncio.create_task(self._update())
        return self

    def subscription_count(self) -> int:
        return len(self.server.iserver.subscription_service.subscriptions)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.server.stop()

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def write_block(self) -> None:
        """One waveform block per machine: arrays first, then BlockSeq."""
        self.seq += 1
        t = np.arange(BLOCK) / FS
        for i in range(1, self.n_machines + 1):
            m = machine(i)
            for c, ch in enumerate(("Ch0", "Ch1")):
                sig = (np.sin(2 * np.pi * (100 * (c + 1)) * t) + 0.001 * self.seq).astype(np.float32)
                await self.server.write_attribute_value(
                    self.vars[f"{m}.Vibration.{ch}"].nodeid,
                    ua.DataValue(ua.Variant(sig.tolist(), ua.VariantType.Float)))
            await self.server.write_attribute_value(
                self.vars[f"{m}.Vibration.BlockSeq"].nodeid,
                ua.DataValue(ua.Variant(self.seq, ua.VariantType.UInt32)))

    async def _update(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.period)
            if self.paused:
                continue
            n += 1
            self.counter += 1.0
            await self.server.write_attribute_value(self.vars["Test.Counter"].nodeid,
                                                    ua.DataValue(ua.Variant(self.counter, ua.VariantType.Double)))
            await self.server.write_attribute_value(
                self.vars["Test.SubscriptionCount"].nodeid,
                ua.DataValue(ua.Variant(self.subscription_count(), ua.VariantType.Int32)))
            speed = 1480.0 + 5 * math.sin(n / 10)
            for i in range(1, self.n_machines + 1):
                await self.server.write_attribute_value(
                    self.vars[f"{machine(i)}.SpeedRpm"].nodeid, ua.DataValue(ua.Variant(speed, ua.VariantType.Float)))
            if n % 4 == 0:
                await self.write_block()


async def _main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pki", type=Path)
    ap.add_argument("--user", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--machines", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    users = {args.user: args.password} if args.user else None
    srv = SimServer(args.port, args.machines, args.pki, users)
    await srv.start()
    print(f"READY {srv.endpoint}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
