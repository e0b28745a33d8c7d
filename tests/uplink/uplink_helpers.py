"""Helpers shared by the uplink tests: keys, configs, records, waiting for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import codec
from edgekit.config.parse import parse
from edgekit.spool import Spool, SpoolConfig
from edgekit.types import FeatureFrame
from edgekit.uplink import UplinkConfig
from edgekit.uplink.security import generate_keypair, load_public_key, parse_secret_key


@dataclass
class Keys:
    root: Path
    server_public: Path
    server_secret: Path
    allow: Path
    gateways: dict[str, tuple[Path, Path]]

    def server_secret_key(self) -> bytes:
        return parse_secret_key(self.server_secret.read_text())

    def server_public_key(self) -> bytes:
        return load_public_key(self.server_public)


def make_keys(root: Path, gateways: tuple[str, ...] = ("gw-1",), allowed: tuple[str, ...] | None = None) -> Keys:
    """A collector key pair, gateway key pairs, and an allow-list folder holding ``allowed`` gateways."""
    srv_pub, srv_sec = generate_keypair(root / "server", "collector")
    allow = root / "allow"
    allow.mkdir(parents=True, exist_ok=True)
    gws = {}
    for g in gateways:
        pub, sec = generate_keypair(root / "gateways", g)
        gws[g] = (pub, sec)
        if allowed is None or g in allowed:
            (allow / pub.name).write_bytes(pub.read_bytes())
    return Keys(root, srv_pub, srv_sec, allow, gws)


def uplink_cfg(endpoints: list[str], keys: Keys | None, gateway: str = "gw-1", **kw: Any) -> UplinkConfig:
    data: dict[str, Any] = {"name": "dc", "endpoints": endpoints, "heartbeat": "500ms",
                            "heartbeat_timeout": "3s", "ack_timeout": "3s", "hello_timeout": "2s",
                            "reconnect_initial": "50ms", "reconnect_max": "500ms"}
    if keys is not None:
        data["server_public_key"] = str(keys.server_public)
        data["secret_key"] = {"file": str(keys.gateways[gateway][1])}
    else:
        data["insecure"] = True
    data.update(kw)
    return parse(UplinkConfig, data, "uplinks[0]")


def open_spool(path: Path, **kw: Any) -> Spool:
    cfg = parse(SpoolConfig, {"gap_interval": "50ms", **kw}, "spool")
    return Spool(path, cfg, {"dc": ("points", "features", "event", "waveform", "gap")})


def feature_blob(seq: int, channels: int = 4, names: tuple[str, ...] = ("rms", "peak", "kurtosis", "crest")) -> bytes:
    rng = np.random.default_rng(seq)
    ff = FeatureFrame(
        asset="m01", values=rng.normal(1.0, 0.1, (channels, len(names))).astype(np.float32), names=names,
        channels=tuple(f"ch{i}" for i in range(channels)), t0=1.7e9 + seq, seq=seq,
        quality=np.zeros(channels, np.uint8), reasons=("",) * channels,
    )
    return codec.pack(ff)


async def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(step)
