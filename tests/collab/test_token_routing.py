"""Token-level routing on scripted logits: the thresholds' end points, each routing decision, spans."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence

import pytest

from tandemlm import Recorder, Request, ScriptedModel
from tandemlm.collab.token_routing import TokenRouter, confidence
from tandemlm.errors import ValidationError, VocabularyMismatchError
from tandemlm.types import LogProbs

VOCAB = ("<unk>", "a", "b", "c", "d", "<end>")
END = 5


def noisy(seed: str) -> Callable[[Sequence[int]], list[float]]:
    def logits(prefix: Sequence[int]) -> list[float]:
        digest = hashlib.sha256((seed + ",".join(map(str, prefix))).encode()).digest()
        values = [b / 255 * 4 for b in digest[: len(VOCAB)]]
        values[END] += 3.0 if len(prefix) > 14 else -3.0
        return values

    return logits


def model(seed: str, name: str) -> ScriptedModel:
    return ScriptedModel(name=name, vocab=VOCAB, logits=noisy(seed), end_token=END)


def greedy(m: ScriptedModel, prompt: list[int], n: int) -> str:
    out: list[int] = []
    while len(out) < n and (t := m.next_token_logprobs(prompt + out).argmax()) != END:
        out.append(t)
    return "".join(VOCAB[t] for t in out)


@pytest.mark.parametrize("signal", ["top_prob", "entropy"])
def test_threshold_zero_is_the_edge_alone_and_one_the_cloud_alone(signal: str) -> None:
    edge, cloud = model("edge", "edge"), model("cloud", "cloud")
    request = Request.of("abc", max_tokens=20)
    prompt = edge.prompt_tokens(request)
    low = TokenRouter(edge, cloud, threshold=0.0, signal=signal)  # type: ignore[arg-type]
    assert low.generate(request).text == greedy(edge, prompt, 20) and low.last_stats.cloud_tokens == 0
    high = TokenRouter(edge, cloud, threshold=1.0, signal=signal)  # type: ignore[arg-type]
    assert high.generate(request).text == greedy(cloud, prompt, 20) and high.last_stats.edge_tokens == 0


def test_each_uncertain_token_goes_to_the_cloud() -> None:
    edge, cloud = model("edge", "edge"), model("cloud", "cloud")
    router = TokenRouter(edge, cloud, threshold=0.45)
    request = Request.of("abc", max_tokens=12)
    prompt = edge.prompt_tokens(request)
    expected, sources = [], []
    while len(expected) < 12:
        mine = edge.next_token_logprobs(prompt + expected)
        sure = math.exp(mine.top(1)[0][1]) >= 0.45
        token = mine.argmax() if sure else cloud.next_token_logprobs(prompt + expected).argmax()
        sources.append("edge" if sure else "cloud")
        if token == END:
            break
        expected.append(token)
    with Recorder() as rec:
        c = router.generate(request)
    assert c.text == "".join(VOCAB[t] for t in expected)
    assert router.last_stats.cloud_tokens == sources.count("cloud") > 0 and router.last_stats.edge_tokens > 0
    assert [e.role for e in rec.events if e.model == "cloud"] == ["cloud"] * sources.count("cloud")
    assert c.decision is not None and f"cloud_share={router.last_stats.cloud_share:.3f}" in c.decision


def test_a_span_hands_several_tokens_to_the_cloud() -> None:
    edge, cloud = model("edge", "edge"), model("cloud", "cloud")
    router = TokenRouter(edge, cloud, threshold=1.0, span=4)
    c = router.generate(Request.of("abc", max_tokens=8))
    assert router.last_stats.cloud_calls == math.ceil(router.last_stats.cloud_tokens / 4)
    assert c.text == greedy(cloud, cloud.prompt_tokens(Request.of("abc")), 8)


def test_confidence_signals() -> None:
    sure = LogProbs.from_logits([0.0, 0.0, 20.0, 0.0])
    flat = LogProbs.from_logits([1.0, 1.0, 1.0, 1.0])
    assert confidence(sure, "top_prob") > 0.99 and confidence(flat, "top_prob") == pytest.approx(0.25)
    assert confidence(sure, "entropy") > 0.99 and confidence(flat, "entropy") == pytest.approx(0.0, abs=1e-12)


def test_bad_settings_are_refused() -> None:
    edge, cloud = model("e", "edge"), model("c", "cloud")
    with pytest.raises(ValidationError, match="threshold must be in"):
        TokenRouter(edge, cloud, threshold=1.5)
    with pytest.raises(VocabularyMismatchError, match="one tokenizer"):
        TokenRouter(edge, ScriptedModel(vocab=("x", "y")), threshold=0.5)
    with pytest.raises(ValidationError, match="greedily"):
        TokenRouter(edge, cloud, threshold=0.5).generate(Request.of("a", temperature=0.7))


class OnlyBC:
    """A stand-in grammar: "b" or "c" for 4 positions, then only the end token."""

    def __init__(self, seen: int = 0) -> None:
        self.seen = seen

    def _ok(self) -> tuple[int, ...]:
        return (2, 3) if self.seen < 4 else (END,)

    def mask(self, dist: LogProbs) -> LogProbs:
        values = [v if t in self._ok() else -math.inf for t, v in enumerate(dist.dense())]
        return LogProbs.from_logits(values)  # type: ignore[arg-type]

    def allows(self, token: int) -> bool:
        return token in self._ok()

    def accept(self, token: int) -> None:
        assert token in self._ok(), f"{token} not allowed at {self.seen}"
        self.seen += 1

    def copy(self) -> OnlyBC:
        return OnlyBC(self.seen)


class Grammared(ScriptedModel):
    grammars = True

    def constraint(self, grammar: str) -> OnlyBC:  # type: ignore[override]
        return OnlyBC()


@pytest.mark.parametrize("threshold", [0.0, 0.6, 1.0])
def test_under_a_grammar_every_token_is_one_it_allows(threshold: float) -> None:
    import numpy as np

    from tandemlm.types import ResponseFormat

    edge = Grammared(name="edge", vocab=VOCAB, logits=noisy("edge"), end_token=END)
    router = TokenRouter(edge, model("cloud", "cloud"), threshold=threshold)
    assert router.features == {"response_format"}
    request = Request.of("ab", max_tokens=10, response_format=ResponseFormat("json_object"))
    c = router._generate(request)  # the stand-in grammar writes no JSON: the mechanism, without the JSON check
    assert len(c.text) == 4 and set(c.text) <= {"b", "c"} and c.finish_reason == "stop"
    if threshold == 1.0:  # the cloud alone, greedy under the mask
        cloud, rules, prefix = model("cloud", "cloud"), OnlyBC(), edge.prompt_tokens(request)
        expected = ""
        for _ in range(4):
            token = int(np.argmax(rules.mask(cloud.next_token_logprobs(prefix)).dense()))
            rules.accept(token)
            prefix, expected = [*prefix, token], expected + VOCAB[token]
        assert c.text == expected
