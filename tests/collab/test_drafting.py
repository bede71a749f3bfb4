"""Prompt-lookup and hybrid drafting: exact on scripted logits (the proposal, the fallback, greedy identity, the
sampled distribution of a deterministic draft), and the same greedy text as the target alone on SmolLM2."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from scripted_vocab import END, VOCAB, greedy_reference, scripted

from tandemlm import Request
from tandemlm.collab.drafting import PromptLookup, next_lookup_k
from tandemlm.collab.speculative import SpeculativeDecoder, _accept
from tandemlm.config import SpeculativeSpec
from tandemlm.types import GenerationParams, LogProbs


def test_lookup_proposes_what_followed_the_latest_match_of_the_longest_suffix() -> None:
    lookup = PromptLookup(min_n=1, max_n=3)
    #          0  1  2  3  4  5  6  7  8  9
    context = [1, 2, 3, 4, 5, 9, 2, 3, 7, 1, 2, 3]
    # the suffix [1, 2, 3] occurs at 0 only (3 tokens beat the later [2, 3] at 6): its continuation is 4, 5, 9...
    assert lookup.propose(context, 3) == [4, 5, 9]
    assert lookup.propose(context, 20) == [4, 5, 9, 2, 3, 7, 1, 2, 3]  # up to the end of the context
    # only [3] matches (at 2 and 7): the latest wins
    assert lookup.propose([3, 8, 6, 3, 5, 0, 3], 2) == [5, 0]
    assert PromptLookup(min_n=2, max_n=3).propose([3, 8, 6, 3, 5, 0, 3], 2) == []  # no 2-gram match
    assert lookup.propose([1, 2, 3], 4) == []  # nothing repeats
    assert lookup.propose([7], 4) == [] and lookup.propose(context, 0) == []
    with pytest.raises(ValueError, match="min_n <= max_n"):
        PromptLookup(min_n=3, max_n=2)


def test_next_lookup_k_doubles_after_a_full_acceptance_and_shrinks_after_a_rejection() -> None:
    assert next_lookup_k(2, 2, 2, 8) == 4
    assert next_lookup_k(8, 8, 8, 8) == 8
    assert next_lookup_k(8, 3, 3, 8) == 8  # a short continuation taken whole: keep the budget
    assert next_lookup_k(8, 8, 2, 8) == 3
    assert next_lookup_k(8, 8, 0, 8) == 1


def noisy(seed: str) -> Callable[[Sequence[int]], list[float]]:
    def logits(prefix: Sequence[int]) -> list[float]:
        digest = hashlib.sha256((seed + ",".join(map(str, prefix))).encode()).digest()
        values = [b / 255 * 3.0 for b in digest[: len(VOCAB)]]
        values[END] -= 1.0 if len(prefix) < 14 else -3.0
        return values

    return logits


def copier(prefix: Sequence[int]) -> list[float]:
    """A target that repeats its input "abcdeabcde...": lookup's best case, with noise where it would not copy."""
    values = noisy("copier")(prefix)
    values[prefix[-1] % 5 + 1] += 4.0 if len(prefix) % 7 else 0.0  # every 7th position is the noise's choice
    return values


class Counted:
    def __init__(self, logits: Callable[[Sequence[int]], list[float]]) -> None:
        self.logits, self.calls = logits, 0

    def __call__(self, prefix: Sequence[int]) -> list[float]:
        self.calls += 1
        return self.logits(prefix)


@pytest.mark.parametrize("drafter", ["lookup", "hybrid"])
@pytest.mark.parametrize("lookup_k", [1, 3, 8])
@pytest.mark.parametrize("target_logits", [copier, noisy("target")], ids=["copying", "fresh"])
def test_greedy_output_equals_the_target_alone(
    drafter: str, lookup_k: int, target_logits: Callable[[Sequence[int]], list[float]]
) -> None:
    target = scripted(target_logits, "target")
    draft = scripted(noisy("draft"), "draft")
    spec = SpeculativeDecoder(
        draft,
        target,
        drafter=drafter,
        lookup=PromptLookup(min_n=1, max_n=3),
        lookup_k=lookup_k,
        k=3,  # type: ignore[arg-type]
    )
    request = Request.of("abcdeabcde", max_tokens=30)
    expected = greedy_reference(target, target.prompt_tokens(request), 30)
    c = spec.generate(request)
    assert c.text == "".join(VOCAB[t] for t in expected)
    stats = spec.last_stats
    assert stats.generated == len(expected) and stats.lookup_rounds > 0
    assert stats.lookup_accepted <= stats.lookup_drafted <= stats.drafted


def test_lookup_drafts_are_accepted_where_the_target_copies() -> None:
    target = scripted(copier, "target")
    spec = SpeculativeDecoder(None, target, drafter="lookup", lookup=PromptLookup(min_n=1, max_n=3), lookup_k=8)
    spec.generate(Request.of("abcdeabcde", max_tokens=30))
    stats = spec.last_stats
    assert stats.lookup_rounds == stats.rounds and stats.lookup_accepted / stats.lookup_drafted > 0.5
    assert stats.rounds < stats.generated / 2  # more than two tokens per target pass
    assert spec.name == "speculative(lookup->target)" and spec.children == (target,)


