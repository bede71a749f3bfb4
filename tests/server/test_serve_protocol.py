"""The HTTP protocol `tandem serve` runs (server/run.py): uvicorn's httptools protocol writing a response's head
in one piece with its first body bytes, so a client gets one segment for a whole answer; HEAD answers, streams,
keep-alive and a head whose body never comes stay correct."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse

from conftest import serving
from tandemlm.server.run import _Held

pytest.importorskip("httptools")


def _app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/json", methods=["GET", "HEAD"])
    async def answer() -> JSONResponse:
        return JSONResponse({"a": 1})

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def pieces() -> AsyncIterator[str]:
            yield "x" * 10
            yield "y" * 10

        return StreamingResponse(pieces(), media_type="text/plain")

    @app.get("/empty")
    async def empty() -> Response:
        return Response(status_code=204)

    return app


def test_answers_heads_streams_and_keep_alive_through_the_protocol() -> None:
    with serving(_app(), wait_ready=False) as url, httpx.Client(base_url=url) as client:
        for _ in range(3):  # one kept-alive connection
            assert client.get("/json").json() == {"a": 1}
            head = client.head("/json")
            assert head.status_code == 200 and head.headers["content-length"] == "7" and head.content == b""
            assert client.get("/stream").text == "x" * 10 + "y" * 10
            assert client.get("/empty").status_code == 204


def test_a_head_and_its_body_leave_in_one_write() -> None:
    """The protocol on a recording transport: one write per plain answer (uvicorn's own makes two)."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from tandemlm.server.run import http_protocol

    async def main(protocol_class: Any) -> list[bytes]:
        config = uvicorn.Config(_app(), log_level="warning", lifespan="off")
        config.load()
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        transport = _Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /json HTTP/1.1\r\nhost: x\r\n\r\n")
        for _ in range(100):
            if transport.writes and transport.writes[-1].endswith(b"}"):
                break
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return transport.writes

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    ours, theirs = asyncio.run(main(http_protocol())), asyncio.run(main(HttpToolsProtocol))
    assert len(ours) == 1 and ours[0].startswith(b"HTTP/1.1 200 OK") and ours[0].endswith(b'\r\n\r\n{"a":1}')
    assert len(theirs) == 2 and len(b"".join(theirs)) == len(ours[0])  # the same bytes, in two writes


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_held_bytes_go_with_the_body_on_close_or_at_the_end_never_to_a_closed_connection() -> None:
    transport: Any = _Transport()
    head = _Held(transport)
    head.write(b"HEAD")
    assert transport.writes == [] and head.head == b"HEAD"
    body = _Held(transport, head.head)
    body.write(b"body")
    body.write(b"more")
    body.flush()
    assert transport.writes == [b"HEADbody", b"more"]
    closing = _Held(transport, b"H2")
    closing.close()  # a HEAD answer closing its connection: the head goes first
    assert transport.writes[-1] == b"H2" and transport.closed
    late = _Held(transport, b"H3")
    late.flush()  # the connection is gone: nothing is written to it
    assert transport.writes[-1] == b"H2"
