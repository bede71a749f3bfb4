"""httpx's transport interface over aiohttp, for the openai engine's async calls.

Measured on the gateway benchmark's instant backend (2 shared cores), one POST and its JSON answer cost
about 1.2 ms of CPU through `httpx.AsyncClient` (its client layers, then httpcore, h11 and anyio), and about
0.3 ms through aiohttp's session (a C HTTP parser, a lean pool). That difference was most of the gateway's
own time per request. The engine keeps httpx's types (`Request`, `Response`, its exceptions) everywhere above
this transport, so retries, errors, the egress ledger and SSE parsing stay one code path; an injected httpx
transport (tests) goes through `httpx.AsyncClient` as before.

Plain `http://` upstreams without a proxy (a local server, another gateway) skip aiohttp too: http1.py writes the
request by hand and parses the answer with httptools over pooled keep-alive connections (~50 µs a call against
aiohttp's ~250 µs on the same benchmark). TLS and proxies stay with aiohttp.

aiohttp and httptools come with the `server` extra; without aiohttp the engine falls back to `httpx.AsyncClient`,
without httptools plain http goes through aiohttp.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx

from tandemlm.models import http1

if TYPE_CHECKING:
    import aiohttp

_SKIP = frozenset(["host", "content-length", "transfer-encoding"])  # aiohttp writes these from the request itself


def aiohttp_available() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (opened on first use, in the running event loop) behind httpx's transport API, plus
    `post`, which the engine calls directly: building an `httpx.Request` (URL parsing, header normalisation)
    costs as much as aiohttp's whole request. `post` to plain http without a proxy uses http1.py's pool instead.

    Proxies come from the environment as with httpx (HTTP(S)_PROXY, NO_PROXY), read once per URL: aiohttp's
    own `trust_env` looks them up in a thread on every request. Cookies are not kept (an API client has no use
    for them, and the jar costs time on every response); bodies are decompressed by aiohttp.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._plain: http1.Http1Pool | None = None  # plain http without a proxy (opened on first use)
        self._proxies: dict[str, str | None] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def post(self, url: str, headers: dict[str, str], body: bytes, *, timeout: float, stream: bool
                   ) -> httpx.Response:  # fmt: skip
        """POST `body` to `url`; the answer's body is read here unless `stream` (then as the caller iterates)."""
        if url.startswith("http://") and http1.available() and self._proxy(url) is None:
            plain = self._plain or self._open_plain()
            return await plain.post(url, headers, body, timeout=timeout, stream=stream)
        if (limit := self._timeouts.get(timeout)) is None:
            import aiohttp

            limit = self._timeouts[timeout] = aiohttp.ClientTimeout(connect=timeout, sock_read=timeout)
        return await self._send("POST", url, headers, body, limit, stream)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        t = request.extensions.get("timeout", {})
        limit = aiohttp.ClientTimeout(connect=t.get("pool"), sock_connect=t.get("connect"), sock_read=t.get("read"))
        headers = {k: v for k, v in request.headers.items() if k not in _SKIP}
        response = await self._send(request.method, str(request.url), headers, request.content, limit, True)
        response.request = request
        return response

    async def aclose(self) -> None:
        if self._plain is not None:
            plain, self._plain = self._plain, None
            await plain.aclose()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open_plain(self) -> http1.Http1Pool:
        self._plain = http1.Http1Pool(self.limits)
        return self._plain

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry if self.limits.keepalive_expiry is not None else 15.0,
        )
        self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _proxy(self, url: str) -> str | None:
        if url not in self._proxies:
            parts = urllib.parse.urlsplit(url)
            bypass = urllib.request.proxy_bypass(parts.hostname or "")
            self._proxies[url] = None if bypass else urllib.request.getproxies().get(parts.scheme)
        return self._proxies[url]

    async def _send(self, method: str, url: str, headers: dict[str, str], body: bytes, limit: aiohttp.ClientTimeout,
                    stream: bool) -> httpx.Response:  # fmt: skip
        session = self._session or self._open()
        try:
            response = await session.request(method, url, headers=headers, data=body or None, allow_redirects=False,
                                             proxy=self._proxy(url), timeout=limit)  # fmt: skip
        except Exception as err:  # cancellation (a BaseException) passes through untouched
            raise _httpx_error(err) from err
        head = [(k, v) for k, v in response.raw_headers if k.lower() != b"content-encoding"]  # decoded already
        ext = {"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")}
        if stream:
            return httpx.Response(response.status, headers=head, stream=_Body(response), extensions=ext)
        try:
            content = await response.read()
        except Exception as err:
            raise _httpx_error(err) from err
        finally:
            response.release()
        return httpx.Response(response.status, headers=head, content=content, extensions=ext)


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        except Exception as err:
            raise _httpx_error(err) from err

    async def aclose(self) -> None:
        # a body read to its end hands the connection back to the pool; one left unread closes it
        self.response.release()


def _httpx_error(err: Exception) -> httpx.TransportError:
    """The httpx exception the engine's retry and error logic expects for an aiohttp failure; anything else is
    a TransportError too, so nothing from aiohttp escapes untyped."""
    import aiohttp

    kind: type[httpx.TransportError]
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(err, asyncio.TimeoutError):  # aiohttp's read timeouts are TimeoutErrors too
        kind = httpx.ReadTimeout
    elif isinstance(err, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        kind = httpx.ProxyError
    elif isinstance(err, aiohttp.ClientConnectorError):  # refused, unreachable, DNS, TLS handshake
        kind = httpx.ConnectError
    elif isinstance(err, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        kind = httpx.UnsupportedProtocol
    elif isinstance(err, aiohttp.ClientPayloadError):
        kind = httpx.RemoteProtocolError
    elif isinstance(err, (aiohttp.ClientError, OSError)):  # the server closed the connection, a reset
        kind = httpx.ReadError
    else:
        kind = httpx.TransportError
    return kind(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
