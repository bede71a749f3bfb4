"""The gateway's endpoints: thin, the work is in `state.py` and the models themselves."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request as HTTPRequest

from tandemlm.errors import TandemError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.server import protocol as p
from tandemlm.server.errors import error_response
from tandemlm.server.state import Gate, GatewayState, answer, next_chunk
from tandemlm.types import Chunk, Completion, Request

PUBLIC_PATHS = frozenset(["/healthz", "/readyz", "/docs", "/openapi.json"])
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
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "tandemlm", "description": spec.description}
            for name, spec in pipelines.items()]  # fmt: skip
    return {"object": "list", "data": data}


@router.get("/v1/tandem/models/{name}")
async def model_info(name: str, http: HTTPRequest) -> dict[str, Any]:
    """What a remote collaborator needs to know: vocabulary fingerprint, context window, where it runs."""
    model, _ = _state(http).pipeline(name)
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
    model, gate = state.pipeline(pipeline)
    request_id: str = http.scope["state"]["request_id"]
    created = p.now()
    started = time.perf_counter()
    timeout = state.settings.request_timeout_s
    if stream:
        return await _open_stream(state, model, gate, request, (pipeline, request_id, created, usage, chat), started)
    completion = await answer(model, gate, request, http, timeout)
    if completion is None:  # the client went away; nobody reads this
        return Response(status_code=499)
    state.record_egress(completion)
    state.metrics.observe(pipeline, "chat" if chat else "text", completion, time.perf_counter() - started)
    build = p.chat_response if chat else p.text_response
    return JSONResponse(build(completion, request_id, pipeline, created))


async def _open_stream(
    state: GatewayState, model: LanguageModel, gate: Gate, request: Request,
    meta: tuple[str, str, int, bool, bool], started: float,
) -> Response:  # fmt: skip
    """Hold a queue slot and fetch the first piece before answering 200, so early errors are still 4xx/5xx."""
    stack = AsyncExitStack()
    await stack.enter_async_context(gate.slot())
    deadline = anyio.current_time() + state.settings.request_timeout_s
    pieces = model.astream(request)
    try:
        first = await next_chunk(pieces, deadline)
    except BaseException:
        await pieces.aclose()
        await stack.aclose()
        raise
    events = _sse(state, pieces, first, deadline, stack, meta, started)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _sse(
    state: GatewayState, pieces: AsyncGenerator[Chunk, None], chunk: Chunk, deadline: float, stack: AsyncExitStack,
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
            chunk = await next_chunk(pieces, deadline)
        final: Completion = chunk.completion
        state.record_egress(final)
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
        await pieces.aclose()
        await stack.aclose()


def _chat_piece(request_id: str, pipeline: str, created: int, text: str, finish: str | None) -> dict[str, Any]:
    return p.chat_chunk(request_id, pipeline, created, {"content": text} if text or not finish else {}, finish)


def _text_piece(request_id: str, pipeline: str, created: int, text: str, finish: str | None) -> dict[str, Any]:
    return p.text_chunk(request_id, pipeline, created, text, finish)


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/v1/tandem/logprobs")
async def logprobs(body: p.LogprobsRequest, http: HTTPRequest) -> dict[str, Any]:
    """Next-token log-probabilities at given positions; a session lets the caller send only new tokens."""
    state = _state(http)
    model, gate = state.pipeline(body.model)
    session_id = body.session_id or uuid.uuid4().hex
    tokens = state.session_tokens(session_id, body.offset, body.tokens)
    if not tokens:
        raise ValidationError("the sequence is empty: send at least one token")
    positions = body.positions if body.positions is not None else [len(tokens) - 1]
    async with gate.slot():
        with anyio.fail_after(state.settings.request_timeout_s):
            found = await anyio.to_thread.run_sync(lambda: model.logprobs_after(tokens, positions, top_k=body.top_k))
    state.remember(session_id, tokens)
    out = [
        {"position": pos, "values": lp.values.tolist()}
        if lp.complete
        else {"position": pos, "top": lp.top(len(lp.values))}
        for pos, lp in zip(positions, found, strict=True)
    ]
    return {"session_id": session_id, "n_tokens": len(tokens), "vocab_size": found[0].vocab_size, "logprobs": out}
