"""How model work runs: one owner thread per local engine handle, cooperative cancellation, deadlines.

A llama.cpp context (a torch module later) is not thread-safe and holds a KV cache, so each handle has
exactly one `ModelWorker`: a thread that runs whole operations (a generation, a batch of logits) taken
from a bounded queue. Callers submit work and wait for its result or its chunks; they never touch the
handle, and no lock is held across a `yield`.

A `CancelToken` is the request's stop flag: set when the client goes away, the deadline passes or the
server shuts down. It travels in a context variable, so every operation a request submits, however
deep in a strategy and on whatever thread, is checked between tokens and stops within one.
`run_in_thread` and `iterate_in_thread` carry blocking code (a strategy's loop) off the event loop, on reused
threads; when the awaiting task is cancelled they set the token and return at once, and the thread winds down
by itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import anyio

from tandemlm.errors import DeadlineExceededError, EngineError, QueueFullError, RequestCancelledError, TandemError

T = TypeVar("T")
POLL_S = 0.05  # how often a waiting caller looks at its own token while the owner is busy elsewhere


class CancelToken:
    """Cancellation and deadline of one request; a child token is cancelled with its parent."""

    def __init__(self, *, timeout: float | None = None, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._reason: TandemError | None = None
        self.parent = parent
        own = time.monotonic() + timeout if timeout is not None else None
        limits = [d for d in (own, parent.deadline if parent else None) if d is not None]
        self.deadline: float | None = min(limits) if limits else None  # time.monotonic()

    def cancel(self, reason: str | TandemError = "the request was cancelled") -> None:
        """Fire the token; work checking it raises `reason` (a RequestCancelledError when given as text)."""
        if self._reason is None:
            self._reason = RequestCancelledError(reason) if isinstance(reason, str) else reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        token: CancelToken | None = self
        while token is not None:
            if token._event.is_set():
                return True
            token = token.parent
        return self.deadline is not None and time.monotonic() >= self.deadline

    def remaining(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def error(self) -> TandemError:
        token: CancelToken | None = self
        while token is not None:
            if token._event.is_set() and token._reason is not None:
                return token._reason
            token = token.parent
        return DeadlineExceededError("the request's deadline passed (server.request_timeout_s)")

    def check(self) -> None:
        """Raise the typed error when cancelled or past the deadline; call between tokens."""
        if self.cancelled:
            raise self.error()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (with the typed error) when cancelled or at the deadline."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.check()
            self._event.wait(min(left, POLL_S))
        self.check()


_NEVER = CancelToken()
_current: contextvars.ContextVar[CancelToken] = contextvars.ContextVar("tandem_cancel_token", default=_NEVER)


def current_token() -> CancelToken:
    """The token of the request this code runs for (one that never fires outside any request)."""
    return _current.get()


@contextmanager
def use_token(token: CancelToken) -> Iterator[CancelToken]:
    """Make `token` the current one for the block (model work submitted inside it runs under it)."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


def cancel_scope(*, timeout: float | None = None) -> AbstractContextManager[CancelToken]:
    """A child of the current token, with an optional deadline, current for the block."""
    return use_token(CancelToken(timeout=timeout, parent=current_token()))


# ---- the owner of one engine handle --------------------------------------------------------------

Emit = Callable[[Any], None]
Work = Callable[[CancelToken, Emit], T]


@dataclass
class WorkerStats:
    """What `/metrics` shows per model."""

    queued: int = 0  # operations waiting
    operations: int = 0  # operations finished (or failed)
    busy_s: float = 0.0  # time spent running operations
    wait_s: float = 0.0  # total time operations waited in the queue
    rejected: int = 0  # submissions refused because the queue was full


class _Job(Generic[T]):
    def __init__(self, work: Work[T], token: CancelToken) -> None:
        self.work = work
        self.token = token
        self.out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.submitted = time.monotonic()

    def emit(self, item: Any) -> None:
        self.out.put(item)

    def take(self) -> Any:
        """The next item from the owner; gives up (typed error) when the caller's own token fires first."""
        while True:
            try:
                return self.out.get(timeout=POLL_S)
            except queue.Empty:
                self.token.check()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Done:
    def __init__(self, result: Any) -> None:
        self.result = result


