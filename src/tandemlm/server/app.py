"""`create_app(config)`: the OpenAI-compatible gateway over tandemlm pipelines.

Nothing happens at import; all state lives on `app.state.tandem`. Each pipeline of the config is a
"model" of the API. Errors use OpenAI's format and status codes; bad input is a 4xx naming what to fix.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandemlm.config import Runtime, TandemConfig
from tandemlm.errors import ModelLoadingError, TandemError
from tandemlm.server.errors import AuthError, PayloadTooLargeError, QueueFullError, ShuttingDownError, error_response
from tandemlm.server.protocol import ChatCompletionRequest, CompletionRequest, error_body
from tandemlm.server.routes import PUBLIC_PATHS, answer, router
from tandemlm.server.state import GatewayState, api_keys_from

log = logging.getLogger("tandemlm.server")


def create_app(config: TandemConfig | Runtime) -> FastAPI:
    """Build the gateway. Given a Runtime, the caller keeps ownership of its models; given a config, the app does."""
    runtime = config if isinstance(config, Runtime) else Runtime(config)
    state = GatewayState(
        runtime, owns_runtime=runtime is not config, api_keys=api_keys_from(runtime.config.server.api_keys)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, state.load_all)  # /healthz answers while models load
            yield
            state.stop()  # whatever still runs stops at its next token
            tg.cancel_scope.cancel()
        for model in runtime.loaded_models():  # owned or not: their async clients die with this event loop
            await model.aclose()
        if state.owns_runtime:
            runtime.close()

    app = FastAPI(title="tandemlm gateway", version="0.1.0", lifespan=lifespan)
    app.state.tandem = state
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(TandemError, _tandem_error)
    app.add_exception_handler(TimeoutError, _tandem_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(GatewayMiddleware, state=state)
    return app


#: the completion endpoints the middleware answers itself when their body is valid (GatewayMiddleware._answer)
FAST_BODIES: dict[str, type[ChatCompletionRequest] | type[CompletionRequest]] = {
    "/v1/chat/completions": ChatCompletionRequest, "/v1/completions": CompletionRequest,
}  # fmt: skip


class GatewayMiddleware:
    """Pure ASGI (no buffering, so streams and disconnects pass through): request id, auth, body limit, metrics."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        endpoint = _endpoint(path)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-tandem-request-id", request_id.encode())]
            await send(message)

        try:
            if self.state.api_keys and path not in PUBLIC_PATHS and not self._authorized(scope):
                response = error_response(AuthError("missing or invalid API key: send 'Authorization: Bearer <key>'"))
                await response(scope, receive, send_with_id)
                return
            limit = self.state.settings.max_body_bytes
            if _declared_length(scope) > limit:  # refused before a byte of it is read
                self.state.metrics.errors.labels(PayloadTooLargeError.__name__).inc()
                await error_response(_too_large(limit))(scope, receive, send_with_id)
                return
            limited = _LimitedBody(receive, limit)
            body_type = FAST_BODIES.get(path) if scope["method"] == "POST" else None
            if body_type is None:
                await self.app(scope, limited, send_with_id)
            else:
                await self._answer(body_type, scope, limited, send_with_id)
        finally:
            self.state.metrics.request(endpoint, status)

    async def _answer(
        self,
        body_type: type[ChatCompletionRequest] | type[CompletionRequest],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """A completion endpoint without FastAPI's routing, dependency solving and body handling (most of the
        gateway's own CPU per request): a JSON body that validates is answered here by the route's own code and
        error handler. Anything else (another content type, bad JSON, an invalid or missing body, a disconnect
        while it arrives) goes to FastAPI with what was received replayed, so each error is the route's own."""
        received: list[Message] = []
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except TandemError as err:  # over the body limit: what the route answers too (see _http_error)
            await (await _tandem_error(HTTPRequest(scope), err))(scope, receive, send)
            return
        body, parsed = b"".join(chunks), None
        if body and received[-1]["type"] == "http.request" and _is_json(scope):
            try:
                parsed = body_type.model_validate(json.loads(body))
            except Exception:  # refused below by FastAPI, in its words (a RecursionError too)
                parsed = None
        if parsed is None:
            await self.app(scope, _Replay(received, receive), send)
            return
        http = HTTPRequest(scope, receive)
        try:
            response = await answer(parsed, http)
        except (TandemError, TimeoutError) as err:  # as the route's exception handlers answer them
            response = await _tandem_error(http, err)
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, key = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and key.strip() in self.state.api_keys
        return False


class _LimitedBody:
    """The `receive` the app sees: counts body bytes as they arrive (chunked bodies declare no length), and fails
    once past the limit, so the rest is never read. The handlers turn the failure into a 413."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.received = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise _too_large(self.limit)
        return message


class _Replay:
    """A `receive` that gives the messages already read again, then reads on."""

    def __init__(self, messages: list[Message], receive: Receive) -> None:
        self.messages = messages
        self.receive = receive

    async def __call__(self) -> Message:
        return self.messages.pop(0) if self.messages else await self.receive()


def _is_json(scope: Scope) -> bool:
    """Whether the body is declared `application/json` (FastAPI reads other JSON types too; they go its way)."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.partition(b";")[0].strip().lower() == b"application/json"
    return False


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # the HTTP server itself refuses a malformed length
    return 0


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is over the gateway's limit of {limit} bytes; send less or raise server.max_body_bytes"
    )


