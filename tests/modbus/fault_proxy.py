"""A fault-injecting TCP proxy on loopback (asyncio): pass, drop, reset, delay, half_open.

* ``drop``: close every proxied connection (FIN) and close new ones at once;
* ``reset``: abort every connection with RST (SO_LINGER 0) and reset new ones at once;
* ``delay``: forward every chunk ``delay_s`` late;
* ``half_open``: keep connections (and accept new ones) but forward nothing — a silent peer.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from contextlib import suppress


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self.delay_s = 0.0
        self.port = 0
        self.accepted = 0
        self.swallowed = 0  # chunks not forwarded in half_open mode
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        for w in list(self._conns):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._handlers, return_exceptions=True)

    @staticmethod
    def _rst(w: asyncio.StreamWriter) -> None:
        sock = w.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    def set(self, mode: str, delay_s: float = 0.0) -> None:
        self.mode, self.delay_s = mode, delay_s
        for w in list(self._conns):
            if mode == "drop":
                w.close()
            elif mode == "reset":
                self._rst(w)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        try:
            await self._proxy(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self._handlers.discard(me)

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "drop":
            writer.close()
            return
        if self.mode == "reset":
            self._rst(writer)
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._conns.update((writer, up_w))
        pumps = [asyncio.create_task(self._pump(reader, up_w)), asyncio.create_task(self._pump(up_r, writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for w in (writer, up_w):
                self._conns.discard(w)
                w.transport.abort() if self.mode == "reset" else w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                if self.mode == "half_open":
                    self.swallowed += 1
                    continue  # swallow: the peer hears nothing, and no FIN either
                if self.mode == "delay":
                    await asyncio.sleep(self.delay_s)
                dst.write(data)
                await dst.drain()
