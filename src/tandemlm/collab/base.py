"""`Strategy`: the base of every LanguageModel built from others (pydantic-ai's `WrapperModel`).

It derives the limits of the combination from its children once (concurrency and context window: the
tightest of the children that bound it), stamps the strategy's decision on the answer, and inherits the
base class's async path: the strategy's blocking logic runs in a thread of its own under the request's
cancel token, so a dropped client or a passed deadline stops whichever child it is waiting on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from tandemlm.models.base import LanguageModel, tightest
from tandemlm.types import Chunk, Completion


class Strategy(LanguageModel):
    """A LanguageModel made of `children`. It runs on the device (location edge, no price of its own); the
    children's calls carry their own location, cost and egress. `context_from`: the children whose context
    window bounds the strategy's (default all of them)."""

    def __init__(
        self, name: str, children: Sequence[LanguageModel], *, context_from: Sequence[LanguageModel] | None = None
    ) -> None:
        super().__init__(name)
        self.children = tuple(children)
        self._context_from = tuple(context_from) if context_from is not None else self.children
        self.max_concurrency = tightest(c.max_concurrency for c in self.children)

    @property
    def context_length(self) -> int | None:
        return tightest(c.context_length for c in self._context_from)


def leaves(model: LanguageModel) -> Iterator[LanguageModel]:
    """The engines a model is built from (itself, for an engine), each once, through nested strategies."""
    seen: set[int] = set()
    todo = [model]
    while todo:
        m = todo.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        if isinstance(m, Strategy):
            todo.extend(reversed(m.children))
        else:
            yield m


def decided(completion: Completion, decision: str) -> Completion:
    """The completion with the strategy's decision on it (and so on its trace event)."""
    return replace(completion, decision=decision)


def decided_stream(pieces: Iterable[Chunk], decision: str) -> Iterator[Chunk]:
    """A stream whose final chunk carries the strategy's decision."""
    for chunk in pieces:
        if chunk.completion is not None:
            chunk = replace(chunk, completion=decided(chunk.completion, decision))
        yield chunk
