"""A lean HTTP/1.1 client for plain-http upstreams (a local vLLM, llama.cpp server or another gateway).

The gateway's own cost per request was dominated by its upstream client: on the gateway benchmark's instant
backend one POST and its answer cost ~250 µs of CPU through aiohttp's session (request and response objects,
timers, tracing hooks, its stream reader) against ~40 µs for the bytes themselves. This client writes the
request head by hand and parses the answer with httptools (llhttp, the parser uvicorn uses), over pooled
keep-alive connections that are plain asyncio protocols. Everything above it stays httpx: it returns
`httpx.Response` and raises httpx's transport errors, so retries, typed errors, the egress ledger and SSE
parsing are the engine's one code path.

Only `http://` without a proxy comes here (see transport.py); TLS and proxies go through aiohttp.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx

HIGH_WATER = 1 << 20  # bytes of a streamed body held unread before the connection stops reading
httptools: Any = None  # the module, imported on first use (the `server` extra); False where it is missing


def available() -> bool:
    """Whether httptools is installed (the `server` extra): without it plain http goes through aiohttp."""
    global httptools
    if httptools is None:
        try:
            import httptools as module

            httptools = module
        except ImportError:
            httptools = False
    return httptools is not False


class _Exchange:
    """One request's answer as it arrives: httptools calls these methods while it parses."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.head = loop.create_future()  # set when the headers are in
        self.wake: asyncio.Future[None] | None = None  # a streaming reader waiting for more
        self.complete = False
        self.error: httpx.TransportError | None = None
        self.received = 0  # bytes of the answer seen (0: the connection died before it said anything)
        self.length_known = False  # content-length or chunked: the end is marked, not the connection's close
        self.keep_alive = False

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.length_known = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message is complete
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        if not self.head.done():
            self.head.set_result(None)
        self._wake()

    def fail(self, error: httpx.TransportError) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved here: a failure nobody awaits is no warning
        self._wake()

    def _wake(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time (no pipelining)."""

    def __init__(self, pool: Http1Pool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.paused = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self.silent = False  # whether its last exchange failed before the upstream sent a byte

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's subclasses

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection cannot be trusted again
            self.close()
            return
        self.last_read = self.pool.loop.time()
        exchange.received += len(data)
        try:
            exchange.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            exchange.fail(httpx.RemoteProtocolError("the upstream switched protocols"))
            self.close()
        except httptools.HttpParserError as err:
            exchange.fail(httpx.RemoteProtocolError(f"malformed HTTP answer: {err}"))
            self.close()
        else:
            if exchange.buffered > HIGH_WATER and not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)  # the one place a connection stops counting against the limit
        exchange = self.exchange
        if exchange is None or exchange.complete:
            return
        if exchange.head.done() and not exchange.length_known and exchange.error is None:
            exchange.on_message_complete()  # a body delimited by the connection's close (HTTP/1.0 style)
            return
        why = f": {exc}" if exc else ""
        exchange.fail(httpx.ReadError(f"ServerDisconnectedError: the upstream closed the connection{why}"))

    def resume(self, exchange: _Exchange) -> None:
        if self.paused and exchange.buffered <= HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


class Http1Pool:
    """Keep-alive connections to plain-http hosts, at most `max_connections` open at once (then callers wait)."""

    def __init__(self, limits: httpx.Limits) -> None:
        self.max_connections = limits.max_connections or 0
        self.max_idle = limits.max_keepalive_connections
        self.keepalive_s = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self.loop = asyncio.get_running_loop()
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._targets: dict[str, tuple[tuple[str, int], bytes]] = {}  # url -> (host, port), request line + Host

    async def post(self, url: str, headers: dict[str, str], body: bytes, *, timeout: float, stream: bool
                   ) -> httpx.Response:  # fmt: skip
        """POST `body`; the answer is read whole unless `stream` (then as the caller iterates its body)."""
        key, start = self._target(url)
        head = start + _head(headers, len(body))
        reused, conn = await self._acquire(key, timeout)
        try:
            exchange = await self._exchange(conn, head + body, timeout)
        except httpx.ReadError:
            if not (reused and conn.silent):
                raise
            # a kept-alive connection the upstream closed while idle, before it read a byte: once more, afresh
            reused, conn = await self._acquire(key, timeout, fresh=True)
            exchange = await self._exchange(conn, head + body, timeout)
        headers_out = [(k, v) for k, v in exchange.headers if k.lower() != b"content-encoding"]
        decoder = _decoder(exchange.headers)
        ext = {"http_version": b"HTTP/1.1", "reason_phrase": exchange.reason}
        if stream:
            body_stream = _Body(self, conn, exchange, timeout, decoder)
            return httpx.Response(exchange.status, headers=headers_out, stream=body_stream, extensions=ext)
        try:
            while not exchange.complete:
                await self._wait(conn, exchange, timeout)
            content = b"".join(exchange.chunks)
            content = decoder(content, True) if decoder is not None else content
        except BaseException:
            self.release(conn, reuse=False)
            raise
        self.release(conn, reuse=exchange.keep_alive)
        return httpx.Response(exchange.status, headers=headers_out, content=content, extensions=ext)

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    # ---- connections ------------------------------------------------------------------------------

    def _target(self, url: str) -> tuple[tuple[str, int], bytes]:
        if (found := self._targets.get(url)) is None:
            parts = urllib.parse.urlsplit(url)
            host, port = parts.hostname or "", parts.port or 80
            netloc = parts.netloc.rpartition("@")[2]  # credentials in a URL do not go into the Host header
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            found = self._targets[url] = ((host, port), f"POST {target} HTTP/1.1\r\nHost: {netloc}\r\n".encode())
        return found

    async def _acquire(self, key: tuple[str, int], timeout: float, fresh: bool = False) -> tuple[bool, _Connection]:
        """(whether it was kept alive, a connection to `key`): the most recently used idle one, else a new one."""
        while True:
            idle = self._idle.get(key)
            now = self.loop.time()
            while idle and not fresh:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive_s:
                    return True, conn
                self._drop(conn)
            if not self.max_connections or self._open < self.max_connections:
                break
            self._close_an_idle_one()  # of another host: its close frees a place (connection_lost)
            waiter = self.loop.create_future()  # woken when a connection is handed back or closes
            self._waiting.append(waiter)
            await waiter
        self._open += 1
        conn = _Connection(self, key)
        try:
            async with asyncio.timeout(timeout):
                await self.loop.create_connection(lambda: conn, *key)
        except BaseException as err:
            self._closed_one()  # no connection, so no connection_lost to count it
            where = f"{key[0]}:{key[1]}"
            if isinstance(err, TimeoutError):
                raise httpx.ConnectTimeout(f"ConnectionTimeoutError: connecting to {where} took over {timeout:g} s"
                                           ) from err  # fmt: skip
            if isinstance(err, OSError):
                raise httpx.ConnectError(f"ClientConnectorError: cannot connect to {where}: {err}") from err
            raise
        return False, conn

    async def _exchange(self, conn: _Connection, data: bytes, timeout: float) -> _Exchange:
        """Send one request on `conn` and wait for the answer's head."""
        exchange = conn.exchange = _Exchange(self.loop)
        conn.silent = False
        try:
            assert conn.transport is not None
            if conn.closed:
                raise httpx.ReadError("ServerDisconnectedError: the upstream closed the connection")
            conn.last_read = self.loop.time()
            conn.transport.write(data)
            while not exchange.head.done():
                await self._wait(conn, exchange, timeout)
            await exchange.head  # raises the failure
        except BaseException:
            conn.silent = exchange.received == 0
            self.release(conn, reuse=False)
            raise
        return exchange

    async def _wait(self, conn: _Connection, exchange: _Exchange, timeout: float) -> None:
        """Until the exchange moves on; ReadTimeout after `timeout` s without a byte from the upstream."""
        if exchange.error is not None:
            raise exchange.error
        waiter = exchange.wake = self.loop.create_future()
        timer = self.loop.call_at(conn.last_read + timeout, _expire, conn, exchange, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()
            exchange.wake = None
        if exchange.error is not None:
            raise exchange.error

    def release(self, conn: _Connection, *, reuse: bool) -> None:
        """Hand `conn` back after its exchange: idle for the next request, or closed."""
        conn.exchange = None
        idle = self._idle.setdefault(conn.key, [])
        if reuse and not conn.closed and not conn.paused and len(idle) < (self.max_idle or 0):
            conn.idle_since = self.loop.time()
            idle.append(conn)
            self._wake_one()
            return
        conn.close()

    def forget(self, conn: _Connection) -> None:
        """A connection closed (by either side): never hand it out again, and it no longer counts."""
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
        self._closed_one()

    def _drop(self, conn: _Connection) -> None:
        conn.exchange = None
        conn.close()

    def _close_an_idle_one(self) -> None:
        for conns in self._idle.values():
            if conns:
                self._drop(conns.pop(0))
                return

    def _closed_one(self) -> None:
        self._open = max(0, self._open - 1)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _expire(conn: _Connection, exchange: _Exchange, waiter: asyncio.Future[None], timeout: float) -> None:
    """The read timer: fail the exchange when the upstream has been silent `timeout` s, else wait on."""
    if waiter.done():
        return
    left = conn.last_read + timeout - conn.pool.loop.time()
    if left > 0:
        conn.pool.loop.call_later(left, _expire, conn, exchange, waiter, timeout)
        return
    exchange.fail(httpx.ReadTimeout(f"TimeoutError: no answer from the upstream in {timeout:g} s"))
    conn.close()


class _Body(httpx.AsyncByteStream):
    """A streamed answer's body, read as the caller iterates; closing it early closes the connection."""

    def __init__(self, pool: Http1Pool, conn: _Connection, exchange: _Exchange, timeout: float,
                 decoder: Any) -> None:  # fmt: skip
        self.pool, self.conn, self.exchange, self.timeout, self.decoder = pool, conn, exchange, timeout, decoder
        self.released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        exchange = self.exchange
        while True:
            while exchange.chunks:
                chunk = exchange.chunks.popleft()
                exchange.buffered -= len(chunk)
                self.conn.resume(exchange)
                yield self.decoder(chunk, False) if self.decoder is not None else chunk
            if exchange.complete:
                if self.decoder is not None and (rest := self.decoder(b"", True)):
                    yield rest
                self._release()
                return
            await self.pool._wait(self.conn, exchange, self.timeout)

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if not self.released:
            self.released = True
            done = self.exchange.complete and not self.exchange.chunks
            self.pool.release(self.conn, reuse=done and self.exchange.keep_alive)


def _head(headers: dict[str, str], length: int) -> bytes:
    """The header lines after the request line and Host."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if "\n" in lines.replace("\r\n", "") or "\r" in lines.replace("\r\n", ""):
        raise httpx.LocalProtocolError("a request header contains a line break")
    try:
        return f"{lines}Content-Length: {length}\r\n\r\n".encode("latin-1")
    except UnicodeEncodeError as err:
        raise httpx.LocalProtocolError(f"a request header is not latin-1 text: {err}") from err


def _decoder(headers: list[tuple[bytes, bytes]]) -> Any:
    """`decode(data, last)` for a gzip or deflate body (None for identity), as aiohttp decoded them."""
    coding = next((v.strip().lower() for k, v in headers if k.lower() == b"content-encoding"), b"identity")
    if coding in (b"identity", b""):
        return None
    if coding not in (b"gzip", b"x-gzip", b"deflate"):
        raise httpx.DecodingError(f"unsupported content-encoding {coding.decode('latin-1')!r}")
    state: list[Any] = [zlib.decompressobj(16 + zlib.MAX_WBITS if coding != b"deflate" else zlib.MAX_WBITS), b""]

    def decode(data: bytes, last: bool) -> bytes:
        try:
            out = state[0].decompress(data)
            return out + state[0].flush() if last else out
        except zlib.error as err:
            if coding == b"deflate" and not state[1]:  # raw deflate without the zlib wrapper, as some servers send
                state[0], state[1] = zlib.decompressobj(-zlib.MAX_WBITS), b"raw"
                return decode(data, last)
            raise httpx.DecodingError(f"the {coding.decode()} body cannot be decoded: {err}") from err

    return decode
