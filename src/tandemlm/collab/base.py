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
from tandemlm.types import FEATURES, Chunk, Completion

#: why token-level strategies refuse tools and logprobs (for now), and response_format without a grammar
TOKEN_LEVEL = (
    "a token-level strategy picks every token itself: it decodes response_format under a grammar where its models "
    "can build one (llama.cpp models), and does not yet report per-token logprobs or call tools; send this request "
    "to a pipeline of one model, a cascade or a router"
)


def token_level_features(reader: LanguageModel) -> frozenset[str]:
    """What a token-level strategy honours: structured output when the model reading its tokens has grammars."""
    return frozenset({"response_format"}) if reader.grammars else frozenset()


class Strategy(LanguageModel):
    """A LanguageModel made of `children`. It runs on the device (location edge, no price of its own); the
    children's calls carry their own location, cost and egress. `context_from`: the children whose context
    window bounds the strategy's (default all of them)."""

    #: The request features (response_format, logprobs, tools) the strategy hands its children unchanged, so
    #: they decode under them: all, for strategies that choose a model per request. It honours those every child
    #: honours; `not_carried` says why the others are refused.
    carries: frozenset[str] = FEATURES
    not_carried = ""

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

    @property
    def features(self) -> frozenset[str]:
        out = self.carries
        for child in self.children:
            out &= child.features
        return out

    def refusal(self, feature: str) -> str:
        if feature not in self.carries:
            return f"pipeline {self.name!r} ({type(self).__name__}) does not support {feature}: {self.not_carried}"
        lacking = next(c for c in self.children if feature not in c.features)
        return f"pipeline {self.name!r} cannot honour {feature}: {lacking.refusal(feature)}"


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
