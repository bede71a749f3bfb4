"""What a gateway holds between requests, and how it runs one: deadlines, disconnects, shutdown, sessions.

Admission is per model, not per pipeline: pipelines share models, and each local model's owner thread
has the one bounded queue in front of it (`ModelWorker.queue_size = server.queue_size`; full: 503).
Each request runs under a `CancelToken` that is a child of the gateway's shutdown token, with the
request's deadline: a client that goes away, the deadline or SIGTERM stops its model work between tokens.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from starlette.requests import Request as HTTPRequest

from tandemlm.config import Runtime, ServerConfig
from tandemlm.errors import EngineError, ModelLoadingError, ModelNotFoundError, TandemError, ValidationError
from tandemlm.execution import CancelToken, use_token
from tandemlm.models.base import LanguageModel
from tandemlm.server.embeddings import Embeddings
from tandemlm.server.errors import ShuttingDownError
from tandemlm.server.metrics import Metrics
from tandemlm.types import Chunk

MAX_SESSIONS = 256
WATCH_AFTER_S = 0.02  # when a request starts watching for its client's disconnect
T = TypeVar("T")


@dataclass
class GatewayState:
    """Lives on `app.state.tandem`: the runtime, API keys, metrics, logprob sessions, the shutdown token."""

    runtime: Runtime
    owns_runtime: bool
    api_keys: frozenset[str]
    sessions: OrderedDict[str, list[int]] = field(default_factory=OrderedDict)
    ready: bool = False
    load_error: str | None = None
    shutdown: CancelToken = field(default_factory=CancelToken)
    embeddings: Embeddings = field(default_factory=Embeddings)  # /v1/embeddings' model, loaded on first use
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.runtime.loaded_models)

    @property
    def settings(self) -> ServerConfig:
        return self.runtime.config.server

    def pipeline(self, name: str) -> LanguageModel:
        """The pipeline's model: ModelNotFoundError for an unknown name, 503 `loading` until the models are in."""
        if name not in self.runtime.config.pipelines:
            known = ", ".join(self.runtime.config.pipelines)
            raise ModelNotFoundError(f"no pipeline named {name!r}; known: {known}")
        if self.load_error is not None:
            raise EngineError(f"the gateway's models failed to load: {self.load_error}")
        if not self.ready:
            raise ModelLoadingError("the models are still loading; retry shortly")
        return self.runtime.pipeline(name)

    async def pipeline_when_ready(self, name: str, token: CancelToken) -> LanguageModel:
        """`pipeline`, waiting for the models first where `server.wait_while_loading` says so (within the
        request's deadline)."""
        if self.settings.wait_while_loading:
            with anyio.fail_after(token.remaining()):
                while not self.ready and self.load_error is None and name in self.runtime.config.pipelines:
                    await anyio.sleep(0.05)
        return self.pipeline(name)

    def load_all(self) -> None:
        """Load every pipeline's models once (blocking; run in a worker thread at start-up)."""
        try:
            for name in self.runtime.config.pipelines:
                self.runtime.pipeline(name)
            for model in self.runtime.loaded_models():
                if model.owner is not None:
                    model.owner.queue_size = self.settings.queue_size
            self.ready = True
        except TandemError as err:
            self.load_error = str(err)

    def stop(self) -> None:
        """Shutdown: every request's work stops at its next token; new requests are refused."""
        self.shutdown.cancel(ShuttingDownError("the gateway is shutting down; retry on another instance"))

    def request_token(self) -> CancelToken:
        """A request's token: cancelled at shutdown, and past `request_timeout_s`."""
        return CancelToken(timeout=self.settings.request_timeout_s, parent=self.shutdown)

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


async def run_request(
    token: CancelToken, http: HTTPRequest, work: Callable[[], Awaitable[T]], *, last: bool = True
) -> T | None:
    """Await `work()` under the request's token and deadline; None when the client went away first. A passed
    deadline is a TimeoutError (504). With `last` (nothing more is done for this request) the token fires at the
    end in every case, so whatever still runs for the request stops and frees its model."""
    left = token.remaining()
    scope = anyio.CancelScope(deadline=math.inf if left is None else anyio.current_time() + left)
    watch = _DisconnectWatch(http, token, scope)
    try:
        with use_token(token), scope:
            return await work()
        if watch.client_gone:  # the scope swallowed the cancellation
            return None
        raise TimeoutError  # the deadline (one scope for both: anyio's fail_after would be a second)
    finally:
        watch.stop()
        if last:
            token.cancel("the request ended")


class _DisconnectWatch:
    """Fires the token and cancels `scope` when the client disconnects. The watching task is a bare task, not a
    task group (which costs ~10× as much), and starts only after WATCH_AFTER_S: a request answered sooner has
    nothing left that a disconnect could stop, and most of the gateway's requests to a fast upstream are."""

    def __init__(self, http: HTTPRequest, token: CancelToken, scope: anyio.CancelScope) -> None:
        self.client_gone = False
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, self._start, http, token, scope)

    def _start(self, http: HTTPRequest, token: CancelToken, scope: anyio.CancelScope) -> None:
        self._task = asyncio.ensure_future(self._watch(http, token, scope))

    async def _watch(self, http: HTTPRequest, token: CancelToken, scope: anyio.CancelScope) -> None:
        try:
            while (await http.receive())["type"] != "http.disconnect":
                pass
        except Exception:  # nothing awaits this task: a connection that cannot be read is one whose client is gone
            pass
        self.client_gone = True
        token.cancel("the client disconnected")
        scope.cancel()

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


async def next_chunk(pieces: AsyncIterator[Chunk], token: CancelToken) -> Chunk:
    """The next piece of a stream, or TimeoutError once the request's deadline has passed."""
    with use_token(token), anyio.fail_after(token.remaining()):
        return await anext(pieces)
