"""Logit fusion, proxy-tuning, contrastive and safety-guided decoding on scripted logits: each step's distribution is
the formula exactly, greedy is its argmax, sampling draws from it, and every member reads each token once."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from tandemlm import Recorder, Request, ScriptedModel
from tandemlm.collab.fusion import Contrastive, FusedDecoder, LogitFusion, ProxyTuned, SafetyGuided
from tandemlm.config import Runtime, load_config, parse_config
from tandemlm.errors import ConfigError, UnsupportedOperationError, ValidationError, VocabularyMismatchError
from tandemlm.models.base import LanguageModel
from tandemlm.types import Location

VOCAB = ("<unk>", "a", "b", "c", "d", "e", "<end>")
END = 6
LETTERS = range(1, 6)


def noisy(seed: str, end_after: int = 12) -> Callable[[Sequence[int]], list[float]]:
    """Deterministic logits of the prefix; the end token becomes likely once the prefix passes `end_after`."""

    def logits(prefix: Sequence[int]) -> list[float]:
        digest = hashlib.sha256((seed + ",".join(map(str, prefix))).encode()).digest()
        values = [b / 255 * 5 for b in digest[: len(VOCAB)]]
        values[0] = -20.0
        values[END] += 8.0 if len(prefix) > end_after else -8.0
        return values

    return logits


class Cached(ScriptedModel):
    """A scripted model that counts the tokens a KV cache would evaluate: those past the prefix shared with the
    previous call (as llama.cpp's engine and a gateway session do)."""

    def __init__(self, seed: str, name: str, location: Location = "edge") -> None:
        super().__init__(name=name, vocab=VOCAB, logits=noisy(seed), end_token=END, location=location)
        self.evaluated = 0
        self.prefixes: list[list[int]] = []
        self._held: list[int] = []

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None):  # type: ignore[no-untyped-def]
        shared = 0
        for a, b in zip(self._held, tokens[:-1], strict=False):  # the last token is always evaluated
            if a != b:
                break
            shared += 1
        self.evaluated += len(tokens) - shared
        self._held = list(tokens)
        self.prefixes.append(list(tokens))
        return super()._next_token_logprobs(tokens, top_k)


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x[np.isfinite(x)])
    return x - (m + math.log(float(np.sum(np.exp(x - m)))))


def lp(model: ScriptedModel, prefix: list[int]) -> np.ndarray:
    return model.next_token_logprobs(prefix).dense()


def formula(kind: str, models: Sequence[ScriptedModel], prefix: list[int], step: int = 0, **p: Any) -> np.ndarray:
    """The paper's formula, written out independently of collab/fusion.py."""
    d = [lp(m, prefix) for m in models]
    if kind == "fusion":
        return log_softmax(sum(w * x for w, x in zip(p["weights"], d, strict=True)))
    if kind == "proxy":
        return log_softmax(d[0] + p["alpha"] * (d[1] - d[2]))
    if kind == "contrastive":
        score = (1 + p["beta"]) * d[0] - p["beta"] * d[1]
        pe = np.exp(d[0])
        return log_softmax(np.where(pe >= p["alpha_mask"] * pe.max(), score, -np.inf))
    assert kind == "safety"
    first_m = p["first_m"]
    if first_m is not None and step >= first_m:
        return d[0]
    return log_softmax(d[0] + p["alpha"] * (d[1] - d[2]))


def three() -> tuple[Cached, Cached, Cached]:
    return Cached("large", "large"), Cached("tuned", "tuned"), Cached("base", "base")


CASES: dict[str, Callable[[], tuple[FusedDecoder, list[Any], dict[str, Any]]]] = {
    "fusion": lambda: (lambda m: (LogitFusion(m, [0.7, 0.2, 0.4], trace_tokens=64), list(m),
                                  {"weights": [0.7, 0.2, 0.4]}))(three()),
    "proxy": lambda: (lambda m: (ProxyTuned(*m, alpha=0.8, trace_tokens=64), list(m), {"alpha": 0.8}))(three()),
    "contrastive": lambda: (lambda m: (Contrastive(m[0], m[1], beta=0.5, alpha_mask=0.3, trace_tokens=64), [m[0], m[1]],
                                       {"beta": 0.5, "alpha_mask": 0.3}))(three()),
    "safety": lambda: (lambda m: (SafetyGuided(*m, alpha=1.5, first_m=3, trace_tokens=64), list(m),
                                  {"alpha": 1.5, "first_m": 3}))(three()),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(CASES))
