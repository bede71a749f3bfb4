"""The lean HTTP/1.1 client of plain-http upstreams (models/http1.py), against loopback servers: which path a URL
takes, kept-alive connections the server closed, bodies delimited by the connection's close, deflate, a stream
closed early, the connection limit, and uvloop's transports."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest
from test_transport import CHAT, model, response, run, server

from tandemlm.models.transport import AiohttpTransport

pytest.importorskip("httptools")


def _transport(m: object) -> AiohttpTransport:
    client = m._aclient[1] if m._aclient else None  # type: ignore[attr-defined]
    assert isinstance(client, AiohttpTransport)
    return client


def test_plain_http_goes_through_the_lean_client_and_https_does_not() -> None:
    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> tuple[bool, bool]:
        async with server(handle) as url:
            m = model(url)
            await m.agenerate("hi")
            transport = _transport(m)
            used = transport._plain is not None and transport._session is None
            await m.aclose()
            return used, transport._plain is None

    assert run(main) == (True, True)  # used for http://, and closed with the model's async clients


def test_a_kept_alive_connection_the_server_closed_is_replaced_without_a_retry() -> None:
    """A server closes an idle connection (its keep-alive timeout): the next request opens a new one at once,
    without the engine's backoff, and the server sees each request once."""
    seen: list[bytes] = []

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        writer.write(response("200 OK", json.dumps(CHAT).encode()))
        await writer.drain()
        writer.close()  # no "connection: close" header: the client learns it only from the closed socket

    async def main() -> list[str]:
        async with server(handle) as url:
            m = model(url, max_retries=0)
            texts = []
            for _ in range(3):
                texts.append((await m.agenerate("hi")).text)
                await asyncio.sleep(0.05)
            await m.aclose()
            return texts

    assert run(main) == ["hello"] * 3 and len(seen) == 3


def test_a_stale_connection_is_retried_once_on_a_fresh_one() -> None:
    """The race the test above avoids: the server closes the idle connection as the request is written."""
    seen: list[bytes] = []

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        if len(seen) == 2:  # the second request arrives on the kept-alive connection: drop it unanswered
            writer.transport.abort()
            return
        writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> list[str]:
        async with server(handle) as url:
            m = model(url, max_retries=0)
            texts = [(await m.agenerate("hi")).text for _ in range(2)]
            await m.aclose()
            return texts

    assert run(main) == ["hello", "hello"] and len(seen) == 3


def test_a_body_without_a_length_ends_with_the_connection_and_deflate_is_decoded() -> None:
    bodies = [zlib.compress(json.dumps(CHAT).encode()), json.dumps(CHAT).encode()]

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = bodies.pop(0)
        if bodies:
            writer.write(response("200 OK", body, "content-encoding: deflate"))
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    async def main() -> list[str]:
        async with server(handle) as url:
            m = model(url, max_retries=0)
            texts = [(await m.agenerate("hi")).text for _ in range(2)]
            await m.aclose()
            return texts

    assert run(main) == ["hello", "hello"] and not bodies


def test_a_stream_closed_early_closes_its_connection_and_the_next_call_opens_another() -> None:
    peers: list[object] = []

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername"))
        if b'"stream": true' in request:
            event = {"choices": [{"delta": {"content": "he"}, "finish_reason": None}]}
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            piece = f"data: {json.dumps(event)}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))  # and never the end
        else:
            writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> tuple[str, str, int]:
        async with server(handle) as url:
            m = model(url, max_retries=0)
            stream = m.astream("hi")
            first = await anext(stream)
            await stream.aclose()
            answer = await m.agenerate("hi")
            open_now = _transport(m)._plain._open  # type: ignore[union-attr]
            await m.aclose()
            return first.text, answer.text, open_now

    first, answer, open_now = run(main)  # type: ignore[misc]
    assert (first, answer) == ("he", "hello")
    assert len(set(peers)) == 2 and open_now == 1  # the half-read stream's connection was closed, not reused


def test_the_connection_limit_makes_callers_wait_not_fail() -> None:
    active: list[int] = [0, 0]  # now, most at once

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        active[0] += 1
        active[1] = max(active)
        await asyncio.sleep(0.02)
        active[0] -= 1
        writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> list[str]:
        async with server(handle) as url:
            m = model(url, max_retries=0)
            import httpx

            transport = AiohttpTransport(httpx.Limits(max_connections=2, max_keepalive_connections=2))
            m._aclient = (asyncio.get_running_loop(), transport)
            texts = await asyncio.gather(*(m.agenerate("hi") for _ in range(6)))
            await m.aclose()
            return [t.text for t in texts]

    assert run(main) == ["hello"] * 6 and active[1] == 2


def test_under_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> list[str]:
        async with server(handle) as url:
            m = model(url)
            texts = [(await m.agenerate("hi")).text for _ in range(2)]
            await m.aclose()
            return texts

    assert uvloop.run(main()) == ["hello", "hello"]
