"""Speculative decoding: exact on scripted logits (greedy identity, sampling distribution), identical on Qwen."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from scripted_vocab import END, VOCAB, greedy_reference, scripted

from tandemlm import Request, ScriptedModel
from tandemlm.collab.speculative import SpeculativeDecoder, speedup_bound
from tandemlm.errors import VocabularyMismatchError


def noisy(seed: str, spread: float = 3.0) -> Callable[[Sequence[int]], list[float]]:
    """Deterministic logits that depend on the whole prefix, like a real model's."""

    def logits(prefix: Sequence[int]) -> list[float]:
        digest = hashlib.sha256((seed + ",".join(map(str, prefix))).encode()).digest()
        values = [b / 255 * spread for b in digest[: len(VOCAB)]]
        values[END] -= 1.0 if len(prefix) < 12 else -3.0  # the end token becomes likely later on
        return values

    return logits


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("agreement", [0.0, 1.0, 3.0])
def test_greedy_output_equals_the_target_alone(k: int, agreement: float) -> None:
    target_logits = noisy("target")
    draft_noise = noisy("draft")

    def draft_logits(prefix: Sequence[int]) -> list[float]:  # a draft that agrees with the target to a degree
        return [agreement * t + d for t, d in zip(target_logits(prefix), draft_noise(prefix), strict=True)]

    target = scripted(target_logits, "target")
    spec = SpeculativeDecoder(scripted(draft_logits, "draft"), target, k=k, adaptive=False, k_max=8)
    request = Request.of("abc", max_tokens=20)
    expected = greedy_reference(target, target.prompt_tokens(request), 20)
    c = spec.generate(request)
    assert c.text == "".join(VOCAB[t] for t in expected)
    assert c.usage.completion_tokens == len(expected)
    stats = spec.last_stats
    assert stats.generated == len(expected) and stats.accepted <= stats.drafted
    assert c.decision is not None and c.decision.startswith("speculative: rounds=")


def test_a_draft_that_is_always_wrong_is_rejected_at_every_position() -> None:
    target_logits = noisy("target")

    def contrary(prefix: Sequence[int]) -> list[float]:
        values = target_logits(prefix)
        worst = int(np.argmin(values[:END]))
        return [10.0 if i == worst else 0.0 for i in range(len(VOCAB))]

    target = scripted(target_logits, "target")
    spec = SpeculativeDecoder(scripted(contrary, "draft"), target, k=3, adaptive=False)
    request = Request.of("abc", max_tokens=10)
    expected = greedy_reference(target, target.prompt_tokens(request), 10)
    assert spec.generate(request).text == "".join(VOCAB[t] for t in expected)
    ended = len(expected) < 10  # the last round's correction was the end token
    stats = spec.last_stats
    assert stats.accepted == 0 and stats.rounds == stats.generated + ended


def test_sampling_keeps_the_target_distribution_exactly() -> None:
    p = np.array([0.0, 0.5, 0.25, 0.15, 0.1, 0.0, 0.0])  # target, the same at every position
    q = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.0, 0.0])  # a draft that disagrees a lot
    as_logits = lambda probs: lambda prefix: np.log(np.maximum(probs, 1e-300)).tolist()  # noqa: E731
    spec = SpeculativeDecoder(scripted(as_logits(q), "draft"), scripted(as_logits(p), "target"), k=3, adaptive=False)
    counts = np.zeros(len(VOCAB))
    runs = 1500
    for seed in range(runs):
        c = spec.generate(Request.of("a", max_tokens=4, temperature=1.0, seed=seed))
        for ch in c.text:
            counts[VOCAB.index(ch)] += 1
    n = counts.sum()
    assert n == runs * 4
    expected = p[1:5] * n
    chi2 = float(((counts[1:5] - expected) ** 2 / expected).sum())
    assert chi2 < 16.27, (counts, chi2)  # df = 3, p = 0.001
    assert counts[[0, 5, 6]].sum() == 0


def test_refuses_models_with_different_vocabularies() -> None:
    other = ScriptedModel(name="other", vocab=("<unk>", "x", "y"))
    with pytest.raises(VocabularyMismatchError, match="needs one tokenizer.*different vocabularies"):
        SpeculativeDecoder(other, scripted(noisy("t"), "target"))


def test_end_token_and_stop_sequences() -> None:
    def prefers(token: int) -> Callable[[Sequence[int]], list[float]]:
        return lambda prefix: [5.0 if i == token else 0.0 for i in range(len(VOCAB))]

    def abc_then_end(prefix: Sequence[int]) -> list[float]:
        nxt = {1: 2, 2: 3, 3: END}.get(prefix[-1], 1)
        return [5.0 if i == nxt else 0.0 for i in range(len(VOCAB))]

    spec = SpeculativeDecoder(scripted(prefers(2), "draft"), scripted(abc_then_end, "target"), k=4)
    c = spec.generate(Request.of("d", max_tokens=50))
    assert (c.text, c.finish_reason) == ("abc", "stop")
    c = spec.generate(Request.of("d", max_tokens=50, stop=["bc"]))
    assert (c.text, c.finish_reason) == ("a", "stop")
    chunks = list(spec.stream(Request.of("d", max_tokens=2)))
    assert "".join(ch.text for ch in chunks) == "ab" and chunks[-1].finish_reason == "length"