def test_each_step_is_the_formula_and_greedy_its_argmax(kind: str) -> None:
    strategy, models, p = CASES[kind]()
    request = Request.of("abc", max_tokens=20)
    prompt = strategy.prompt_tokens(request)
    c = strategy.generate(request)
    expected: list[int] = []
    for step, contribution in enumerate(strategy.last_stats.contributions):
        want = formula(kind, models, prompt + expected, step, **p)
        assert contribution.fused == pytest.approx(float(want[contribution.token]), abs=1e-12)
        assert contribution.token == int(np.argmax(want))
        if kind != "safety":  # the whole vector, through the strategy's own next_token_logprobs
            np.testing.assert_allclose(strategy.next_token_logprobs(prompt + expected).dense(), want, atol=1e-12)
        if contribution.token == END:
            break
        expected.append(contribution.token)
    assert c.text == "".join(VOCAB[t] for t in expected) and c.finish_reason == "stop" and 3 < len(expected) < 20


def test_safety_guided_offsets_only_the_first_m_tokens() -> None:
    model, safe, base = three()
    guided = SafetyGuided(model, safe, base, alpha=1.5, first_m=3, trace_tokens=64)
    c = guided.generate(Request.of("abc", max_tokens=20))
    s = guided.last_stats
    assert s.calls == (s.steps, 3, 3) and len(safe.prefixes) == len(base.prefixes) == 3
    assert all(x.members[1] is None and x.members[2] is None for x in s.contributions[3:])
    assert all(None not in x.members for x in s.contributions[:3])
    # from token 3 on the model decodes alone: its own greedy continuation of the guided start
    prompt = model.prompt_tokens(Request.of("abc"))
    start = [x.token for x in s.contributions[:3]]
    out = list(start)
    while len(out) < 20 and (t := int(np.argmax(lp(model, prompt + out)))) != END:
        out.append(t)
    assert c.text == "".join(VOCAB[t] for t in out)
    assert "first_m=3" in (c.decision or "")
    zero = SafetyGuided(*three(), alpha=1.5, first_m=0)  # the model alone, the small models never asked
    alone: list[int] = []
    while len(alone) < 20 and (t := int(np.argmax(lp(model, prompt + alone)))) != END:
        alone.append(t)
    assert zero.generate(Request.of("abc", max_tokens=20)).text == "".join(VOCAB[t] for t in alone)
    assert zero.last_stats.calls[1:] == (0, 0)
    every = SafetyGuided(*three(), alpha=1.5, first_m=None)
    every.generate(Request.of("abc", max_tokens=20))
    assert every.last_stats.calls[1] == every.last_stats.steps
    with pytest.raises(UnsupportedOperationError, match="first 3 tokens"):
        guided.next_token_logprobs(prompt)


CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52}  # chi-square quantiles at p = 0.999, by df


def constant(values: list[float], name: str) -> ScriptedModel:
    return ScriptedModel(name=name, vocab=VOCAB, logits=lambda _: values, end_token=END)


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.95)])
@pytest.mark.parametrize("kind", ["fusion", "proxy", "contrastive"])
def test_sampling_draws_from_the_fused_distribution(kind: str, temperature: float, top_p: float) -> None:
    """Prefix-independent logits: the answers' tokens are i.i.d. draws from the warped formula (fixed seeds)."""
    a = constant([-30.0, 2.0, 1.5, 1.0, 0.2, -0.5, -30.0], "a")
    b = constant([-30.0, 0.3, 1.8, -0.4, 0.9, 0.0, -30.0], "b")
    c = constant([-30.0, 1.0, 0.0, 0.5, 0.5, 1.0, -30.0], "c")
    strategy: FusedDecoder
    if kind == "fusion":
        strategy, want = LogitFusion([a, b], [0.6, 0.9]), formula("fusion", [a, b], [1], weights=[0.6, 0.9])
    elif kind == "proxy":
        strategy, want = ProxyTuned(a, b, c, alpha=0.7), formula("proxy", [a, b, c], [1], alpha=0.7)
    else:
        strategy = Contrastive(a, b, beta=1.0, alpha_mask=0.2)
        want = formula("contrastive", [a, b], [1], beta=1.0, alpha_mask=0.2)
    p = np.exp((want - want.max()) / temperature)
    p /= p.sum()
    order = np.argsort(-p)
    keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
    q = np.zeros_like(p)
    q[keep] = p[keep]
    q /= q.sum()
    n = 1200  # 30 answers of 40 tokens (fixed seeds): long answers cost O(n^2) in detokenizing
    drawn = [strategy.generate(Request.of("a", max_tokens=40, temperature=temperature, top_p=top_p, seed=s)).text
             for s in range(30)]  # fmt: skip
    counts = np.bincount(strategy.tokenize("".join(drawn)), minlength=len(VOCAB))
    assert counts.sum() == n and set(np.nonzero(counts)[0]) <= set(keep.tolist())
    support = [t for t in LETTERS if n * q[t] >= 5]  # chi-square bins; the rest (expected ~0) left out
    assert sum(counts[t] for t in LETTERS if t not in support) <= 5
    chi2 = sum((counts[t] - n * q[t]) ** 2 / (n * q[t]) for t in support)
    assert chi2 < CHI2_999[len(support) - 1], (chi2, counts, q)
    # and the test can tell: the first member's own distribution (unfused, same temperature) is far off
    own = np.exp((lp(a, [1]) - lp(a, [1]).max()) / temperature)
    own = own / own.sum()
    assert sum((counts[t] - n * own[t]) ** 2 / (n * own[t]) for t in LETTERS) > 10 * CHI2_999[4]
    if kind == "contrastive":  # the mask removed at least one letter
        assert len(support) < 5