KNOWN_PATHS = frozenset(
    ["/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/tandem/logprobs", "/healthz", "/readyz", "/metrics"]
)
PATH_TEMPLATES = {"/v1/tandem/models/": "/v1/tandem/models/{name}", "/v1/models/": "/v1/models/{model}"}


def _endpoint(path: str) -> str:
    """The metrics label of a path: known paths and templates only, so label values stay few."""
    if path in KNOWN_PATHS:
        return path
    return next((template for prefix, template in PATH_TEMPLATES.items() if path.startswith(prefix)), "other")


async def _tandem_error(request: HTTPRequest, err: Exception) -> JSONResponse:
    response = error_response(err)
    _state(request).metrics.errors.labels(type(err).__name__).inc()
    if isinstance(err, (QueueFullError, ModelLoadingError, ShuttingDownError)):
        response.headers["Retry-After"] = str(_state(request).settings.retry_after_s)
    return response


async def _invalid_request(request: HTTPRequest, err: RequestValidationError) -> JSONResponse:
    _state(request).metrics.errors.labels("RequestValidationError").inc()
    problems = [_describe(e) for e in err.errors()[:5]]
    first = err.errors()[0] if err.errors() else {}
    param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
    return JSONResponse(error_body("; ".join(problems) or "invalid request", param=param), status_code=400)


async def _http_error(request: HTTPRequest, err: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own errors (unknown route, wrong method, unreadable body) in OpenAI's shape."""
    cause = err.__cause__  # FastAPI chains what failed while it read the body
    if isinstance(cause, TandemError):  # the body limit, raised from `receive`
        return await _tandem_error(request, cause)
    _state(request).metrics.errors.labels(type(err).__name__).inc()
    where = f"{request.method} {request.url.path}"
    if isinstance(cause, UnicodeDecodeError):
        message = f"the body is not valid UTF-8 ({cause.reason} at byte {cause.start}); send UTF-8 encoded JSON"
    elif err.status_code == 404:
        message = f"no such endpoint: {where}; the OpenAI API is under /v1 (see /docs)"
    elif err.status_code == 405:
        message = f"method not allowed: {where}; allowed: {(err.headers or {}).get('Allow', 'none')}"
    else:
        message = str(err.detail)
    kind = "server_error" if err.status_code >= 500 else "invalid_request_error"
    return JSONResponse(error_body(message, kind), status_code=err.status_code, headers=err.headers)


def _describe(e: Any) -> str:
    loc = [str(p) for p in e.get("loc", ())]
    where = ".".join(loc[1:]) if loc[:1] == ["body"] else ".".join(loc)
    if e.get("type") == "json_invalid":
        return f"the body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
    if e.get("type") == "extra_forbidden":
        return f"unsupported parameter '{where}': tandem does not implement it; remove it"
    if e.get("type") == "missing" and not where:
        return "the body must be a JSON object"
    if e.get("type") == "string_unicode":  # pydantic-core refuses a lone surrogate in a key before any validator
        key = f"the key {e.get('input')!r} contains a lone surrogate; send valid UTF-8 text"
        return f"'{where}': {key}" if where else key
    return f"'{where}': {e.get('msg')}" if where else str(e.get("msg"))


async def _unexpected(request: HTTPRequest, err: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=err)
    _state(request).metrics.errors.labels(type(err).__name__).inc()
    return JSONResponse(error_body(f"internal error: {type(err).__name__}", "server_error"), status_code=500)


def _state(request: HTTPRequest) -> GatewayState:
    state: GatewayState = request.app.state.tandem
    return state