def _ended(item: Any) -> bool:
    """Whether `item` ends a stream of items (an operation's result); raises the error a failure carries."""
    if isinstance(item, _Failure):
        raise item.error
    return isinstance(item, _Done)


class ModelWorker:
    """The one thread that drives an engine handle; operations run whole, one at a time.

    Short operations (`call`: a batch of logits) go before generations (`stream`), in arrival order within
    each kind, unless the oldest generation has waited `max_wait_s`: a token-level strategy's one-token
    steps then need not queue behind every other request's whole answer, and no generation starves.

    queue_size: operations that may wait (None: no bound); a submission beyond it raises QueueFullError,
        which the gateway answers with 503 and Retry-After.
    """

    def __init__(self, name: str, *, queue_size: int | None = None, max_wait_s: float = 1.0) -> None:
        self.name = name
        self.queue_size = queue_size
        self.max_wait_s = max_wait_s
        self.stats = WorkerStats()
        self._short: deque[_Job[Any]] = deque()
        self._long: deque[_Job[Any]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._finish: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._serve, name=f"tandem-model-{name}", daemon=True)
        self._thread.start()

    def call(self, work: Callable[[], T]) -> T:
        """Run `work` on the owner thread and return its result (its exception is raised here)."""
        job = self._submit(lambda token, emit: work(), self._short)
        item = job.take()
        _ended(item)
        result: T = item.result
        return result

    def stream(self, work: Callable[[CancelToken, Emit], None]) -> Iterator[Any]:
        """Run a streaming operation: `work(token, emit)` emits items on the owner thread, checking `token`
        between steps. Closing the iterator early cancels the operation, which stops at its next check."""
        job = self._submit(work, self._long)
        try:
            while True:
                item = job.take()
                if _ended(item):
                    return
                yield item
        finally:
            job.token.cancel("the stream was closed")

    def close(self, finish: Callable[[], None] | None = None) -> None:
        """Stop taking work, fail what still waits, run `finish` (release the handle) on the owner, join it."""
        with self._ready:
            if self._closed:
                return
            self._closed, self._finish = True, finish
            self._ready.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def _submit(self, work: Work[Any], lane: deque[_Job[Any]]) -> _Job[Any]:
        token = CancelToken(parent=current_token())
        token.check()
        job: _Job[Any] = _Job(work, token)
        with self._ready:
            if self._closed:
                raise EngineError(f"{self.name}: the model is closed")
            if self.queue_size is not None and self.stats.queued >= self.queue_size:
                self.stats.rejected += 1
                raise QueueFullError(
                    f"{self.name} is busy and {self.stats.queued} operations are already waiting; retry later"
                )
            self.stats.queued += 1
            lane.append(job)
            self._ready.notify()
        return job

    def _next(self) -> _Job[Any] | None:
        """The next operation to run (None once closed): short first, unless a generation waited too long."""
        with self._ready:
            while not (self._short or self._long or self._closed):
                self._ready.wait()
            if self._closed:
                for left in (*self._short, *self._long):
                    left.emit(_Failure(EngineError(f"{self.name}: the model was closed")))
                self._short.clear()
                self._long.clear()
                return None
            overdue = self._long and time.monotonic() - self._long[0].submitted >= self.max_wait_s
            job = (self._long if overdue or not self._short else self._short).popleft()
            self.stats.queued -= 1
            return job

    def _serve(self) -> None:
        while (job := self._next()) is not None:
            started = time.monotonic()
            self.stats.wait_s += started - job.submitted
            if job.token.cancelled:  # the caller gave up while it waited: skip it
                job.emit(_Failure(job.token.error()))
                continue
            try:
                result = job.work(job.token, job.emit)
            except BaseException as err:  # handed to the caller, whose thread raises it
                job.emit(_Failure(err))
            else:
                job.emit(_Done(result))
            finally:
                self.stats.operations += 1
                self.stats.busy_s += time.monotonic() - started
        if self._finish is not None:
            self._finish()


