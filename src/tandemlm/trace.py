"""Trace recording and the egress ledger.

Every model call emits one `TraceEvent` into each active `Recorder` (a context-local stack), so a
strategy's completion carries the events of every model it called, however deeply nested, and a
caller can record calls made outside `generate` (logprobs, scores) the same way. The egress ledger
is written where bytes leave (`models.base.leaving`), not from finished traces, so a call that failed,
timed out or was cancelled after sending is in it too; a recorder given a ledger path gets a copy.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from pathlib import Path
from types import TracebackType

from tandemlm.types import TraceEvent

_active: contextvars.ContextVar[tuple[Recorder, ...]] = contextvars.ContextVar("tandem_recorders", default=())
_ledger_lock = threading.Lock()


class Recorder:
    """Collects the trace events of all model calls made while it is active (`with Recorder() as rec:`)."""

    def __init__(self, ledger: str | Path | None = None) -> None:
        self.events: list[TraceEvent] = []
        self.ledger = Path(ledger) if ledger is not None else None
        self._token: contextvars.Token[tuple[Recorder, ...]] | None = None

    def __enter__(self) -> Recorder:
        self._token = _active.set((*_active.get(), self))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._token is not None
        _active.reset(self._token)
        self._token = None

    def add(self, event: TraceEvent) -> None:
        self.events.append(event)


def record(event: TraceEvent) -> None:
    """Hand one event to every active recorder."""
    for recorder in _active.get():
        recorder.add(event)


def write_egress(ledger: Path | None, model: str, operation: str, role: str, text: str) -> None:
    """Append one egress record to the model's ledger and to the ledger of every active recorder that has one
    (each file once). Called where the bytes leave, before they are sent."""
    paths = {p.expanduser() for p in (ledger, *(r.ledger for r in _active.get())) if p is not None}
    if not paths:
        return
    line = json.dumps(
        {"time": time.time(), "model": model, "operation": operation, "role": role, "text": text},
        ensure_ascii=False,
    )
    with _ledger_lock:
        for path in sorted(paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
