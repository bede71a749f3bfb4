"""The execution model's exact logic: one owner per handle, FIFO whole operations, bounded queues,
cancellation and deadlines that reach the owner, blocking code off the event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import anyio
import pytest

from tandemlm.errors import DeadlineExceededError, EngineError, QueueFullError, RequestCancelledError
from tandemlm.execution import (
    CancelToken,
    ModelWorker,
    cancel_scope,
    current_token,
    in_parallel,
    iterate_in_thread,
    run_in_thread,
    use_token,
)


def test_operations_run_whole_on_the_owner_thread_one_at_a_time() -> None:
    worker = ModelWorker("m")
    seen: list[tuple[str, int]] = []
    active = 0

    def op(i: int) -> int:
        nonlocal active
        active += 1
        assert active == 1  # never two at once on the handle
        seen.append((threading.current_thread().name, i))
        time.sleep(0.01)
        active -= 1
        return i * i

    results: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, worker.call(lambda: op(i)))) for i in range(8)
    ]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == {i: i * i for i in range(8)}
    assert {name for name, _ in seen} == {"tandem-model-m"}
    assert worker.stats.operations == 8 and worker.stats.queued == 0 and worker.stats.busy_s > 0.07
    worker.close()


def test_an_error_in_an_operation_is_raised_in_the_caller() -> None:
    worker = ModelWorker("m")
    with pytest.raises(ZeroDivisionError):
        worker.call(lambda: 1 / 0)
    assert worker.call(lambda: "still serving") == "still serving"
    worker.close()


def test_a_full_queue_refuses_at_submission() -> None:
    worker = ModelWorker("m", queue_size=1)
    release = threading.Event()
    running = threading.Event()

    def block() -> None:
        running.set()
        release.wait(5)

    first = threading.Thread(target=worker.call, args=(block,))
    first.start()
    running.wait(5)
    second = threading.Thread(target=worker.call, args=(lambda: None,))
    second.start()
    time.sleep(0.05)
    assert worker.stats.queued == 1
    with pytest.raises(QueueFullError, match="1 operations are already waiting"):
        worker.call(lambda: None)
    release.set()
    first.join()
    second.join()
    assert worker.stats.rejected == 1
    worker.close()


def test_closing_a_stream_stops_the_operation_between_steps() -> None:
    worker = ModelWorker("m")
    steps: list[int] = []

    def work(token: CancelToken, emit: object) -> None:
        for i in range(1000):
            token.check()
            steps.append(i)
            emit(i)  # type: ignore[operator]
            time.sleep(0.002)

    pieces = worker.stream(work)
    assert [next(pieces) for _ in range(3)] == [0, 1, 2]
    pieces.close()  # type: ignore[attr-defined]
    assert worker.call(lambda: len(steps)) < 20  # the next operation ran right after: the handle was freed
    worker.close()


def test_a_cancelled_request_is_skipped_while_queued_and_its_caller_returns_at_once() -> None:
    worker = ModelWorker("m")
    release = threading.Event()
    threading.Thread(target=worker.call, args=(lambda: release.wait(5),)).start()
    ran: list[str] = []
    token = CancelToken()
    errors: list[BaseException] = []

    def waiter() -> None:
        with use_token(token):
            try:
                worker.call(lambda: ran.append("ran"))
            except RequestCancelledError as err:
                errors.append(err)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    token.cancel("the client disconnected")
    t.join(2)
    assert not t.is_alive() and str(errors[0]) == "the client disconnected"
    release.set()
    worker.call(lambda: None)
    assert ran == []  # it never reached the handle
    worker.close()


def test_a_deadline_reaches_the_owner_and_child_tokens_follow_their_parent() -> None:
    worker = ModelWorker("m")

    def spin(token: CancelToken, emit: object) -> None:
        while True:
            token.check()
            time.sleep(0.001)

    with cancel_scope(timeout=0.1):
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            list(worker.stream(spin))
        assert time.monotonic() - started < 1.0
    parent = CancelToken()
    child = CancelToken(timeout=60, parent=parent)
    assert not child.cancelled and child.remaining() is not None
    parent.cancel("shutting down")
    assert child.cancelled and str(child.error()) == "shutting down"
    assert current_token().deadline is None and not current_token().cancelled
    worker.close()


def test_close_fails_what_waits_and_refuses_more() -> None:
    worker = ModelWorker("m")
    worker.close()
    with pytest.raises(EngineError, match="closed"):
        worker.call(lambda: None)


def test_iterate_in_thread_keeps_the_loop_free_and_cancels_its_thread_when_dropped() -> None:
    produced: list[int] = []
    ticks = 0

    def slow() -> object:
        for i in range(1000):
            current_token().check()
            produced.append(i)
            time.sleep(0.01)
            yield i

    async def main() -> list[int]:
        nonlocal ticks
        got: list[int] = []

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            items = iterate_in_thread(slow)  # type: ignore[arg-type]
            async for item in items:
                got.append(item)
                if len(got) == 5:
                    break
            await items.aclose()
            await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
        return got

    assert anyio.run(main) == [0, 1, 2, 3, 4]
    assert ticks > 10  # the event loop ran while the thread worked
    assert len(produced) < 15  # the thread stopped soon after the reader left


def test_run_in_thread_reuses_threads_and_carries_result_error_context_and_token() -> None:
    """Blocking work runs on pooled threads (no thread start per call), in the caller's context, under a child
    of the caller's token; its exception, whatever the type, is raised in the caller."""
    parent = CancelToken()

    def where() -> tuple[int, CancelToken | None]:
        return threading.get_ident(), current_token().parent

    async def main() -> list[tuple[int, CancelToken | None]]:
        with use_token(parent):
            return [await run_in_thread(where) for _ in range(20)]

    seen = anyio.run(main)
    assert len({ident for ident, _ in seen}) < 10  # idle threads are taken again (a few may race their return)
    assert threading.get_ident() not in {ident for ident, _ in seen}
    assert all(token is parent for _, token in seen)

    def fail() -> None:
        raise KeyError("from the thread")

    with pytest.raises(KeyError, match="from the thread"):
        anyio.run(run_in_thread, fail)