def test_hybrid_falls_back_to_the_draft_model_where_lookup_finds_no_match() -> None:
    draft_logits = Counted(noisy("draft"))
    target = scripted(noisy("target"), "target")
    spec = SpeculativeDecoder(
        scripted(draft_logits, "draft"), target, drafter="hybrid", lookup=PromptLookup(min_n=4, max_n=4), k=2,
        adaptive=False,
    )  # fmt: skip
    # no 4-gram of a fresh answer repeats within 12 tokens here: every round is the model's
    request = Request.of("abcde", max_tokens=12)
    c = spec.generate(request)
    assert c.text == "".join(VOCAB[t] for t in greedy_reference(target, target.prompt_tokens(request), 12))
    assert spec.last_stats.lookup_rounds == 0 and draft_logits.calls == spec.last_stats.drafted > 0
    # a prompt whose suffix repeats: the first round is lookup's, and the draft model is not asked for it
    draft_logits.calls = 0
    spec.generate(Request.of("abcdabcd", max_tokens=1 + 1))
    assert spec.last_stats.lookup_rounds == 1 and draft_logits.calls == 0


def test_a_deterministic_draft_keeps_the_target_distribution_exactly() -> None:
    """q one-hot at x: x is kept with probability p(x), else the correction is drawn from p without x. Chi-square
    over many draws of the rule itself, for each drafted x, including one the target never picks."""
    p = np.array([0.0, 0.5, 0.25, 0.15, 0.1, 0.0, 0.0])
    verdict = LogProbs.from_logits(np.log(np.maximum(p, 1e-300)))
    params = GenerationParams(temperature=1.0)
    rng = np.random.default_rng(0)
    draws = 4000
    for x in (1, 3, 5):
        counts = np.zeros(len(VOCAB))
        for _ in range(draws):
            counts[_accept([x], [None], [verdict, verdict], params, rng)[0]] += 1
        expected = p[1:5] * draws
        chi2 = float(((counts[1:5] - expected) ** 2 / expected).sum())
        assert chi2 < 16.27, (x, counts, chi2)  # df = 3, p = 0.001
        assert counts[[0, 5, 6]].sum() == 0


def test_lookup_sampling_keeps_the_target_distribution_exactly() -> None:
    """End to end: every token of lookup-drafted sampling is distributed as the target's (the same p at every
    position), though lookup proposes at almost every round."""
    p = np.array([0.0, 0.5, 0.25, 0.15, 0.1, 0.0, 0.0])
    target = scripted(lambda prefix: np.log(np.maximum(p, 1e-300)).tolist(), "target")
    spec = SpeculativeDecoder(None, target, drafter="lookup", lookup=PromptLookup(min_n=1, max_n=2), lookup_k=3)
    counts = np.zeros(len(VOCAB))
    runs, looked = 1000, 0
    for seed in range(runs):
        c = spec.generate(Request.of("abcd", max_tokens=4, temperature=1.0, seed=seed))
        for ch in c.text:
            counts[VOCAB.index(ch)] += 1
        looked += spec.last_stats.lookup_drafted
    n = counts.sum()
    assert n == runs * 4 and looked > runs
    expected = p[1:5] * n
    chi2 = float(((counts[1:5] - expected) ** 2 / expected).sum())
    assert chi2 < 16.27, (counts, chi2)


def test_config_lookup_needs_no_draft_model_and_hybrid_does() -> None:
    spec = SpeculativeSpec(target="t", drafter="lookup", lookup_min_n=1, lookup_max_n=3, lookup_k=5)
    target = scripted(noisy("target"), "t")
    built = spec.build(lambda name: target, "lookup-spec")
    assert isinstance(built, SpeculativeDecoder) and built.draft is None and built.lookup_k == 5
    assert built.lookup is not None and (built.lookup.min_n, built.lookup.max_n) == (1, 3)
    with pytest.raises(ValueError, match="drafter 'hybrid' needs a draft model"):
        SpeculativeSpec(target="t", drafter="hybrid")
    with pytest.raises(ValueError, match="lookup_min_n"):
        SpeculativeSpec(target="t", drafter="lookup", lookup_min_n=4, lookup_max_n=2)
    with pytest.raises(ValueError, match="needs a draft model"):
        SpeculativeDecoder(None, target, drafter="hybrid")


@pytest.mark.slow
def test_smollm2_lookup_drafting_gives_the_target_alones_greedy_text(smollm2: object) -> None:
    from tandemlm.models.llamacpp import LlamaCppModel

    assert isinstance(smollm2, LlamaCppModel)
    spec = SpeculativeDecoder(None, smollm2, drafter="lookup")
    text = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n"
    request = Request.of(f"Copy this code exactly.\n\n{text}\nHere is the code copied exactly:\n\n", max_tokens=40)
    smollm2.clear_cache()
    alone = smollm2.generate(request).text
    smollm2.clear_cache()
    assert spec.generate(request).text == alone
    stats = spec.last_stats
    assert stats.lookup_accepted > 10 and stats.rounds < stats.generated
