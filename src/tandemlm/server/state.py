"""What a gateway holds between requests, and how it runs one: queues, deadlines, disconnects, sessions."""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from starlette.requests import Request as HTTPRequest

from tandemlm.config import Runtime, ServerConfig
from tandemlm.errors import TandemError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.server.errors import QueueFullError
from tandemlm.server.metrics import Metrics
from tandemlm.trace import append_ledger
from tandemlm.types import Chunk, Completion, Request

MAX_SESSIONS = 256


class Gate:
    """At most `limit` calls at once (None: no limit), and at most `queue_size` more waiting for a slot."""

    def __init__(self, limit: int | None, queue_size: int) -> None:
        self.limit = limit
        self.queue_size = queue_size
        self.running = 0
        self.waiting = 0
        self._free: asyncio.Semaphore | None = asyncio.Semaphore(limit) if limit else None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free is None:
            yield
            return
        if self.running >= (self.limit or 0) and self.waiting >= self.queue_size:
            raise QueueFullError(f"the model is busy and {self.waiting} requests are already waiting; retry later")
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._free.release()


@dataclass
class GatewayState:
    """Lives on `app.state.tandem`: the runtime, API keys, per-pipeline gates, metrics and logprob sessions."""

    runtime: Runtime
    owns_runtime: bool
    api_keys: frozenset[str]
    gates: dict[str, Gate] = field(default_factory=dict)
    sessions: OrderedDict[str, list[int]] = field(default_factory=OrderedDict)
    ready: bool = False
    load_error: str | None = None
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(lambda: {name: g.waiting for name, g in self.gates.items()})

    @property
    def settings(self) -> ServerConfig:
        return self.runtime.config.server

    def pipeline(self, name: str) -> tuple[LanguageModel, Gate]:
        """The pipeline's model and its gate (raises ModelNotFoundError for an unknown name)."""
        model = self.runtime.pipeline(name)
        if name not in self.gates:
            self.gates[name] = Gate(model.max_concurrency, self.settings.queue_size)
        return model, self.gates[name]

    def record_egress(self, completion: Completion) -> None:
        """Append what this answer sent to cloud models to the config's egress ledger, if it names one."""
        if self.runtime.config.ledger:
            path = Path(self.runtime.config.ledger).expanduser()
            for event in completion.trace:
                if event.egress is not None:
                    append_ledger(path, event)

    def load_all(self) -> None:
        """Load every pipeline's models (blocking; run in a worker thread at start-up)."""
        try:
            for name in self.runtime.config.pipelines:
                self.runtime.pipeline(name)
            self.ready = True
        except TandemError as err:
            self.load_error = str(err)

    def session_tokens(self, session_id: str, offset: int, tokens: list[int]) -> list[int]:
        held = self.sessions.get(session_id, [])
        if offset > len(held):
            raise ValidationError(
                f"offset {offset} is beyond the {len(held)} tokens held by session {session_id!r}; "
                "resend the whole sequence with offset 0"
            )
        return held[:offset] + tokens

    def remember(self, session_id: str, tokens: list[int]) -> None:
        self.sessions[session_id] = tokens
        self.sessions.move_to_end(session_id)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)


def api_keys_from(configured: list[str]) -> frozenset[str]:
    """Keys from the config plus TANDEM_API_KEYS (comma-separated)."""
    env = [k.strip() for k in os.environ.get("TANDEM_API_KEYS", "").split(",") if k.strip()]
    return frozenset([*configured, *env])


async def answer(
    model: LanguageModel, gate: Gate, request: Request, http: HTTPRequest, timeout: float
) -> Completion | None:
    """Answer a non-streamed request within the deadline; None when the client went away first.

    A model with a concurrency limit (local) is driven token by token so a disconnect or the deadline
    stops the generation between tokens; a remote call is cancelled by closing its connection.
    """
    result: Completion | None = None
    error: Exception | None = None
    async with gate.slot():
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_disconnect, http, tg.cancel_scope)
                try:
                    if model.max_concurrency is None:
                        result = await model.agenerate(request)
                    else:
                        async for chunk in model.astream(request):
                            result = chunk.completion or result
                except Exception as err:  # raised after the group, unwrapped from its ExceptionGroup
                    error = err
                tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return result


async def _cancel_on_disconnect(http: HTTPRequest, scope: anyio.CancelScope) -> None:
    while True:
        message = await http.receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


async def next_chunk(pieces: AsyncIterator[Chunk], deadline: float) -> Chunk:
    """The next piece of a stream, or TimeoutError once the request's deadline has passed."""
    with anyio.fail_after(max(deadline - anyio.current_time(), 0)):
        return await anext(pieces)
