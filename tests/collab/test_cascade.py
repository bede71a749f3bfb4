"""Cascade decisions and confidence signals, exactly, with scripted models of known logits."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from tandemlm.bench.datasets import Item, chat_prompt
from tandemlm.collab.cascade import Cascade, threshold_for_budget
from tandemlm.collab.confidence import (
    agreement,
    examples_pass,
    examples_passed,
    option_probs,
    p_yes,
    token_confidence,
)
from tandemlm.config import Runtime, parse_config
from tandemlm.errors import ValidationError
from tandemlm.models.base import final_completion
from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.models.scripted import DEFAULT_VOCAB, ScriptedModel
from tandemlm.trace import Recorder
from tandemlm.types import Request

BOOST = 8.0


def boosted(*chars: str, value: float = BOOST) -> np.ndarray:
    """Logits: 0 everywhere, `value` on the given characters' tokens."""
    logits = np.zeros(len(DEFAULT_VOCAB))
    for c in chars:
        logits[ord(c)] = value
    return logits


def small_model(replies: Sequence[str] | str) -> ScriptedModel:
    # every position prefers 'a': an answer of a's is confident, an answer of b's is not
    return ScriptedModel(replies, logits=lambda tokens: boosted("a"), name="small")


P_A = math.exp(BOOST) / (math.exp(BOOST) + 255)  # P('a') under boosted("a") over 256 tokens
P_B = 1 / (math.exp(BOOST) + 255)


def test_token_confidence_is_the_mean_min_logprob_and_entropy_of_the_answer() -> None:
    small = small_model("unused")
    conf = token_confidence(small, Request.of("q"), "aab")
    assert conf.mean_logprob == pytest.approx((2 * math.log(P_A) + math.log(P_B)) / 3)
    assert conf.min_logprob == pytest.approx(math.log(P_B))
    entropy = -(P_A * math.log(P_A) + 255 * P_B * math.log(P_B))
    assert conf.mean_entropy == pytest.approx(entropy)


def test_p_yes_compares_yes_with_no_after_the_verification_question() -> None:
    # y/Y/' ' start "yes"/"Yes"/" yes"; n/N/' ' start "no": ' ' counts for both and is pushed far down
    logits = boosted("y", value=3.0) + boosted("n", value=1.0) + boosted(" ", value=-1e9)
    model = ScriptedModel("x", logits=lambda tokens: logits)
    got = p_yes(model, Request.of("2+2?"), "4")
    # yes: e^3 + e^0 (Y); no: e^1 + e^0 (N), over the same normaliser
    assert got == pytest.approx((math.exp(3) + 1) / (math.exp(3) + 1 + math.exp(1) + 1), abs=1e-9)


def test_option_probs_renormalise_over_the_labels() -> None:
    model = ScriptedModel("x", logits=lambda tokens: boosted("B", value=math.log(3.0)))
    probs = option_probs(model, Request.of("pick"), ("A", "B", "C", "D"))
    assert probs == pytest.approx({"A": 1 / 6, "B": 3 / 6, "C": 1 / 6, "D": 1 / 6})


def test_agreement_is_the_share_of_samples_with_the_same_final_number() -> None:
    def reply(request: Request) -> str:
        return {1: "so 41", 2: "it is 42.0", 3: "42"}[request.params.seed or 0]

    model = ScriptedModel(reply)
    assert agreement(model, Request.of("q"), "The answer is 42", samples=3, key="number") == pytest.approx(2 / 3)
    assert [r.params.temperature for r in model.requests] == [0.7, 0.7, 0.7]


PROMPT = '''def double(x):
    """Twice x.
    >>> double(2)
    4
    >>> double(-1)
    -2
    """
'''


def test_examples_pass_runs_the_prompts_doctests_against_the_answer() -> None:
    assert examples_pass(PROMPT, "```python\ndef double(x):\n    return 2 * x\n```") is True
    assert examples_pass(PROMPT, "```python\ndef double(x):\n    return x + 2\n```") is False
    assert examples_pass(PROMPT, "    return 2 * x\n") is True  # a body only: the prompt's signature is prepended
    assert examples_pass("def f(x):\n    pass\n", "def f(x): return 1") is None  # no examples to check


def test_examples_pass_reads_arrow_examples_and_survives_a_looping_answer() -> None:
    prompt = 'def inc(x):\n    """For example: inc(1) => 2\n    inc(5) => 6"""\n'
    assert examples_pass(prompt, "def inc(x):\n    return x + 1") is True
    assert examples_pass(prompt, "def inc(x):\n    while True: pass", timeout_s=1.0) is False


def test_examples_pass_compares_values_and_holds_comparisons_written_without_an_output_line() -> None:
    # HumanEval writes `>>> f(x) == y` with no output line, and string outputs in either quotes
    prompt = 'def shout(s):\n    """Upper case.\n    >>> shout("a")\n    "A"\n    >>> shout("b") == "B"\n    """\n'
    assert examples_pass(prompt, "def shout(s):\n    return s.upper()") is True
    assert examples_passed(prompt, "def shout(s):\n    return 'A'") == (1, 2)
    assert examples_pass(prompt, "def shout(s):\n    return s") is False


