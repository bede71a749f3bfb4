"""The `openai` engine: any OpenAI-compatible endpoint (vLLM, llama.cpp server, OpenAI, another tandem gateway).

One function builds the request body, and those exact bytes are both sent and written to the egress
ledger. 429, 5xx and transport errors are retried with exponential backoff (honouring Retry-After);
what remains surfaces as a typed `RemoteError` carrying the server's own message and status.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, fields
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tandemlm.errors import (
    AuthenticationError,
    RateLimitError,
    RemoteError,
    RemoteTimeoutError,
    UnsupportedOperationError,
)
from tandemlm.models.base import LanguageModel
from tandemlm.types import Chunk, Completion, FinishReason, Location, LogProbs, Price, Request, Usage

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
MAX_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class _StreamingRequest(Request):
    """Marks a request that `stream`/`astream` is serving, so `_egress` returns the streaming body."""


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
        # an AsyncClient's pooled connections belong to the event loop that opened them
        self._aclient: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def context_length(self) -> int | None:
        return self._context_length

    def close(self) -> None:
        """Close the HTTP clients. Prefer `await aclose()` from async code: it closes the async client at once."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._aclient is not None:
            loop, client = self._aclient
            self._aclient = None
            if _running_loop() is loop:  # called from sync code inside that loop: cannot await, so schedule it
                task = loop.create_task(client.aclose())
                self._closing.add(task)  # a reference, so the task is not collected before it runs
                task.add_done_callback(self._closing.discard)
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
            # else the loop has ended: its connections cannot be closed from here any more (see `aclose`)

    async def aclose(self) -> None:
        """Close both clients from inside the event loop that used the async one."""
        if self._aclient is not None:
            _, client = self._aclient
            self._aclient = None
            await client.aclose()
        self.close()

    # public stream methods are wrapped only so that `_egress` can tell a streamed body from a plain one

    def stream(self, request: Request | str, *, role: str = "model") -> Iterator[Chunk]:
        return super().stream(_streaming(request), role=role)

    def astream(self, request: Request | str, *, role: str = "model") -> AsyncGenerator[Chunk, None]:
        return super().astream(_streaming(request), role=role)

    # ---- the wire ---------------------------------------------------------------------------------

    def _body(self, request: Request, stream: bool) -> bytes:
        """The exact JSON body sent for `request`; the egress ledger records these same bytes."""
        p = request.params
        body: dict[str, Any] = {"model": self.model}
        if request.raw:
            body["prompt"] = request.messages[0].content
        else:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        body.update(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p)
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _egress(self, request: Request) -> str | None:
        if self.location == "edge":
            return None
        return self._body(request, isinstance(request, _StreamingRequest)).decode("utf-8")

    def _headers(self) -> dict[str, str]:
        return {**JSON_HEADERS, "Authorization": f"Bearer {self._api_key}"} if self._api_key else dict(JSON_HEADERS)

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, headers=self._headers(), timeout=self.timeout, transport=self._transport
            )
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            client = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers(), timeout=self.timeout, transport=self._async_transport
            )
            self._aclient = (loop, client)
        return self._aclient[1]

    def _post(self, request: Request, stream: bool) -> httpx.Response:
        client = self._sync_client()
        for attempt in range(self.max_retries + 1):
            try:
                req = client.build_request("POST", _path(request), content=self._body(request, stream))
                response = client.send(req, stream=stream)
            except httpx.TransportError as err:
                time.sleep(self._backoff_or_raise(attempt, err, None))
                continue
            if response.is_success:
                return response
            response.read()
            response.close()
            time.sleep(self._backoff_or_raise(attempt, None, response))
        raise AssertionError("unreachable: the last attempt raises")

    async def _apost(self, request: Request, stream: bool) -> httpx.Response:
        client = self._async_client()
        for attempt in range(self.max_retries + 1):
            try:
                req = client.build_request("POST", _path(request), content=self._body(request, stream))
                response = await client.send(req, stream=stream)
            except httpx.TransportError as err:
                await asyncio.sleep(self._backoff_or_raise(attempt, err, None))
                continue
            if response.is_success:
                return response
            await response.aread()
            await response.aclose()
            await asyncio.sleep(self._backoff_or_raise(attempt, None, response))
        raise AssertionError("unreachable: the last attempt raises")

    def _backoff_or_raise(
        self, attempt: int, err: httpx.TransportError | None, response: httpx.Response | None
    ) -> float:
        """Seconds to wait before retrying a failed attempt; raises the typed error when it should not be retried."""
        status = response.status_code if response is not None else None
        retryable = status is None or status == 429 or status >= 500
        if not retryable or attempt >= self.max_retries:
            raise self._error(attempt + 1, err, response) from err or _status_error(response)
        hint = _parse_retry_after(response.headers.get("retry-after")) if response is not None else None
        # like OpenAI's SDK: honour a short Retry-After; a longer one would hang the caller, so back off as usual
        return hint if hint is not None and hint <= MAX_RETRY_AFTER_S else self.backoff * 2**attempt

    def _error(self, attempts: int, err: httpx.TransportError | None, response: httpx.Response | None) -> RemoteError:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        where = f"{self.name}: POST {self.base_url}"
        if response is None:
            assert err is not None
            if isinstance(err, httpx.TimeoutException):
                return RemoteTimeoutError(f"{where} timed out{tries} (timeout {self.timeout:g} s): {err!r}")
            return RemoteError(f"{where} failed{tries}: {type(err).__name__}: {err}")
        status = response.status_code
        message = f"{where} answered HTTP {status}{tries}: {_server_message(response)}"
        if status in (401, 403):
            hint = f"check the API key (the api_key argument or ${self.api_key_env})"
            return AuthenticationError(f"{message}; {hint}", status=status)
        if status == 429:
            return RateLimitError(message, status=status)
        return RemoteError(message, status=status)

    # ---- what the base class calls ----------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        return self._parse(request, self._post(request, stream=False))

    async def _agenerate(self, request: Request) -> Completion:
        return self._parse(request, await self._apost(request, stream=False))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        with self._post(request, stream=True) as response:
            parser = _SSEParser(self, request)
            try:
                for line in response.iter_lines():
                    if (piece := parser.feed(line)) is not None:
                        yield Chunk(piece)
                    if parser.done:
                        break
            except httpx.TransportError as err:  # mid-stream: text was already yielded, so no retry
                raise self._error(1, err, None) from err
        yield parser.finish()

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        response = await self._apost(request, stream=True)
        parser = _SSEParser(self, request)
        try:
            async for line in response.aiter_lines():
                if (piece := parser.feed(line)) is not None:
                    yield Chunk(piece)
                if parser.done:
                    break
        except httpx.TransportError as err:
            raise self._error(1, err, None) from err
        finally:
            await response.aclose()
        yield parser.finish()

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        return self._extension_logprobs(tokens, [len(tokens) - 1], top_k)[0]

    def _logprobs_after(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        return self._extension_logprobs(tokens, positions, top_k)

    def _extension_logprobs(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        """Hook for tandem's `/v1/tandem/logprobs` extension, so logit-level strategies can use a remote model."""
        raise UnsupportedOperationError(
            f"{self.name}: a plain OpenAI-compatible endpoint gives no next-token distribution for a token "
            "prefix (only logprobs of the tokens it generates itself); use a local engine (llamacpp) for "
            "speculative decoding, token routing, fusion and scoring"
        )

    def _parse(self, request: Request, response: httpx.Response) -> Completion:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = (choice["text"] if request.raw else choice["message"]["content"]) or ""
            usage = data.get("usage") or {}
            counts = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise RemoteError(
                f"{self.name}: unexpected response from {self.base_url}: {type(err).__name__}: {err}; "
                f"body: {response.text[:300]!r}",
                status=response.status_code,
            ) from err
        return Completion(text, _finish(choice.get("finish_reason")), counts, self.name)


class _SSEParser:
    """Turns server-sent event lines into text pieces, then the final chunk with finish reason and usage."""

    def __init__(self, model: OpenAIModel, request: Request) -> None:
        self.model = model
        self.raw = request.raw
        self.pieces: list[str] = []
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.done = False

    def feed(self, line: str) -> str | None:
        if not line.startswith("data:"):
            return None  # blank separators, comments (": ping") and event names
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return None
        try:
            data = json.loads(payload)
        except ValueError as err:
            raise RemoteError(f"{self.model.name}: invalid event in the stream: {payload[:300]!r}") from err
        if "error" in data:  # servers report failures after the 200 status line this way
            raise RemoteError(f"{self.model.name}: the stream failed: {_message_of(data, payload)}")
        if usage := data.get("usage"):
            self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        piece = None
        for choice in data.get("choices") or ():
            piece = choice.get("text") if self.raw else (choice.get("delta") or {}).get("content")
            if choice.get("finish_reason"):
                self.finish_reason = _finish(choice["finish_reason"])
        if piece:
            self.pieces.append(piece)
            return str(piece)
        return None

    def finish(self) -> Chunk:
        if self.finish_reason is None:
            raise RemoteError(f"{self.model.name}: the stream ended without a finish reason")
        usage = self.usage or Usage(0, len(self.pieces))  # no usage chunk: each piece is about one token
        completion = Completion("".join(self.pieces), self.finish_reason, usage, self.model.name)
        return Chunk("", self.finish_reason, completion)


def _streaming(request: Request | str) -> Request | str:
    if isinstance(request, str):
        request = Request.of(request)
    if not isinstance(request, Request) or isinstance(request, _StreamingRequest):
        return request  # the base class reports a wrong type
    return _StreamingRequest(**{f.name: getattr(request, f.name) for f in fields(Request)})


def _path(request: Request) -> str:
    return "/completions" if request.raw else "/chat/completions"


def _finish(reason: object) -> FinishReason:
    return "length" if reason == "length" else "stop"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _message_of(data: object, raw: str) -> str:
    """The server's own error message: OpenAI's {"error": {"message": ...}}, FastAPI's {"detail": ...}, or raw."""
    if isinstance(data, dict):
        error = data.get("error", data.get("detail"))
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if error is not None:
            return error if isinstance(error, str) else json.dumps(error)
        if "message" in data:
            return str(data["message"])
    return raw.strip()[:1000] or "(empty body)"


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    return _message_of(data, response.text)


def _status_error(response: httpx.Response | None) -> httpx.HTTPStatusError | None:
    """httpx's own exception for a failed response, to chain as the cause."""
    if response is None:
        return None
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as err:
        return err
    return None


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
