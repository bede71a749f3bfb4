"""Token-level routing (R2R, CITER): the edge model decodes; where it is unsure, the cloud model picks the token.

Each step the edge model's next-token distribution gives a confidence (its top probability, or one
minus its normalised entropy). Below the threshold τ, the cloud model produces the next `span`
tokens from the shared prefix, then the edge continues. τ = 0 is the edge alone, τ = 1 the cloud
alone; in between, the cloud's share of tokens buys quality. The cloud evaluates only the tokens it
has not seen yet each time it is asked (prefix reuse in its KV cache).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from tandemlm.collab.base import TOKEN_LEVEL, Strategy, token_level_features
from tandemlm.collab.decoding import Decoded
from tandemlm.errors import ValidationError, VocabularyMismatchError
from tandemlm.models.base import Constraint, LanguageModel, final_completion
from tandemlm.structured import response_grammar
from tandemlm.types import Chunk, Completion, LogProbs, Request

Signal = Literal["top_prob", "entropy"]


@dataclass(frozen=True)
class RoutingStats:
    edge_tokens: int = 0
    cloud_tokens: int = 0
    cloud_calls: int = 0

    @property
    def cloud_share(self) -> float:
        total = self.edge_tokens + self.cloud_tokens
        return self.cloud_tokens / total if total else 0.0

    def describe(self) -> str:
        return (
            f"token_routing: edge_tokens={self.edge_tokens} cloud_tokens={self.cloud_tokens} "
            f"cloud_calls={self.cloud_calls} cloud_share={self.cloud_share:.3f}"
        )


def confidence(lp: LogProbs, signal: Signal) -> float:
    """How sure a distribution is, in [0, 1]: its top probability, or 1 − entropy / log(vocabulary size)."""
    if signal == "top_prob":
        return math.exp(lp.top(1)[0][1])
    return 1.0 - lp.entropy() / math.log(lp.vocab_size)


class TokenRouter(Strategy):
    """The edge decodes greedily; tokens where its confidence is below `threshold` come from the cloud."""

    carries = frozenset()
    not_carried = TOKEN_LEVEL
    constrained = True  # structured output is decoded under the grammar: a broken answer is not asked for again

    @property
    def features(self) -> frozenset[str]:
        return token_level_features(self.edge)

    def __init__(
        self,
        edge: LanguageModel,
        cloud: LanguageModel,
        *,
        threshold: float,
        signal: Signal = "top_prob",
        span: int = 1,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"token_routing({edge.name}|{cloud.name})", (edge, cloud), context_from=(edge,))
        if not 0.0 <= threshold <= 1.0:
            raise ValidationError(f"threshold must be in [0, 1], got {threshold}")
        if signal not in ("top_prob", "entropy") or span < 1:
            raise ValidationError(f"signal must be top_prob or entropy and span >= 1, got {signal!r}, {span}")
        fe, fc = edge.vocab_fingerprint, cloud.vocab_fingerprint
        if fe is None or fc is None or fe != fc:
            raise VocabularyMismatchError(f"token routing needs one tokenizer, but {edge.name} and {cloud.name} differ")
        self.edge, self.cloud = edge, cloud
        self.threshold, self.signal, self.span = threshold, signal, span
        self.last_stats = RoutingStats()

    def _count_prompt_tokens(self, request: Request) -> int:
        return len(self.edge.prompt_tokens(request))

    def _prompt_tokens(self, request: Request) -> list[int]:
        return self.edge.prompt_tokens(request)

    def _is_end_token(self, token: int) -> bool:
        return self.edge.is_end_token(token)

    def _generate(self, request: Request) -> Completion:
        return final_completion(self._stream(request))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        params = request.params
        if params.temperature != 0:
            raise ValidationError("token routing decodes greedily: set temperature to 0")
        answer = Decoded(self.edge, self.edge.prompt_tokens(request), params)
        stats = RoutingStats()
        rf = params.response_format
        # under a grammar both models' distributions are masked to what it allows (the edge's confidence too)
        rules = self.edge.constraint(response_grammar(rf)) if rf is not None else None
        while not answer.done:
            # at threshold 1 the cloud takes every token: the edge need not even look
            mine = None if self.threshold >= 1.0 else self.edge.next_token_logprobs(answer.prefix, role="edge")
            if mine is not None and rules is not None:
                mine = rules.mask(mine)
            if mine is None or confidence(mine, self.signal) < self.threshold:
                new = self._cloud_span(answer.prefix, min(self.span, answer.room), rules)
                stats = RoutingStats(stats.edge_tokens, stats.cloud_tokens + len(new), stats.cloud_calls + 1)
            else:
                new = [mine.argmax()]
                if rules is not None and not self.edge.is_end_token(new[0]):
                    rules.accept(new[0])
                stats = RoutingStats(stats.edge_tokens + 1, stats.cloud_tokens, stats.cloud_calls)
            if piece := answer.add(new):
                yield Chunk(piece)
        self.last_stats = stats
        yield from answer.final(self.name, stats.describe())

    def _cloud_span(self, prefix: list[int], n: int, rules: Constraint | None = None) -> list[int]:
        """n greedy tokens from the cloud model (stopping at an end token), under the grammar's `rules` if any."""
        new: list[int] = []
        for _ in range(n):
            # a remote cloud sends only the argmax, or the whole distribution when a grammar may forbid it
            dist = self.cloud.next_token_logprobs(prefix + new, top_k=None if rules else 1, role="cloud")
            token = (rules.mask(dist) if rules else dist).argmax()
            new.append(token)
            if self.edge.is_end_token(token):
                break
            if rules is not None:
                rules.accept(token)
        return new
