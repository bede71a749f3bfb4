"""Running the gateway under uvicorn, with a shutdown that does not wait on in-flight generations.

On SIGTERM or Ctrl-C uvicorn stops accepting and waits for open connections. Before it waits, the
gateway's shutdown token fires: every request's model work stops at its next token, streams end with
an in-band 503 error, and the process exits within seconds (`GRACE_S` bounds what is left).
"""

from __future__ import annotations

import asyncio
import gc
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from tandemlm.server.state import GatewayState

GRACE_S = 5  # after the shutdown token fired, connections still open this long are closed


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: GatewayState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.state.stop()
        super().handle_exit(sig, frame)


def serve_app(app: FastAPI, *, host: str, port: int, log_level: str) -> None:
    """Serve until SIGTERM/SIGINT; in-flight work is cancelled at once rather than awaited."""
    # uvicorn builds each access-log line before its logger drops it: no access log unless it would be shown
    access_log = log_level.lower() in ("trace", "debug", "info")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=GRACE_S, http=http_protocol())  # fmt: skip
    # the modules, schemas and routes built so far live as long as the process: keep the collector from walking
    # them again on every full collection (each one a pause of tens of ms with this many objects; ~0.1 ms/request)
    gc.freeze()
    GatewayServer(config, app.state.tandem).run()


def http_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol, writing a response's head with its first body piece (uvicorn's own writes
    them in two sends: two segments, and a client that wakes twice for one answer); "auto" without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    except ImportError:
        return "auto"

    class Cycle(RequestResponseCycle):
        _head = b""

        async def send(self, message: Any) -> None:
            if message["type"] == "http.response.start" and not self.response_started:
                transport, held = self.transport, _Held(self.transport)
                self.transport = held  # type: ignore[assignment]
                try:
                    await super().send(message)
                finally:
                    self.transport, self._head = transport, held.head
                return
            if not self._head:
                await super().send(message)
                return
            transport, held = self.transport, _Held(self.transport, self._head)
            self._head, self.transport = b"", held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
                held.flush()  # a HEAD answer, or a failed send, wrote no body: the head still goes

    class Protocol(HttpToolsProtocol):
        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            cycle.__class__ = Cycle  # created by uvicorn's own header handling; its ASGI task starts here
            super()._start_asgi_task(cycle, app)

    return Protocol


class _Held:
    """Stands in for a connection's transport while a response's head waits for its body: the head's bytes are
    held, then written in one piece with the first body bytes (or on close, or at the end of the send)."""

    def __init__(self, transport: Any, head: bytes | None = None) -> None:
        self.transport = transport
        self.writing_body = head is not None
        self.head = head or b""

    def write(self, data: bytes) -> None:
        if not self.writing_body:
            self.head += data
            return
        self.transport.write(self.head + data)
        self.head = b""

    def flush(self) -> None:
        if self.writing_body and self.head and not self.transport.is_closing():
            self.transport.write(self.head)
        self.head = b""

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)
