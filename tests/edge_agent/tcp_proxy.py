"""A TCP proxy that can black-hole traffic: a network drop without a FIN or RST.

A server restart closes sockets, which a client notices at once; a pulled cable or a dead
switch does not: bytes simply stop arriving. ``blackhole()`` makes the proxy swallow traffic in
both directions on every connection (old and new) until ``restore()``; connections opened
during the outage stay dead afterwards, as TCP connections through a rebooted NAT would.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.edge_agent.kiln_server import free_port


class BlackholeProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.dropped = False
        self._server: asyncio.base_events.Server | None = None
        self._conns: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, bool]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for a, b, _ in self._conns:
                a.close()
                b.close()

    def blackhole(self) -> None:
        self.dropped = True

    def restore(self) -> None:
        self.dropped = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        born_dead = self.dropped
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._conns.append((writer, up_writer, born_dead))
        # a connection opened (or alive) during the outage never carries data again
        state = {"dead": born_dead}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if self.dropped:
                        state["dead"] = True
                    if state["dead"]:
                        continue
                    dst.write(data)
                    await dst.drain()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        writer.close()
        up_writer.close()
