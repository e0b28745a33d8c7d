"""The collector's allow-list of gateway keys: a folder of public key files, reloadable.

``<allow dir>/<gateway id>.key`` (as written by ``edgekit keys generate``) admits the gateway whose
secret key matches, under that id: the collector takes a gateway's identity from the key it
authenticated with (ZMQ ``User-Id`` metadata), never from what the gateway writes in its headers.

Reloading (:meth:`AllowList.reload`, on SIGHUP and every few seconds) picks up added and removed files.
Removing a file revokes the key: new handshakes are refused by ZAP and the collector rejects every
further message of an already-connected session whose id is no longer listed.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from ..errors import UplinkError
from ..uplink.security import load_public_key

__all__ = ["AllowList", "ZapAuthenticator"]

log = logging.getLogger("edgekit.collector.auth")


class AllowList:
    """Z85 public key → gateway id, loaded from ``*.key`` files in one folder."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise UplinkError(f"allow-list folder {str(self.directory)!r} does not exist")
        self._lock = threading.Lock()
        self._by_key: dict[bytes, str] = {}
        self._ids: frozenset[str] = frozenset()
        self.denied = 0  # handshakes refused (unknown or revoked key)
        self.reload()

    def __repr__(self) -> str:
        return f"<AllowList {self.directory} {len(self._by_key)} keys>"

    def reload(self) -> tuple[set[str], set[str]]:
        """Re-read the folder; return (ids added, ids removed). Unreadable files are logged and skipped."""
        by_key: dict[bytes, str] = {}
        for path in sorted(self.directory.glob("*.key")):
            try:
                by_key[load_public_key(path)] = path.stem
            except UplinkError as exc:
                log.error("allow-list: skipping %s: %s", path, exc)
        with self._lock:
            before = set(self._by_key.values())
            self._by_key = by_key
            self._ids = frozenset(by_key.values())
        after = set(by_key.values())
        added, removed = after - before, before - after
        if added or removed:
            log.info("allow-list %s: +%s -%s (%d keys)", self.directory, sorted(added), sorted(removed), len(by_key))
        return added, removed

    def gateway_for(self, z85_key: bytes) -> str | None:
        with self._lock:
            return self._by_key.get(z85_key)

    def has_id(self, gateway: str) -> bool:
        return gateway in self._ids

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._by_key.values())

    # zmq.auth credentials-provider protocol
    def callback(self, domain: str, key: bytes) -> bool:
        ok = self.gateway_for(key) is not None
        if not ok:
            self.denied += 1
            log.warning("refused CURVE handshake from unknown or revoked key %s", key.decode(errors="replace"))
        return ok


class ZapAuthenticator(ThreadAuthenticator):
    """ZAP handler thread that admits only allow-listed keys and sets User-Id to the gateway id."""

    def __init__(self, context: zmq.Context[Any], allow: AllowList) -> None:
        super().__init__(context=context, log=logging.getLogger("edgekit.collector.zap"))
        self.allow_list = allow

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(domain="*", credentials_provider=self.allow_list)

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.allow_list.gateway_for(z85.encode(client_public_key)) or ""
