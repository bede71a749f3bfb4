"""The gateway's endpoints: thin, the work is in `state.py` and the models themselves."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import replace
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
from tandemlm.server.embeddings import EmbeddingRequest, embedding_response
from tandemlm.server.errors import error_response
from tandemlm.server.state import GatewayState, next_chunk, run_request
from tandemlm.types import Chunk, Completion, Request, TokenLogprob

PUBLIC_PATHS = frozenset(["/healthz", "/readyz"])  # the docs and schema too need the key when keys are set
router = APIRouter()

Formatter = Callable[..., dict[str, Any]]


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
    return await answer(body, http)


@router.post("/v1/completions", response_model=None)
async def completions(body: p.CompletionRequest, http: HTTPRequest) -> Response:
    return await answer(body, http)


async def answer(body: p.ChatCompletionRequest | p.CompletionRequest, http: HTTPRequest) -> Response:
    """A chat or text completion for a validated body (the gateway's fast path calls this too, see app.py)."""
    chat = isinstance(body, p.ChatCompletionRequest)
    return await _complete(http, body.model, body.to_request(), body.stream, body.include_usage, chat=chat, n=body.n)


async def _complete(
    http: HTTPRequest, pipeline: str, request: Request, stream: bool, usage: bool, chat: bool, n: int = 1
) -> Response:
    state = _state(http)
    token = state.request_token()
    model = await state.pipeline_when_ready(pipeline, token)
    request_id: str = http.scope["state"]["request_id"]
    created = p.now()
    started = time.perf_counter()
    if stream:
        return await _open_stream(state, model, request, token, http, (pipeline, request_id, created, usage, chat),
                                  started, n)  # fmt: skip
    answers = await run_request(token, http, lambda: _answers(model, request, n))
    if answers is None:  # the client went away; nobody reads this
        return Response(status_code=499)
    state.metrics.observe(pipeline, "chat" if chat else "text", p.combined(answers), time.perf_counter() - started)
    build = p.chat_response if chat else p.text_response
    return JSONResponse(build(answers, request_id, pipeline, created))


async def _answers(model: LanguageModel, request: Request, n: int) -> list[Completion]:
    """`n` choices: one run each, in turn, with seeds seed, seed + 1, ... when a seed is given; greedy decoding
    answers the same every time, so one run is copied."""
    first = await model.agenerate(_choice(request, 0))
    if n == 1 or request.params.temperature == 0:
        return [first] * n
    return [first, *[await model.agenerate(_choice(request, i)) for i in range(1, n)]]


def _choice(request: Request, index: int) -> Request:
    seed = request.params.seed
    return request if not index or seed is None else replace(request, params=replace(request.params, seed=seed + index))


async def _open_stream(
    state: GatewayState, model: LanguageModel, request: Request, token: CancelToken, http: HTTPRequest,
    meta: tuple[str, str, int, bool, bool], started: float, n: int = 1,
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

    def more(index: int, answer: Completion) -> AsyncGenerator[Chunk, None]:
        """The stream of choice `index` (after the first choice's `answer`)."""
        if request.params.temperature == 0:
            return _replayed(answer)
        with use_token(token):
            return model.astream(_choice(request, index))

    events = _sse(state, pieces, first, token, meta, started, n, more)
    return EventStream(events, token)


async def _replayed(answer: Completion) -> AsyncGenerator[Chunk, None]:
    """A finished answer as a stream again: a greedy choice copied."""
    yield Chunk(answer.text, logprobs=answer.logprobs or ())
    yield Chunk("", answer.finish_reason, answer)


class EventStream(StreamingResponse):
    """Server-sent events that notice a client leaving even while no event is due (a cascade's silent draft):
    the request's token fires and the model it waits on stops within a token."""

    def __init__(self, events: AsyncIterator[str], token: CancelToken) -> None:
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with anyio.CancelScope() as streaming:

            async def watch() -> None:
                try:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                except Exception:  # nothing awaits this task: a connection that cannot be read has no client
                    pass
                self.token.cancel("the client disconnected")
                streaming.cancel()

            watcher = asyncio.ensure_future(watch())  # a bare task: a task group costs ~10× as much
            try:
                await self.stream_response(send)
            except OSError:  # the client is gone
                self.token.cancel("the client disconnected")
            finally:
                watcher.cancel()


async def _close(pieces: AsyncGenerator[Chunk, None], token: CancelToken) -> None:
    token.cancel("the stream ended")
    with anyio.CancelScope(shield=True):
        await pieces.aclose()


async def _sse(
    state: GatewayState, pieces: AsyncGenerator[Chunk, None], chunk: Chunk, token: CancelToken,
    meta: tuple[str, str, int, bool, bool], started: float, n: int = 1,
    more: Callable[[int, Completion], AsyncGenerator[Chunk, None]] | None = None,
) -> AsyncIterator[str]:  # fmt: skip
    """The choices' events in turn (one stream each). Logprob entries go with their pieces, and those the model
    gave only at the end with the last piece; tool calls, once whole, as OpenAI streams them."""
    pipeline, request_id, created, include_usage, chat = meta
    piece: Formatter = _chat_piece if chat else _text_piece
    answers: list[Completion] = []
    try:
        for index in range(n):
            if index:
                assert more is not None
                with anyio.CancelScope(shield=True):  # the last choice's stream ended; close it, keep the request
                    await pieces.aclose()
                pieces = more(index, answers[0])
                chunk = await next_chunk(pieces, token)
            ids = (request_id, pipeline, created)
            if chat:
                yield _event(p.chat_chunk(*ids, {"role": "assistant", "content": ""}, None, index=index))
            sent = 0  # logprob entries streamed
            while chunk.completion is None:
                if chunk.text or chunk.logprobs:
                    yield _event(piece(*ids, chunk.text, None, index=index, logprobs=chunk.logprobs))
                sent += len(chunk.logprobs)
                chunk = await next_chunk(pieces, token)
            final: Completion = chunk.completion
            answers.append(final)
            rest = chunk.logprobs or tuple(final.logprobs or ())[sent:]
            if chunk.text or rest:
                yield _event(piece(*ids, chunk.text, None, index=index, logprobs=rest))
            for delta in p.tool_call_deltas(final) if chat else ():
                yield _event(p.chat_chunk(*ids, delta, None, index=index))
            last = piece(*ids, "", final.finish_reason, index=index)
            last["tandem"] = p.tandem_extension(final, request_id)
            yield _event(last)
        total = p.combined(answers)
        if include_usage:
            yield _event({**last, "choices": [], "usage": p.usage(total), "tandem": None})
        state.metrics.observe(pipeline, "chat" if chat else "text", total, time.perf_counter() - started)
        yield "data: [DONE]\n\n"
    except (TandemError, TimeoutError) as err:  # headers are sent: report in-band, as OpenAI does
        state.metrics.errors.labels(type(err).__name__).inc()
        yield _event(json.loads(bytes(error_response(err).body)))
    finally:
        await _close(pieces, token)


def _chat_piece(
    request_id: str, pipeline: str, created: int, text: str, finish: str | None, *, index: int = 0,
    logprobs: Sequence[TokenLogprob] = (),
) -> dict[str, Any]:  # fmt: skip
    delta = {"content": text} if text or not finish else {}
    return p.chat_chunk(request_id, pipeline, created, delta, finish, index=index, logprobs=logprobs)


def _text_piece(
    request_id: str, pipeline: str, created: int, text: str, finish: str | None, *, index: int = 0,
    logprobs: Sequence[TokenLogprob] = (),
) -> dict[str, Any]:  # fmt: skip
    return p.text_chunk(request_id, pipeline, created, text, finish, index=index, logprobs=logprobs)


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/v1/embeddings", response_model=None)
async def embeddings(body: EmbeddingRequest, http: HTTPRequest) -> dict[str, Any] | Response:
    """Sentence embeddings (MiniLM, the routers' model), float or base64."""
    state = _state(http)
    texts = body.texts()
    found = await run_request(state.request_token(), http, lambda: run_in_thread(state.embeddings.embed, texts))
    if found is None:
        return Response(status_code=499)
    return embedding_response(*found, body.model, body.encoding_format)


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
