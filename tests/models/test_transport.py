"""The openai engine's async path over aiohttp (models/transport.py), against real loopback HTTP servers: answers,
SSE streams, retries, gzip, and every transport failure as the typed error the httpx path gives."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from tandemlm.errors import RemoteError, RemoteTimeoutError
from tandemlm.models.openai import OpenAIModel
from tandemlm.models.transport import AiohttpTransport

pytest.importorskip("aiohttp")

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHAT = {"choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1}}  # fmt: skip


def response(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in ("content-type: application/json", f"content-length: {len(body)}", *headers))
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


@asynccontextmanager
async def server(handle: Handler) -> AsyncIterator[str]:
    """A loopback HTTP/1.1 server calling `handle(request_head_and_body, reader, writer)` per request."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)  # fmt: skip
                await handle(head + await reader.readexactly(length), reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(connection, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1"
    finally:
        srv.close()


def model(url: str, **options: object) -> OpenAIModel:
    return OpenAIModel("m", base_url=url, backoff=0.0, **options)  # type: ignore[arg-type]


def run(main: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(main())  # type: ignore[arg-type]


def test_an_answer_and_a_stream_go_through_aiohttp_on_one_pooled_connection() -> None:
    seen: list[bytes] = []
    peers: set[object] = set()
    sse = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in (
        {"choices": [{"delta": {"content": "he"}, "finish_reason": None}]},
        {"choices": [{"delta": {"content": "llo"}, "finish_reason": "stop"}]},
    )) + b"data: [DONE]\n\n"  # fmt: skip
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (sse[:30], sse[30:])) + b"0\r\n\r\n"

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        peers.add(writer.get_extra_info("peername"))
        if b'"stream": true' in request:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                         + chunked)  # fmt: skip
        else:
            writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> tuple[str, list[str], object]:
        async with server(handle) as url:
            m = model(url, api_key="sk-test")
            answer = await m.agenerate("hi")
            pieces = [c.text async for c in m.astream("hi")]
            again = await m.agenerate("hi")
            client = m._aclient[1] if m._aclient else None
            await m.aclose()
            return answer.text + again.text, pieces, client

    text, pieces, client = run(main)  # type: ignore[misc]
    assert isinstance(client, AiohttpTransport)
    assert text == "hellohello" and "".join(pieces) == "hello"
    assert len(seen) == 3 and len(peers) == 1  # kept alive, after a chunked stream too
    assert all(r.startswith(b"POST /v1/chat/completions HTTP/1.1") for r in seen)
    assert all(b"authorization: bearer sk-test" in r.lower() for r in seen)
    assert json.loads(seen[0].split(b"\r\n\r\n", 1)[1])["messages"] == [{"role": "user", "content": "hi"}]


def test_retries_honour_retry_after_and_a_gzip_body_is_decoded() -> None:
    replies = [response("503 Service Unavailable", b'{"error": {"message": "busy"}}', "retry-after: 0"),
               response("200 OK", gzip.compress(json.dumps(CHAT).encode()), "content-encoding: gzip")]  # fmt: skip

    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(replies.pop(0))

    async def main() -> str:
        async with server(handle) as url:
            m = model(url)
            try:
                return (await m.agenerate("hi")).text
            finally:
                await m.aclose()

    assert run(main) == "hello" and not replies


def test_an_error_status_is_a_remote_error_with_the_servers_message() -> None:
    async def handle(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response("400 Bad Request", b'{"error": {"message": "bad request body"}}'))

    async def main() -> None:
        async with server(handle) as url:
            m = model(url)
            try:
                await m.agenerate("hi")
            finally:
                await m.aclose()

    with pytest.raises(RemoteError, match="HTTP 400.*bad request body") as caught:
        run(main)
    assert caught.value.status == 400


def test_transport_failures_are_typed_and_retried() -> None:
    """Refused, cut off mid-answer, and silent servers give the errors the httpx path gives, after the retries."""
    calls: list[str] = []

    async def cut(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        calls.append("cut")
        writer.write(response("200 OK", json.dumps(CHAT).encode())[:-10])
        await writer.drain()
        writer.close()

    async def silent(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        calls.append("silent")
        await asyncio.sleep(5)

    async def main() -> list[Exception]:
        errors: list[Exception] = []
        async with server(cut) as url:
            free = url.replace(url.rsplit(":", 1)[1].split("/")[0], "1")  # port 1: nothing listens
            for m in (model(free, max_retries=1), model(url, max_retries=1), model(url, max_retries=0)):
                try:
                    await m.agenerate("hi")
                except RemoteError as err:
                    errors.append(err)
                finally:
                    await m.aclose()
        async with server(silent) as url:
            m = model(url, max_retries=1, timeout=0.2)
            try:
                await m.agenerate("hi")
            except RemoteError as err:
                errors.append(err)
            finally:
                await m.aclose()
        return errors

    refused, cut_retried, cut_once, timed_out = run(main)  # type: ignore[misc]
    assert "failed after 2 attempts: ConnectError" in str(refused)
    assert "failed after 2 attempts" in str(cut_retried) and "failed: " in str(cut_once)
    assert isinstance(timed_out, RemoteTimeoutError) and "timed out after 2 attempts" in str(timed_out)
    assert calls == ["cut", "cut", "cut", "silent", "silent"]


def test_an_http_proxy_from_the_environment_carries_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[bytes] = []

    async def proxy(request: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(request.split(b"\r\n", 1)[0])
        writer.write(response("200 OK", json.dumps(CHAT).encode()))

    async def main() -> str:
        async with server(proxy) as proxy_url:
            monkeypatch.setenv("HTTP_PROXY", proxy_url.removesuffix("/v1"))
            monkeypatch.setenv("NO_PROXY", "")
            m = model("http://api.example.test/v1")
            try:
                return (await m.agenerate("hi")).text
            finally:
                await m.aclose()

    assert run(main) == "hello"
    assert lines == [b"POST http://api.example.test/v1/chat/completions HTTP/1.1"]
