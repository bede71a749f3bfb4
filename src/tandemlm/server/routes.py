"""The gateway's endpoints: thin, the work is in `state.py` and the models themselves."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request as HTTPRequest
from starlette.types import Receive, Scope, Send

from tandemlm.config import PipelineConfig
from tandemlm.errors import ModelNotFoundError, TandemError, ValidationError
from tandemlm.execution import CancelToken, run_in_thread, use_token
from tandemlm.models.base import LanguageModel
from tandemlm.server import protocol as p
from tandemlm.server.errors import error_response
from tandemlm.server.state import GatewayState, next_chunk, run_request
from tandemlm.types import Chunk, Completion, Request

PUBLIC_PATHS = frozenset(["/healthz", "/readyz"])  # the docs and schema too need the key when keys are set
router = APIRouter()

Formatter = Callable[[str, str, int, str, str | None], dict[str, Any]]


def _state(http: HTTPRequest) -> GatewayState:
    state: GatewayState = http.app.state.tandem
    return state


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(http: HTTPRequest) -> JSONResponse:
    state = _state(http)
    if state.ready:
        return JSONResponse({"status": "ready"})
    body = {"status": "failed" if state.load_error else "loading", "error": state.load_error}
    return JSONResponse(body, status_code=503)


@router.get("/metrics")
async def metrics(http: HTTPRequest) -> Response:
    return Response(_state(http).metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/v1/models")
async def list_models(http: HTTPRequest) -> dict[str, Any]:
    pipelines = _state(http).runtime.config.pipelines
    return {"object": "list", "data": [_model_object(name, spec) for name, spec in pipelines.items()]}


@router.get("/v1/models/{model:path}")
async def retrieve_model(model: str, http: HTTPRequest) -> dict[str, Any]:
    """One entry of `/v1/models` (what `client.models.retrieve(id)` reads); ids may contain '/'."""
    pipelines = _state(http).runtime.config.pipelines
    if model not in pipelines:
        raise ModelNotFoundError(f"no pipeline named {model!r}; known: {', '.join(pipelines)}")
    return _model_object(model, pipelines[model])


def _model_object(name: str, spec: PipelineConfig) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "tandemlm", "description": spec.description}


@router.get("/v1/tandem/models/{name}")
async def model_info(name: str, http: HTTPRequest) -> dict[str, Any]:
    """What a remote collaborator needs to know: vocabulary fingerprint, context window, where it runs."""
    model = _state(http).pipeline(name)
    fingerprint = await anyio.to_thread.run_sync(lambda: model.vocab_fingerprint)
    return {"id": name, "vocab_fingerprint": fingerprint, "context_length": model.context_length,
            "location": model.location}  # fmt: skip


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: p.ChatCompletionRequest, http: HTTPRequest) -> Response:
    return await _complete(http, body.model, body.to_request(), body.stream, body.include_usage, chat=True)


@router.post("/v1/completions", response_model=None)
async def completions(body: p.CompletionRequest, http: HTTPRequest) -> Response:
    return await _complete(http, body.model, body.to_request(), body.stream, body.include_usage, chat=False)


async def _complete(
    http: HTTPRequest, pipeline: str, request: Request, stream: bool, usage: bool, chat: bool
) -> Response:
    state = _state(http)
    token = state.request_token()
    model = await state.pipeline_when_ready(pipeline, token)
    request_id: str = http.scope["state"]["request_id"]
    created = p.now()
    started = time.perf_counter()
    if stream:
        return await _open_stream(state, model, request, token, http, (pipeline, request_id, created, usage, chat),
                                  started)  # fmt: skip
    completion = await run_request(token, http, lambda: model.agenerate(request))
    if completion is None:  # the client went away; nobody reads this
        return Response(status_code=499)
    state.metrics.observe(pipeline, "chat" if chat else "text", completion, time.perf_counter() - started)
    build = p.chat_response if chat else p.text_response
    return JSONResponse(build(completion, request_id, pipeline, created))


async def _open_stream(
    state: GatewayState, model: LanguageModel, request: Request, token: CancelToken, http: HTTPRequest,
    meta: tuple[str, str, int, bool, bool], started: float,
) -> Response:  # fmt: skip
    """Fetch the first piece before answering 200, so early errors are still 4xx/5xx."""
    with use_token(token):
        pieces = model.astream(request)
    try:
        first = await run_request(token, http, lambda: next_chunk(pieces, token), last=False)
    except BaseException:
        await _close(pieces, token)
        raise
    if first is None:  # the client went away before the first piece
        await _close(pieces, token)
        return Response(status_code=499)
    events = _sse(state, pieces, first, token, meta, started)
    return EventStream(events, token)


class EventStream(StreamingResponse):
    """Server-sent events that notice a client leaving even while no event is due (a cascade's silent draft):
    the request's token fires and the model it waits on stops within a token."""

    def __init__(self, events: AsyncIterator[str], token: CancelToken) -> None:
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                self.token.cancel("the client disconnected")
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                await self.stream_response(send)
            except OSError:  # the client is gone
                self.token.cancel("the client disconnected")
            finally:
                tg.cancel_scope.cancel()


async def _close(pieces: AsyncGenerator[Chunk, None], token: CancelToken) -> None:
    token.cancel("the stream ended")
    with anyio.CancelScope(shield=True):
        await pieces.aclose()


async def _sse(
    state: GatewayState, pieces: AsyncGenerator[Chunk, None], chunk: Chunk, token: CancelToken,
    meta: tuple[str, str, int, bool, bool], started: float,
) -> AsyncIterator[str]:  # fmt: skip
    pipeline, request_id, created, include_usage, chat = meta
    piece: Formatter = _chat_piece if chat else _text_piece
    try:
        if chat:
            yield _event(p.chat_chunk(request_id, pipeline, created, {"role": "assistant", "content": ""}, None))
        while chunk.completion is None:
            if chunk.text:
                yield _event(piece(request_id, pipeline, created, chunk.text, None))
            chunk = await next_chunk(pieces, token)
        final: Completion = chunk.completion
        if chunk.text:
            yield _event(piece(request_id, pipeline, created, chunk.text, None))
        last = piece(request_id, pipeline, created, "", final.finish_reason)
        last["tandem"] = p.tandem_extension(final, request_id)
        yield _event(last)
        if include_usage:
            yield _event({**last, "choices": [], "usage": p.usage(final), "tandem": None})
        state.metrics.observe(pipeline, "chat" if chat else "text", final, time.perf_counter() - started)
        yield "data: [DONE]\n\n"
    except (TandemError, TimeoutError) as err:  # headers are sent: report in-band, as OpenAI does
        state.metrics.errors.labels(type(err).__name__).inc()
        yield _event(json.loads(bytes(error_response(err).body)))
    finally:
        await _close(pieces, token)


def _chat_piece(request_id: str, pipeline: str, created: int, text: str, finish: str | None) -> dict[str, Any]:
    return p.chat_chunk(request_id, pipeline, created, {"content": text} if text or not finish else {}, finish)


def _text_piece(request_id: str, pipeline: str, created: int, text: str, finish: str | None) -> dict[str, Any]:
    return p.text_chunk(request_id, pipeline, created, text, finish)


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/v1/tandem/logprobs", response_model=None)
async def logprobs(body: p.LogprobsRequest, http: HTTPRequest) -> dict[str, Any] | Response:
    """Next-token log-probabilities at given positions; a session lets the caller send only new tokens."""
    state = _state(http)
    model = state.pipeline(body.model)
    session_id = body.session_id or uuid.uuid4().hex
    tokens = state.session_tokens(session_id, body.offset, body.tokens)
    if not tokens:
        raise ValidationError("the sequence is empty: send at least one token")
    positions = body.positions if body.positions is not None else [len(tokens) - 1]
    work = partial(model.logprobs_after, tokens, positions, top_k=body.top_k)
    found = await run_request(state.request_token(), http, lambda: run_in_thread(work))
    if found is None:
        return Response(status_code=499)
    state.remember(session_id, tokens)
    out = [
        {"position": pos, "values": lp.values.tolist()}
        if lp.complete
        else {"position": pos, "top": lp.top(len(lp.values))}
        for pos, lp in zip(positions, found, strict=True)
    ]
    return {"session_id": session_id, "n_tokens": len(tokens), "vocab_size": found[0].vocab_size, "logprobs": out}