def test_speedup_bound_matches_the_formula() -> None:
    assert speedup_bound(0.8, 4, 0.1) == pytest.approx((1 - 0.8**5) / (0.2 * 1.4))
    assert speedup_bound(1.0, 4, 0.25) == pytest.approx(5 / 2)
    assert speedup_bound(0.0, 3, 0.0) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.qwen
def test_qwen_speculative_greedy_text_equals_the_target_alone(catalog_path: Callable[[str], str]) -> None:
    from tandemlm.models.llamacpp import LlamaCppModel

    draft = LlamaCppModel(catalog_path("qwen2.5-coder-0.5b"), n_ctx=1024)
    target = LlamaCppModel(catalog_path("qwen2.5-coder-1.5b"), n_ctx=1024)
    try:
        spec = SpeculativeDecoder(draft, target, k=4)
        for prompt in ("Write a Python function that reverses a string.", "What is 12 + 30?"):
            request = Request.of(prompt, max_tokens=24)
            target.clear_cache()
            alone = target.generate(request).text
            assert spec.generate(request).text == alone
            assert spec.last_stats.drafted > 0
    finally:
        draft.close()
        target.close()


def test_adaptive_k_climbs_towards_the_fastest_measured_k() -> None:
    from tandemlm.collab.speculative import _next_k

    assert _next_k({4: (10, 1.0)}, 8) == 5  # try the neighbours of the best first
    assert _next_k({4: (10, 1.0), 5: (8, 1.0)}, 8) == 3
    assert _next_k({4: (10, 1.0), 5: (8, 1.0), 3: (12, 1.0)}, 8) == 2
    assert _next_k({1: (5, 1.0), 2: (9, 1.0), 3: (7, 1.0)}, 8) == 2  # both neighbours tried: stay
    assert _next_k({8: (9, 1.0), 7: (5, 1.0)}, 8) == 8  # never beyond k_max


# ---- under a decoding grammar -------------------------------------------------------------------------------


class OnlyLetters:
    """A stand-in grammar over VOCAB: `allowed` tokens for `length` positions, then only the end token."""

    def __init__(self, allowed: tuple[int, ...], length: int, seen: int = 0) -> None:
        self.allowed, self.length, self.seen = allowed, length, seen

    def mask(self, dist):  # type: ignore[no-untyped-def]
        from tandemlm.types import LogProbs

        ok = self.allowed if self.seen < self.length else (END,)
        return LogProbs.from_logits(np.where(np.isin(np.arange(len(VOCAB)), ok), dist.dense(), -np.inf))

    def allows(self, token: int) -> bool:
        return token in (self.allowed if self.seen < self.length else (END,))

    def accept(self, token: int) -> None:
        ok = self.allowed if self.seen < self.length else (END,)
        assert token in ok, f"token {token} is not allowed at position {self.seen}"
        self.seen += 1

    def copy(self) -> OnlyLetters:
        return OnlyLetters(self.allowed, self.length, self.seen)


class Grammared(ScriptedModel):
    grammars = True

    def constraint(self, grammar: str) -> OnlyLetters:  # type: ignore[override]
        return OnlyLetters((2, 3, 4), 5)


def _json_request(**params: object) -> Request:
    from tandemlm.types import ResponseFormat

    return Request.of("abc", max_tokens=20, response_format=ResponseFormat("json_object"), **params)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_under_a_grammar_greedy_output_is_the_targets_masked_greedy_output(k: int) -> None:
    target = Grammared(name="target", vocab=VOCAB, logits=noisy("target"), end_token=END)
    spec = SpeculativeDecoder(scripted(noisy("draft"), "draft"), target, k=k, adaptive=False)
    assert "response_format" in spec.features
    rules, prompt, expected = OnlyLetters((2, 3, 4), 5), target.prompt_tokens(_json_request()), []
    while True:
        token = rules.mask(target.next_token_logprobs(prompt + expected)).argmax()
        if token == END:
            break
        rules.accept(token)
        expected.append(token)
    c = spec._generate(_json_request())  # the stand-in grammar is no JSON: the mechanism, without the JSON check
    assert c.text == "".join(VOCAB[t] for t in expected) and len(expected) == 5 and c.finish_reason == "stop"


def test_under_a_grammar_sampling_keeps_the_targets_masked_distribution() -> None:
    p = np.array([0.0, 0.5, 0.25, 0.15, 0.1, 0.0, 0.0])
    q = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.0, 0.0])
    as_logits = lambda probs: lambda prefix: np.log(np.maximum(probs, 1e-300)).tolist()  # noqa: E731
    target = Grammared(name="target", vocab=VOCAB, logits=as_logits(p), end_token=END)
    spec = SpeculativeDecoder(scripted(as_logits(q), "draft"), target, k=3, adaptive=False)
    counts = np.zeros(len(VOCAB))
    runs = 800
    for seed in range(runs):
        for ch in spec._generate(_json_request(temperature=1.0, seed=seed)).text:
            counts[VOCAB.index(ch)] += 1
    assert counts.sum() == runs * 5 and counts[[0, 1, 5, 6]].sum() == 0  # "a" is forbidden: never written
    masked = p[2:5] / p[2:5].sum()
    expected = masked * counts.sum()
    chi2 = float(((counts[2:5] - expected) ** 2 / expected).sum())
    assert chi2 < 13.82, (counts, chi2)  # df = 2, p = 0.001
