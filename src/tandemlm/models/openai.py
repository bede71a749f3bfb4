"""The `openai` engine: any OpenAI-compatible endpoint (vLLM, llama.cpp server, OpenAI, another tandem gateway).

One function builds the request body, and those exact bytes are both sent and written to the egress
ledger. 429, 5xx and transport errors are retried with exponential backoff (honouring Retry-After);
what remains surfaces as a typed `RemoteError` carrying the server's own message and status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import numpy as np

from tandemlm.errors import (
    AuthenticationError,
    RateLimitError,
    RemoteError,
    RemoteTimeoutError,
    UnsupportedOperationError,
    ValidationError,
)
from tandemlm.execution import current_token
from tandemlm.models.base import LanguageModel, leaving
from tandemlm.models.transport import AiohttpTransport, aiohttp_available
from tandemlm.types import (
    FEATURES,
    TOOL_CHOICES,
    Chunk,
    Completion,
    FinishReason,
    Location,
    LogProbs,
    Price,
    Request,
    TokenLogprob,
    ToolCall,
    Usage,
)

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
MAX_RETRY_AFTER_S = 60.0
# A gateway fans many requests into one engine: keep enough connections alive that a burst does not
# close and reopen them (httpx keeps 20 by default, measured to churn at 32 concurrent requests).
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)


class OpenAIModel(LanguageModel):
    """A model behind an OpenAI-compatible HTTP API (`/chat/completions`; `/completions` for raw requests).

    api_key: sent as a Bearer token; defaults to the environment variable named by `api_key_env`, and no
        Authorization header is sent when neither is set (local servers). It never appears in traces,
        errors or the repr.
    max_retries / backoff: retries after the first attempt, waiting backoff * 2**attempt seconds (or the
        server's Retry-After) on 429, 5xx, timeouts and connection errors.
    transport / async_transport: injected httpx transports (tests pass `httpx.MockTransport`, which serves
        both); clients are built on first use, so constructing the model touches no network.
    """

    sends_own_egress = True  # each body is written to the ledger right before it is sent
    supports = FEATURES  # passed through; the base class checks the answers (and asks once more)

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        name: str | None = None,
        location: Location = "cloud",
        price: Price | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        context_length: int | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name or model, location=location, price=price)
        if timeout <= 0 or max_retries < 0 or backoff < 0:
            raise ValidationError(
                f"need timeout > 0, max_retries >= 0, backoff >= 0; got {timeout}, {max_retries}, {backoff}"
            )
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self._context_length = context_length
        self._api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self._transport = transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        # an async client's pooled connections belong to the event loop that opened them
        self._aclient: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient | AiohttpTransport] | None = None
        self._closing: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()  # threads share one pooled client
        self._session_lock = threading.Lock()
        self._session: tuple[str, list[int]] | None = None  # logprobs session: (id, tokens the server holds)

    @property
    def context_length(self) -> int | None:
        return self._context_length

    def _vocab_fingerprint(self) -> str | None:
        """A tandem gateway tells its model's fingerprint (GET /tandem/models/NAME); other servers cannot: None."""
        try:
            response = self._sync_client().get(f"/tandem/models/{self.model}")
        except httpx.TransportError:
            return None
        if not response.is_success:
            return None
        fingerprint = response.json().get("vocab_fingerprint")
        return str(fingerprint) if fingerprint else None

    def close(self) -> None:
        """Close the HTTP clients. Prefer `await aclose()` from async code: it closes the async client at once."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._drop_async_client()

    async def aclose(self) -> None:
        """Close both clients from inside the event loop that used the async one (an aiohttp session must be
        closed before its loop ends; the gateway does this at shutdown). The model stays usable."""
        if self._aclient is not None and self._aclient[0] is asyncio.get_running_loop():
            _, client = self._aclient
            self._aclient = None
            await client.aclose()
        self.close()

    def _drop_async_client(self) -> None:
        if self._aclient is None:
            return
        loop, client = self._aclient
        self._aclient = None
        # sync code cannot await, and may even run on that loop's thread: schedule the close there. A loop that
        # has ended took its connections with it; `aclose` is the way to close them cleanly.
        if not loop.is_closed():
            closing = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            self._closing.add(closing)  # hold it until done, so the task is not collected first
            closing.add_done_callback(self._closing.discard)

    # ---- the wire ---------------------------------------------------------------------------------

    def _body(self, request: Request, stream: bool) -> bytes:
        """The exact JSON body sent for `request`; the egress ledger records these same bytes."""
        p = request.params
        body: dict[str, Any] = {"model": self.model}
        if request.raw:
            body["prompt"] = request.messages[0].content
        else:
            body["messages"] = [m.to_dict() for m in request.messages]
        body.update(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p)
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        if (rf := p.response_format) is not None:
            body["response_format"] = (
                {"type": "json_object"}
                if rf.schema_dict is None
                else {
                    "type": "json_schema",
                    "json_schema": {"name": rf.name, "schema": rf.schema_dict, "strict": rf.strict},
                }
            )
        if p.tools:
            body["tools"] = [t.to_dict() for t in p.tools]
            choice = p.tool_choice
            body["tool_choice"] = (
                choice if choice in TOOL_CHOICES else {"type": "function", "function": {"name": choice}}
            )
            if not p.parallel_tool_calls:
                body["parallel_tool_calls"] = False
        if p.logprobs is not None:
            body.update({"logprobs": p.logprobs} if request.raw else {"logprobs": True, "top_logprobs": p.logprobs})
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _headers(self) -> dict[str, str]:
        return {**JSON_HEADERS, "Authorization": f"Bearer {self._api_key}"} if self._api_key else dict(JSON_HEADERS)

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=self._headers(),
                    timeout=self.timeout,
                    transport=self._transport,
                    limits=POOL_LIMITS,
                )
            return self._client

    def _async_client(self) -> httpx.AsyncClient | AiohttpTransport:
        """This event loop's client: aiohttp's transport, called directly (a fifth of httpx's cost per call, see
        transport.py), or `httpx.AsyncClient` over an injected transport or where aiohttp is not installed."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            self._drop_async_client()
            client: httpx.AsyncClient | AiohttpTransport
            if self._async_transport is None and aiohttp_available():
                client = AiohttpTransport(POOL_LIMITS)
            else:
                client = httpx.AsyncClient(
                    base_url=self.base_url,
                    headers=self._headers(),
                    timeout=self.timeout,
                    transport=self._async_transport,
                    limits=POOL_LIMITS,
                )
            self._aclient = (loop, client)
        return self._aclient[1]

    async def _asend(self, path: str, body: bytes, stream: bool) -> httpx.Response:
        """One POST on this loop's client; the body is read unless `stream`."""
        client = self._async_client()
        if isinstance(client, httpx.AsyncClient):
            return await client.send(client.build_request("POST", path, content=body), stream=stream)
        response = await client.post(self.base_url + path, self._headers(), body, timeout=self.timeout, stream=stream)
        if not response.is_success:  # what the error's cause names
            response.request = httpx.Request("POST", self.base_url + path)
        return response

    def _post(self, request: Request, stream: bool) -> httpx.Response:
        return self._send(_path(request), self._body(request, stream), stream)

    def _send(self, path: str, body: bytes, stream: bool) -> httpx.Response:
        """POST with retries; the typed error when retries are spent or the status is not retryable. Each attempt
        waits no longer than the request's deadline, and a cancelled request stops between attempts."""
        client, token = self._sync_client(), current_token()
        leaving(body.decode("utf-8"))
        for attempt in itertools.count():
            failure: httpx.Response | httpx.TransportError
            token.check()
            try:
                failure = client.send(client.build_request("POST", path, content=body, timeout=self._timeout()),
                                      stream=stream)  # fmt: skip
                if failure.is_success:
                    return failure
                failure.read()  # the error body, for the message
                failure.close()
            except httpx.TransportError as err:
                failure = err
            token.sleep(self._backoff_or_raise(attempt, failure))
        raise AssertionError("unreachable")

    def _timeout(self) -> float:
        """This attempt's timeout: the engine's own, cut to what is left of the request's deadline."""
        left = current_token().remaining()
        return self.timeout if left is None else max(min(self.timeout, left), 0.001)

    async def _apost(self, request: Request, stream: bool) -> httpx.Response:
        body = self._body(request, stream)
        leaving(body.decode("utf-8"))
        for attempt in itertools.count():
            failure: httpx.Response | httpx.TransportError
            try:
                failure = await self._asend(_path(request), body, stream)
                if failure.is_success:
                    return failure
                await failure.aread()
                await failure.aclose()
            except httpx.TransportError as err:
                failure = err
            await asyncio.sleep(self._backoff_or_raise(attempt, failure))
        raise AssertionError("unreachable")

    def _backoff_or_raise(self, attempt: int, failure: httpx.Response | httpx.TransportError) -> float:
        """Seconds to wait before the next attempt, or the typed error when there is none (4xx, retries spent)."""
        response = failure if isinstance(failure, httpx.Response) else None
        if response is not None and response.status_code != 429 and response.status_code < 500:
            raise self._error(failure, attempt + 1) from _cause(failure)
        if attempt >= self.max_retries:
            raise self._error(failure, attempt + 1) from _cause(failure)
        hint = _retry_after(response)
        # like OpenAI's SDK: honour a short Retry-After; a long one would hang the caller, so back off as usual
        return hint if hint is not None and hint <= MAX_RETRY_AFTER_S else self.backoff * 2**attempt

    def _error(self, failure: httpx.Response | httpx.TransportError, attempts: int) -> RemoteError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        where = f"{self.name}: POST {self.base_url}"
        if isinstance(failure, httpx.TimeoutException):
            return RemoteTimeoutError(f"{where} timed out{tries} (timeout {self.timeout:g} s): {failure!r}")
        if isinstance(failure, httpx.TransportError):
            return RemoteError(f"{where} failed{tries}: {type(failure).__name__}: {failure}")
        status = failure.status_code
        message = f"{where} answered HTTP {status}{tries}: {_server_message(failure.text)}"
        if status in (401, 403):
            return AuthenticationError(f"{message}; check the api_key argument or ${self.api_key_env}", status=status)
        return (RateLimitError if status == 429 else RemoteError)(message, status=status)

    # ---- what the base class calls ----------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        return self._parse(request, self._post(request, stream=False))

    async def _agenerate(self, request: Request) -> Completion:
        return self._parse(request, await self._apost(request, stream=False))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        response = self._post(request, stream=True)
        parser = _SSEParser(self, request)
        token = current_token()
        try:
            for line in response.iter_lines():
                token.check()
                if piece := parser.feed(line):
                    yield piece
                if parser.done:
                    break
        except httpx.TransportError as err:  # mid-stream: text was already handed out, so no retry
            raise self._error(err, 1) from err
        finally:
            response.close()
        yield parser.finish()

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        response = await self._apost(request, stream=True)
        parser = _SSEParser(self, request)
        try:
            async for line in response.aiter_lines():
                if piece := parser.feed(line):
                    yield piece
                if parser.done:
                    break
        except httpx.TransportError as err:
            raise self._error(err, 1) from err
        finally:
            await response.aclose()
        yield parser.finish()

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        return self._extension_logprobs(tokens, [len(tokens) - 1], top_k)[0]

    def _logprobs_after(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        return self._extension_logprobs(tokens, positions, top_k)

    def _logprobs_body(self, tokens: list[int], positions: list[int], top_k: int | None) -> bytes:
        """The body of tandem's /v1/tandem/logprobs: only the tokens the server's session does not hold yet."""
        session_id, held = self._session or (None, [])
        offset = 0
        for a, b in zip(held, tokens, strict=False):
            if a != b:
                break
            offset += 1
        body = {"model": self.model, "session_id": session_id, "offset": offset, "tokens": tokens[offset:],
                "positions": positions, "top_k": top_k}  # fmt: skip
        return json.dumps(body).encode("utf-8")

    def _extension_logprobs(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        """Next-token distributions from a tandem gateway's logprobs extension (KV reuse via a session).

        Calls from one model are serialised: each body depends on what the previous call left in the session.
        """
        with self._session_lock:
            try:
                response = self._send("/tandem/logprobs", self._logprobs_body(tokens, positions, top_k), stream=False)
            except RemoteError as err:
                if err.status in (404, 405):
                    raise UnsupportedOperationError(
                        f"{self.name}: {self.base_url} has no /tandem/logprobs endpoint (not a tandem gateway); a "
                        "plain OpenAI-compatible endpoint gives no next-token distribution for a token prefix"
                    ) from err
                raise
            try:
                data = response.json()
                self._session = (str(data["session_id"]), list(tokens))
                size = int(data["vocab_size"])
                return [
                    LogProbs(size, np.asarray(item["values"], dtype=np.float64))
                    if "values" in item
                    else LogProbs.from_top(size, [(int(i), float(v)) for i, v in item["top"]])
                    for item in data["logprobs"]
                ]
            except (ValueError, KeyError, TypeError) as err:
                self._session = None
                raise RemoteError(f"{self.name}: malformed logprobs response: {err}", response.status_code) from err

    def _parse(self, request: Request, response: httpx.Response) -> Completion:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = (choice["text"] if request.raw else choice["message"]["content"]) or ""
            calls = () if request.raw else tuple(_tool_call(c) for c in choice["message"].get("tool_calls") or ())
            usage = data.get("usage") or {}
            counts = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            logprobs = _logprobs(choice.get("logprobs"), request.raw) if request.params.logprobs is not None else None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise RemoteError(
                f"{self.name}: unexpected response from {self.base_url}: {type(err).__name__}: {err}; "
                f"body: {response.text[:300]!r}",
                status=response.status_code,
            ) from err
        finish = "tool_calls" if calls else _finish(choice.get("finish_reason"))
        return Completion(text, finish, counts, self.name, tool_calls=calls, logprobs=logprobs)


class _SSEParser:
    """Turns server-sent event lines into text pieces, then the final chunk with finish reason and usage."""

    def __init__(self, model: OpenAIModel, request: Request) -> None:
        self.model = model
        self.raw = request.raw
        self.pieces: list[str] = []
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.done = False
        self.calls: dict[int, dict[str, str]] = {}  # streamed tool calls by index: id, name, arguments so far
        self.logprobs: list[TokenLogprob] | None = [] if request.params.logprobs is not None else None

    def feed(self, line: str) -> Chunk | None:
        if not line.startswith("data:"):
            return None  # blank separators, comments (": ping") and event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return None
        try:
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            raise RemoteError(f"{self.model.name}: invalid event in the stream: {payload[:300]!r}") from err
        if "error" in data:  # servers report failures after the 200 status line this way
            raise RemoteError(f"{self.model.name}: the stream failed: {_server_message(payload)}")
        if usage := data.get("usage"):
            self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        piece = None
        entries: tuple[TokenLogprob, ...] = ()
        try:
            for choice in data.get("choices") or ():
                delta = choice.get("delta") or {}
                piece = choice.get("text") if self.raw else delta.get("content")
                for call in delta.get("tool_calls") or ():
                    held = self.calls.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                    function = call.get("function") or {}
                    held["id"] = call.get("id") or held["id"]
                    held["name"] += function.get("name") or ""
                    held["arguments"] += function.get("arguments") or ""
                if self.logprobs is not None and choice.get("logprobs"):
                    entries = _logprobs(choice["logprobs"], self.raw)
                    self.logprobs.extend(entries)
                if choice.get("finish_reason"):
                    self.finish_reason = _finish(choice["finish_reason"])
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise RemoteError(f"{self.model.name}: malformed event in the stream ({err}): {payload[:300]!r}") from err
        if piece:
            self.pieces.append(piece)
        return Chunk(str(piece or ""), logprobs=entries) if piece or entries else None

    def finish(self) -> Chunk:
        if self.finish_reason is None:
            raise RemoteError(f"{self.model.name}: the stream ended without a finish reason")
        usage = self.usage or Usage(0, len(self.pieces))  # no usage chunk: each piece is about one token
        try:
            calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(self.calls.items()))
        except ValueError as err:
            raise RemoteError(f"{self.model.name}: a streamed tool call is malformed: {err}") from err
        finish: FinishReason = "tool_calls" if calls else self.finish_reason
        logprobs = tuple(self.logprobs) if self.logprobs is not None else None
        completion = Completion(
            "".join(self.pieces), finish, usage, self.model.name, tool_calls=calls, logprobs=logprobs
        )
        return Chunk("", finish, completion)


def _path(request: Request) -> str:
    return "/completions" if request.raw else "/chat/completions"


def _finish(reason: object) -> FinishReason:
    if reason in ("tool_calls", "function_call"):
        return "tool_calls"
    if reason == "content_filter":  # the endpoint's own filter cut the answer (Azure OpenAI)
        return "content_filter"
    return "length" if reason == "length" else "stop"


def _tool_call(data: dict[str, Any]) -> ToolCall:
    function = data["function"]
    return ToolCall(str(data.get("id") or ""), function["name"], function.get("arguments") or "")


def _logprobs(data: dict[str, Any] | None, raw: bool) -> tuple[TokenLogprob, ...]:
    """OpenAI's logprobs object, chat (`content` entries) or legacy completions (parallel lists), as entries."""
    if not data:
        return ()
    if not raw:
        return tuple(
            TokenLogprob(
                e["token"],
                float(e["logprob"]),
                _bytes(e),
                tuple(TokenLogprob(t["token"], float(t["logprob"]), _bytes(t)) for t in e.get("top_logprobs") or ()),
            )
            for e in data.get("content") or ()
        )
    tops = data.get("top_logprobs") or [None] * len(data["tokens"])
    return tuple(
        TokenLogprob(
            tok,
            float(lp),
            tok.encode("utf-8"),
            tuple(TokenLogprob(t, float(v), t.encode("utf-8")) for t, v in (top or {}).items()),
        )
        for tok, lp, top in zip(data["tokens"], data["token_logprobs"], tops, strict=True)
    )


def _bytes(entry: dict[str, Any]) -> bytes:
    raw = entry.get("bytes")
    return bytes(raw) if raw is not None else str(entry["token"]).encode("utf-8")


def _server_message(text: str) -> str:
    """The server's own message: OpenAI's {"error": {"message": ...}}, FastAPI's {"detail": ...}, or the raw text."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if error is not None:
            return error if isinstance(error, str) else json.dumps(error)
    return text.strip()[:1000] or "(empty body)"


def _cause(failure: httpx.Response | httpx.TransportError) -> Exception:
    """What to chain the typed error to: the transport error, or httpx's own exception for the response."""
    if isinstance(failure, httpx.Response):
        return httpx.HTTPStatusError(f"HTTP {failure.status_code}", request=failure.request, response=failure)
    return failure


def _retry_after(response: httpx.Response | None) -> float | None:
    """The Retry-After header in seconds; None when absent or an HTTP date (servers of this API send seconds)."""
    try:
        return max(0.0, float(response.headers["retry-after"])) if response is not None else None
    except (KeyError, ValueError):
        return None