def test_run_in_thread_returns_at_once_when_cancelled_and_its_token_fires() -> None:
    fired = threading.Event()

    def wait_for_cancel() -> None:
        token = current_token()
        while not token.cancelled:
            time.sleep(0.005)
        fired.set()

    async def main() -> float:
        started = time.monotonic()
        with anyio.move_on_after(0.1):
            await run_in_thread(wait_for_cancel)
        return time.monotonic() - started

    assert anyio.run(main) < 1.0
    assert fired.wait(2)  # the thread saw its token fire and wound down


def test_short_operations_go_before_generations_unless_a_generation_waited_too_long() -> None:
    worker = ModelWorker("m", max_wait_s=0.3)
    order: list[str] = []
    release = threading.Event()

    def generation(name: str) -> Callable[[CancelToken, object], None]:
        def work(token: CancelToken, emit: object) -> None:
            order.append(name)
            if name == "first":
                release.wait(5)

        return work

    def consume(name: str) -> None:
        list(worker.stream(generation(name)))

    def short(name: str) -> None:
        worker.call(lambda: order.append(name))

    first = threading.Thread(target=consume, args=("first",))
    first.start()
    while not order:
        time.sleep(0.005)
    waiting = [threading.Thread(target=consume, args=("long",)), threading.Thread(target=short, args=("short",))]
    for t in waiting:
        t.start()
        time.sleep(0.02)  # the generation arrives first
    release.set()
    for t in (first, *waiting):
        t.join(5)
    assert order == ["first", "short", "long"]  # a one-token step need not wait for a whole answer

    order.clear()
    release.clear()
    first = threading.Thread(target=consume, args=("first",))
    first.start()
    while not order:
        time.sleep(0.005)
    late = threading.Thread(target=consume, args=("long",))
    late.start()
    time.sleep(0.4)  # the generation is overdue by the time the short one arrives
    quick = threading.Thread(target=short, args=("short",))
    quick.start()
    time.sleep(0.02)
    release.set()
    for t in (first, late, quick):
        t.join(5)
    assert order == ["first", "long", "short"]
    worker.close()


def test_in_parallel_runs_the_calls_at_once_in_the_callers_context_and_keeps_their_order() -> None:
    barrier = threading.Barrier(3, timeout=5)  # passes only when all three run at the same time

    def call(i: int) -> tuple[int, CancelToken]:
        barrier.wait()
        return i, current_token()

    with cancel_scope(timeout=60) as token:
        results = in_parallel(*(lambda i=i: call(i) for i in range(3)))
    assert [i for i, _ in results] == [0, 1, 2]
    assert all(t.parent is token for _, t in results)  # each under a child of the caller's token


def test_in_parallel_the_first_failure_cancels_the_others_and_is_raised() -> None:
    stopped = threading.Event()

    def fails() -> None:
        raise EngineError("boom")

    def waits() -> None:
        try:
            current_token().sleep(30)
        finally:
            stopped.set()

    t0 = time.monotonic()
    with pytest.raises(EngineError, match="boom"):
        in_parallel(waits, fails)
    assert stopped.is_set() and time.monotonic() - t0 < 5