def test_a_vocabulary_mismatch_is_refused_naming_the_models() -> None:
    a = Cached("a", "qwen")
    other = ScriptedModel(name="gemma", vocab=(*VOCAB, "f"), logits=noisy("x"), end_token=END)
    for build in (lambda: LogitFusion([a, other]), lambda: ProxyTuned(a, a, other),
                  lambda: Contrastive(a, other), lambda: SafetyGuided(other, a, a)):  # fmt: skip
        with pytest.raises(VocabularyMismatchError, match="qwen, gemma|gemma, qwen"):
            build()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda m: LogitFusion([m, m], [1.0]), "2 members but 1 weights"),
        (lambda m: LogitFusion([m, m], [1.0, -0.5]), "non-negative"),
        (lambda m: LogitFusion([m], [0.0]), "positive sum"),
        (lambda m: Contrastive(m, m, beta=-1), "beta"),
        (lambda m: Contrastive(m, m, alpha_mask=1.5), "alpha_mask"),
        (lambda m: SafetyGuided(m, m, m, first_m=-1), "first_m"),
    ],
)
def test_bad_parameters_are_refused(build: Callable[[ScriptedModel], object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build(Cached("a", "a"))


def test_each_member_evaluates_each_token_once() -> None:
    large, tuned, base = three()
    proxy = ProxyTuned(large, tuned, base, alpha=1.0)
    proxy.generate(Request.of("abcd", max_tokens=16))
    last = len(large.prefixes[-1])
    for m in (large, tuned, base):
        assert m.evaluated == last and len(m.prefixes) == proxy.last_stats.steps  # the prompt once, then one each
        assert all(len(b) == len(a) + 1 for a, b in zip(m.prefixes, m.prefixes[1:], strict=False))
    twice = Cached("large", "same")
    fused = LogitFusion([twice, twice], [0.5, 0.5])
    c = fused.generate(Request.of("abcd", max_tokens=16))
    assert len(twice.prefixes) == fused.last_stats.steps and twice.evaluated == len(twice.prefixes[-1])
    assert fused.roles == ("member 0", "member 1") and LogitFusion(list(three())).roles == ("large", "tuned", "base")
    assert c.text == ProxyTuned(*three(), alpha=0.0).generate(Request.of("abcd", max_tokens=16)).text  # = large


def test_stop_sequences_and_streaming() -> None:
    strategy, _, _ = CASES["proxy"]()
    full = strategy.generate(Request.of("abc", max_tokens=20)).text
    stop = full[3:5]
    cut = full[: full.find(stop)]
    request = Request.of("abc", max_tokens=20, stop=[stop])
    stopped = strategy.generate(request)
    assert stopped.text == cut and stopped.finish_reason == "stop"
    chunks = list(strategy.stream(request))
    assert "".join(ch.text for ch in chunks) == cut and chunks[-1].completion is not None
    assert chunks[-1].completion.text == cut and chunks[-1].finish_reason == "stop"
    sampled = Request.of("abc", max_tokens=12, temperature=0.9, top_p=0.95, seed=3)
    whole = strategy.generate(sampled)
    pieces = list(strategy.stream(sampled))
    assert "".join(ch.text for ch in pieces) == whole.text and pieces[-1].completion is not None
    assert pieces[-1].completion.decision == whole.decision and len(pieces) > 2
    short = strategy.generate(Request.of("abc", max_tokens=2))
    assert short.finish_reason == "length" and len(short.text) == 2


def test_the_trace_shows_contributions_and_what_left_the_device() -> None:
    large = Cached("large", "cloud", location="cloud")
    tuned, base = Cached("tuned", "tuned"), Cached("base", "base")
    proxy = ProxyTuned(large, tuned, base, alpha=1.0, trace_tokens=3)
    with Recorder() as rec:
        c = proxy.generate(Request.of("abcd", max_tokens=16))
    s = proxy.last_stats
    d = c.decision or ""
    assert d.startswith("proxy_tuned: alpha=1 steps=") and f"calls=large:{s.steps},tuned:{s.steps}" in d
    assert f"left the device: token ids only, to cloud (the prompt's 4 and the answer's first {s.steps - 1})" in d
    first = s.contributions[0]
    assert f"{first.text!r} {first.fused:.2f} (large {first.members[0]:.2f} tuned" in d
    assert f"(+{s.tokens - 3} more)" in d and len(s.contributions) == 3
    report = c.extensions["proxy_tuned"]
    assert report["roles"] == ["large", "tuned", "base"] and len(report["tokens"]) == 3
    assert report["tokens"][0]["fused"] == round(first.fused, 4) and report["more_tokens"] == s.tokens - 3
    # the cloud member's calls carry what left: token ids, never the small models' logits
    sent = [json.loads(e.egress or "") for e in rec.events if e.model == "cloud"]
    assert len(sent) == s.steps and sent[-1] == {"tokens": large.prefixes[-1]}
    assert all(e.egress is None for e in rec.events if e.model != "cloud")
    local = ProxyTuned(*three()).generate("abcd")
    assert "left the device: nothing" in (local.decision or "")


def test_the_four_kinds_in_a_pipeline_file() -> None:
    text = """
models:
  big: {engine: scripted}
  small: {engine: scripted}
  tuned: {engine: scripted}
pipelines:
  f: {strategy: {fusion: {members: [big, small], weights: [0.75, 0.25]}}}
  p: {strategy: {proxy_tuned: {large: big, tuned_small: tuned, base_small: small, alpha: 0.5}}}
  c: {strategy: {contrastive: {expert: big, amateur: small, beta: 0.25}}}
  s: {strategy: {safety_guided: {model: big, safe_small: tuned, base_small: small, first_m: null}}}
"""
    models: dict[str, LanguageModel] = {"big": Cached("large", "big"), "small": Cached("base", "small"),
                                        "tuned": Cached("tuned", "tuned")}  # fmt: skip
    runtime = Runtime(parse_config(text), models)
    f, p, c, s = (runtime.pipeline(n) for n in "fpcs")
    assert isinstance(f, LogitFusion) and f.weights == (0.75, 0.25) and f.name == "f"
    assert isinstance(p, ProxyTuned) and p.alpha == 0.5 and [m.name for m in p.members] == ["big", "tuned", "small"]
    assert isinstance(c, Contrastive) and (c.beta, c.alpha_mask) == (0.25, 0.1)
    assert isinstance(s, SafetyGuided) and s.first_m is None and s.alpha == 1.0
    for pipeline in (f, p, c, s):
        assert (pipeline.generate(Request.of("abc", max_tokens=6)).decision or "").startswith(pipeline.kind)
    for bad, message in (("{fusion: {members: [big, small], weights: [1]}}", "2 members but 1 weights"),
                         ("{contrastive: {expert: big, amateur: nope}}", "'nope' is not defined"),
                         ("{proxy_tuned: {large: big, tuned_small: big, base_small: big, alpha: 1, x: 1}}",
                          "Extra inputs")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            parse_config(f"models: {{big: {{engine: scripted}}, small: {{engine: scripted}}}}\n"
                         f"pipelines: {{x: {{strategy: {bad}}}}}")  # fmt: skip


def test_the_default_config_fuses_the_qwen_pair() -> None:
    models: dict[str, LanguageModel] = {"edge": ScriptedModel("4", name="edge"),
                                        "cloud": ScriptedModel("4", name="cloud", location="cloud")}  # fmt: skip
    runtime = Runtime(load_config("default"), models)
    fusion, contrastive = runtime.pipeline("fusion"), runtime.pipeline("contrastive")
    assert isinstance(fusion, LogitFusion) and [m.name for m in fusion.members] == ["cloud", "edge"]
    assert isinstance(contrastive, Contrastive) and [m.name for m in contrastive.members] == ["cloud", "edge"]
