"""`Fallback`: answer with the primary model; when it fails, answer with the backup and say so."""

from __future__ import annotations

from collections.abc import Iterator

from tandemlm.collab.base import Strategy, decided, decided_stream
from tandemlm.errors import EngineError
from tandemlm.models.base import LanguageModel
from tandemlm.types import Chunk, Completion, Request


class Fallback(Strategy):
    """The primary answers; an engine failure (error status, timeout, unreachable endpoint) hands the
    request to the backup, typically an edge model standing in for an unavailable cloud. Input errors
    (validation, context length) are not retried: the backup would reject them too. A stream falls
    back only if the primary fails before its first piece; later the answer is already partly sent.
    """

    def __init__(self, primary: LanguageModel, backup: LanguageModel, *, name: str | None = None) -> None:
        super().__init__(name or f"{primary.name}|{backup.name}", (primary, backup), context_from=(primary,))
        self.primary, self.backup = primary, backup

    def _generate(self, request: Request) -> Completion:
        try:
            return decided(self.primary.generate(request, role="primary"), "primary")
        except EngineError as err:
            return decided(self.backup.generate(request, role="fallback"), _why(err))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        pieces = self.primary.stream(request, role="primary")
        try:
            first = next(pieces)
        except EngineError as err:
            yield from decided_stream(self.backup.stream(request, role="fallback"), _why(err))
            return
        yield from decided_stream(_prepend(first, pieces), "primary")


def _why(err: EngineError) -> str:
    return f"fallback: {err}"


def _prepend(first: Chunk, rest: Iterator[Chunk]) -> Iterator[Chunk]:
    yield first
    yield from rest
