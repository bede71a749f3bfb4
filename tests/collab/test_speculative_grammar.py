"""Greedy speculative decoding under a grammar picks the allowed argmax from the likeliest tokens first: the
same token as masking the whole vocabulary, ties included, in one grammar call instead of a vocabulary's."""

from __future__ import annotations

import numpy as np
import pytest

from tandemlm.collab.speculative import GRAMMAR_CANDIDATES, _allowed_argmax
from tandemlm.errors import EngineError
from tandemlm.types import LogProbs

VOCAB = 1000


class AllowedSet:
    """A grammar state allowing a fixed set of token ids; counts the tokens it is asked about."""

    def __init__(self, allowed: set[int]) -> None:
        self.allowed, self.checked = allowed, 0

    def mask(self, dist: LogProbs) -> LogProbs:
        ids = np.arange(dist.vocab_size) if dist.ids is None else dist.ids
        self.checked += len(ids)
        keep = np.isin(ids, list(self.allowed))
        if not keep.any():
            raise EngineError("the decoding grammar allows none of the tokens offered")
        if dist.ids is None:
            return LogProbs.from_logits(np.where(keep, dist.values, -np.inf))
        kept = (dist.values[keep] - dist.values[keep].max()).tolist()
        return LogProbs.from_top(dist.vocab_size, list(zip(ids[keep].tolist(), kept, strict=True)))

    def allows(self, token: int) -> bool:
        return token in self.allowed

    def accept(self, token: int) -> None: ...

    def copy(self) -> AllowedSet:
        return self


@pytest.mark.parametrize("seed", range(40))
def test_the_allowed_argmax_is_the_masked_vocabularys_argmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = np.round(rng.normal(size=VOCAB), 1 if seed % 2 else 6)  # coarse logits: many ties
    dist = LogProbs.from_logits(logits)
    order = np.argsort(-dist.values, kind="stable")
    allowed = set(rng.choice(VOCAB, size=int(rng.integers(1, 400)), replace=False).tolist())
    if seed % 5 == 0:  # nothing allowed among the likeliest: the whole vocabulary is masked
        allowed = set(order[GRAMMAR_CANDIDATES + 5 :][:3].tolist())
    state = AllowedSet(allowed)
    expected = AllowedSet(allowed).mask(dist).argmax()
    assert _allowed_argmax(state, dist) == expected
    if seed % 5 and allowed & set(order[: GRAMMAR_CANDIDATES // 2].tolist()) and seed % 2 == 0:
        assert state.checked == GRAMMAR_CANDIDATES  # found among the candidates: one small call


def test_a_tie_at_the_candidates_edge_falls_back_to_the_whole_vocabulary() -> None:
    logits = np.zeros(VOCAB)
    logits[:10] = 5.0  # ten likeliest forbidden; the other 990 tie, so the lowest allowed id must win
    state = AllowedSet({500, 900, 20})
    assert _allowed_argmax(state, LogProbs.from_logits(logits)) == 20
    assert state.checked == GRAMMAR_CANDIDATES + VOCAB
