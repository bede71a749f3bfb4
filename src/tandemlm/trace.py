"""Trace recording and the egress ledger.

Every model call emits one `TraceEvent` into each active `Recorder` (a context-local stack), so a
strategy's completion carries the events of every model it called, however deeply nested, and a
caller can record calls made outside `generate` (logprobs, scores) the same way. A recorder given
a ledger path also appends each cloud call's exact egress text to a JSONL file.
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
        if self.ledger is not None and event.egress is not None:
            append_ledger(self.ledger, event)


def record(event: TraceEvent) -> None:
    """Hand one event to every active recorder."""
    for recorder in _active.get():
        recorder.add(event)


def append_ledger(path: Path, event: TraceEvent) -> None:
    """Append one egress record (time, model, operation, exact text) to a JSONL ledger file."""
    line = json.dumps(
        {
            "time": time.time(),
            "model": event.model,
            "operation": event.operation,
            "role": event.role,
            "text": event.egress,
        },
        ensure_ascii=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with _ledger_lock, path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
