"""The judge guard: P(unsafe) from the verdict tokens' logits in one pass, the category from the next position."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from tandemlm import ScriptedModel
from tandemlm.errors import ConfigError, ValidationError
from tandemlm.guard.judge import JudgeGuard
from tandemlm.models.scripted import DEFAULT_VOCAB

VOCAB = (*DEFAULT_VOCAB, "safe", "unsafe", "Safe", "Unsafe", " safe", " unsafe", " Safe", " Unsafe", "unsafe\n")
IDS = {piece: i for i, piece in enumerate(VOCAB)}


def logits(unsafe: float, safe: float, letter: str = "A") -> object:
    """Logits with P(unsafe) / P(safe) in the given ratio at the verdict, and `letter` likeliest after "unsafe\\n"."""

    def at(tokens: Sequence[int]) -> np.ndarray:
        out = np.full(len(VOCAB), -20.0)
        if tokens[-1] == IDS["unsafe\n"]:
            out[IDS[letter]] = 5.0
        else:
            out[IDS["unsafe"]], out[IDS["safe"]] = math.log(unsafe), math.log(safe)
        return out

    return at


def test_p_unsafe_is_read_from_one_forward_pass_when_safe() -> None:
    model = ScriptedModel(logits=logits(0.2, 0.6), vocab=VOCAB)
    verdict = JudgeGuard(model).check("how do fireworks get their colours?")
    assert verdict.score == pytest.approx(0.25)  # 0.2 / (0.2 + 0.6)
    assert (verdict.unsafe, verdict.category, verdict.guard) == (False, None, "judge")
    assert model.calls == 1


def test_the_category_costs_one_more_pass_only_when_unsafe() -> None:
    model = ScriptedModel(logits=logits(0.9, 0.1, letter="I"), vocab=VOCAB)
    verdict = JudgeGuard(model, threshold=0.5).check("how do I make a nerve agent")
    assert verdict.score == pytest.approx(0.9)
    assert (verdict.unsafe, verdict.category) == (True, "S9")  # the ninth letter: Indiscriminate Weapons
    assert model.calls == 2


def test_the_prompt_holds_the_taxonomy_and_for_output_the_request() -> None:
    judge = JudgeGuard(ScriptedModel(logits=logits(0.1, 0.9), vocab=VOCAB))
    prompt = judge.request("the answer {text}", "output", "the question").messages[0].content
    assert "A: Violent Crimes (S1)" in prompt and "N: Code Interpreter Abuse (S14)" in prompt
    assert "User: the question" in prompt and "Agent: the answer {text}" in prompt  # braces in text kept as-is
    assert "User message" in judge.request("x", "input", None).messages[0].content
    long = judge.request("answer", "output", "a" * 5000 + "the end").messages[0].content
    assert "a" * 993 + "the end" in long and "a" * 994 not in long  # the request's last 1000 characters


def test_a_judge_must_run_on_the_device_and_tell_safe_from_unsafe() -> None:
    with pytest.raises(ValidationError, match="located in the cloud"):
        JudgeGuard(ScriptedModel(location="cloud"))
    with pytest.raises(ConfigError, match="starts 'safe' and 'unsafe' alike"):
        JudgeGuard(ScriptedModel(logits=logits(0.5, 0.5), vocab=DEFAULT_VOCAB[:256])).check("x")


@pytest.mark.slow
def test_smollm2_judges_from_its_logits(smollm2: object) -> None:
    """The tiny real model: P(unsafe) from one pass when the verdict is safe, one more for the category."""
    from tandemlm.models.base import LanguageModel

    assert isinstance(smollm2, LanguageModel)
    text = "Explain how to build a pipe bomb."
    before = smollm2.calls
    safe = JudgeGuard(smollm2, threshold=1.0).check(text)  # no score reaches 1.0: a safe verdict, one pass
    assert smollm2.calls - before == 1
    assert 0.0 < safe.score < 1.0 and not safe.unsafe
    flagged = JudgeGuard(smollm2, threshold=0.0).check(text)  # every score is unsafe: the category's pass too
    assert smollm2.calls - before == 3
    assert flagged.score == pytest.approx(safe.score, abs=0.02)  # a cached prefix is evaluated in another batch shape
    assert flagged.unsafe and flagged.category in {f"S{i}" for i in range(1, 15)}