# ---- blocking code off the event loop ------------------------------------------------------------


class _Threads:
    """Reusable daemon threads for blocking request work. Starting a thread per call makes the event loop wait
    until the OS first schedules it (milliseconds on a loaded machine); an idle thread takes the next job at
    once. Unbounded, so a job never waits for another to finish; a thread idle for `idle_s` exits."""

    def __init__(self, idle_s: float = 30.0, max_idle: int = 64) -> None:
        self.idle_s = idle_s
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []  # each idle thread's inbox, newest last

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="tandem-request", daemon=True).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            try:
                job = inbox.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # else a submitter has just taken this thread: its job is on the way
                        self._idle.remove(inbox)
                        return
                continue
            job()
            del job  # hold nothing of a finished request while idle
            with self._lock:
                if len(self._idle) >= self.max_idle:
                    return
                self._idle.append(inbox)


_threads = _Threads()


def _in_thread(token: CancelToken, job: Callable[[], None]) -> None:
    """Run `job` on a pooled thread, in a copy of the caller's context with `token` current."""
    context = contextvars.copy_context()

    def run() -> None:
        _current.set(token)
        job()

    _threads.submit(partial(context.run, run))


def in_parallel(*calls: Callable[[], T]) -> list[T]:
    """Run blocking `calls` at once (each on a pooled thread, in a copy of the caller's context) and return their
    results in order. A strategy asks its children together this way, so children on different models work at
    the same time. The first failure cancels the others (a child token) and is raised once all have stopped."""
    if len(calls) <= 1:
        return [call() for call in calls]
    token = CancelToken(parent=current_token())
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []
    left = threading.Semaphore(0)

    def job(i: int, call: Callable[[], T]) -> None:
        try:
            results[i] = call()
        except BaseException as e:  # handed to the caller below
            errors.append(e)
            token.cancel("a parallel sibling failed")
        finally:
            left.release()

    for i, call in enumerate(calls):
        _in_thread(token, partial(job, i, call))
    for _ in calls:
        left.acquire()
    if errors:
        raise errors[0]  # the first failure; the others are its cancellation
    return results


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread, under a child token of the current one. If the awaiting task is
    cancelled, the token fires and this returns at once; the thread stops at its next check."""
    token = CancelToken(parent=current_token())
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[_Done | _Failure] = loop.create_future()

    def settle(item: _Done | _Failure) -> None:  # on the event loop
        if not outcome.done():
            outcome.set_result(item)

    def work() -> None:  # on the thread
        try:
            item: _Done | _Failure = _Done(fn(*args))
        except BaseException as err:  # raised in the caller
            item = _Failure(err)
        with suppress(RuntimeError):  # the event loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, item)

    _in_thread(token, work)
    try:
        item = await outcome
    finally:
        token.cancel("the caller stopped waiting")
    if isinstance(item, _Failure):
        raise item.error
    result: T = item.result
    return result


async def iterate_in_thread(make: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
    """Drive the blocking iterator `make()` in a thread of its own (only that thread ever touches it) and
    yield its items here. Closing or cancelling this generator cancels the token the thread runs under;
    the thread never waits for the reader."""
    token = CancelToken(parent=current_token())
    send, receive = anyio.create_memory_object_stream[Any](math.inf)
    loop = asyncio.get_running_loop()

    def put(item: Any) -> None:  # on the event loop
        try:
            send.send_nowait(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            token.cancel("the caller stopped reading")

    def deliver(item: Any) -> None:  # on the thread
        try:
            loop.call_soon_threadsafe(put, item)
        except RuntimeError:  # the event loop is closed
            token.cancel("the event loop is closed")

    def pump() -> None:
        pieces = None
        try:
            pieces = make()
            for item in pieces:
                deliver(item)
                token.check()
            deliver(_Done(None))
        except BaseException as err:
            deliver(_Failure(err))
        finally:
            if (close := getattr(pieces, "close", None)) is not None:
                close()

    _in_thread(token, pump)
    try:
        with receive:
            async for item in receive:
                if _ended(item):
                    return
                yield item
    finally:
        token.cancel("the caller stopped reading")
        send.close()