def test_a_confident_answer_stays_on_the_small_model() -> None:
    large = ScriptedModel("large answer", name="large", location="cloud")
    cascade = Cascade(small_model("aaa"), large, signal="logprob", threshold=0.5)
    answer = cascade.generate("q")
    assert answer.text == "aaa"
    assert large.requests == []
    assert answer.decision == f"cascade: small answer kept (logprob {P_A:.3f} >= 0.5)"


def test_a_weak_answer_escalates_with_or_without_the_draft() -> None:
    for show_draft in (False, True):
        large = ScriptedModel("large answer", name="large", location="cloud")
        cascade = Cascade(small_model("bbb"), large, signal="logprob", threshold=0.5, show_draft=show_draft)
        answer = cascade.generate("What is 2+2?")
        assert answer.text == "large answer"
        assert answer.decision == f"cascade: escalated to large (logprob {P_B:.3f} < 0.5)"
        sent = large.requests[0].messages[-1].content
        assert ("bbb" in sent) is show_draft
        assert sent.startswith("What is 2+2?")
        assert [e.role for e in answer.trace if e.operation == "generate"][:2] == ["small", "large"]


def test_threshold_edges_and_other_signals() -> None:
    large = ScriptedModel("L", name="large")
    # the decision is value < threshold: equal keeps the small answer
    kept = Cascade(small_model("a"), large, signal="min_logprob", threshold=P_A).generate("q")
    assert kept.text == "a"
    code = Cascade(
        ScriptedModel("def double(x):\n    return x + 2\n"), large, signal="examples", threshold=0.5
    ).generate(PROMPT)
    assert code.text == "L"


def test_streaming_keeps_or_escalates_and_reports_the_decision() -> None:
    large = ScriptedModel("large answer", name="large")
    kept = list(Cascade(small_model("aaa"), large, threshold=0.5).stream("q"))
    assert "".join(c.text for c in kept) == "aaa"
    escalated = list(Cascade(small_model("bbb"), large, threshold=0.5).stream("q"))
    assert "".join(c.text for c in escalated) == "large answer"
    assert len(escalated) > 2  # the large model's pieces stream through
    final = final_completion(escalated)
    assert final.decision is not None and final.decision.startswith("cascade: escalated")


def test_unknown_signal_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown cascade signal"):
        Cascade(small_model("a"), small_model("a"), signal="vibes", threshold=0.5)  # type: ignore[arg-type]


def test_threshold_for_budget_escalates_the_asked_share() -> None:
    values = [0.4, 0.1, 0.3, 0.2]
    assert threshold_for_budget(values, 0.5) == 0.3  # 0.1 and 0.2 fall below it: 2 of 4
    assert threshold_for_budget(values, 0.0) == 0.1  # nothing below the smallest
    assert sum(v < threshold_for_budget(values, 1.0) for v in values) == 4
    assert threshold_for_budget([0.1, 0.2, 0.2, 0.4], 0.5) == 0.2  # a tie at the boundary: fewer, never more
    with pytest.raises(ValidationError):
        threshold_for_budget(values, 1.5)


def test_cascade_pipeline_from_config_records_its_decision() -> None:
    config = parse_config(
        """
models:
  small: {engine: scripted, replies: "def f(x):\\n    return 1\\n"}
  large: {engine: scripted, replies: "from the large model", location: cloud, price: {input: 1, output: 2}}
pipelines:
  cheap:
    strategy: {cascade: {small: small, large: large, signal: examples, threshold: 0.5}}
"""
    )
    runtime = Runtime(config)
    prompt = 'def f(x):\n    """\n    >>> f(0)\n    0\n    """\n'
    with Recorder() as rec:
        answer = runtime.pipeline("cheap").generate(prompt)
    assert answer.text == "from the large model"
    assert answer.decision == "cascade: escalated to large (examples 0.000 < 0.5)"
    assert answer.cost_usd > 0
    assert [e.role for e in rec.events][-1] == "model"


@pytest.mark.slow
def test_a_real_cascade_on_gsm8k_items_escalates_by_smollm2s_own_confidence(
    smollm2: LlamaCppModel, dataset: Callable[[str], list[Item]]
) -> None:
    """SmolLM2 answers a few GSM8K problems; its real token confidence decides: a threshold between its lowest
    and highest confidence on these items escalates the least confident and keeps the others."""
    large = ScriptedModel("The answer is 0.", name="large", location="cloud")
    requests = [Request.of(chat_prompt(item), max_tokens=32) for item in dataset("gsm8k")[:3]]
    values = []
    for r in requests:
        smollm2.clear_cache()  # the same cold cache in both passes: the same greedy text
        values.append(math.exp(token_confidence(smollm2, r, smollm2.generate(r).text).mean_logprob))
    assert all(0 < v < 1 for v in values) and len(set(values)) == len(values)
    middle = sorted(values)[1]  # the least confident escalates; equal to the threshold stays
    cascade = Cascade(smollm2, large, signal="logprob", threshold=middle)
    escalated = []
    for r in requests:
        smollm2.clear_cache()
        answer = cascade.generate(r)
        escalated.append(answer.text == "The answer is 0.")
        assert answer.decision is not None and answer.decision.startswith("cascade: ")
    assert escalated == [v < middle for v in values] and sum(escalated) == 1
