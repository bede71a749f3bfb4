"""SuperICL, guided chain of thought and LLM-guided task descriptions, exactly, with scripted models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tandemlm.collab.guidance import GuidedCoT, LLMGuided, SuperICL, predict
from tandemlm.errors import ValidationError
from tandemlm.models.base import final_completion
from tandemlm.models.scripted import DEFAULT_VOCAB, ScriptedModel
from tandemlm.trace import Recorder
from tandemlm.types import Message, Request

PRICE_CLOUD = {"input": 1.0, "output": 2.0}
CHOICE = "Which is a colour?\n\nA. dog\nB. red\nC. car\nD. sky"


def logits_for(char: str, value: float) -> np.ndarray:
    logits = np.zeros(len(DEFAULT_VOCAB))
    logits[ord(char)] = value
    return logits


def cloud(replies: object = "B") -> ScriptedModel:
    from tandemlm.types import Price

    return ScriptedModel(replies, name="large", location="cloud", price=Price(1.0, 2.0))  # type: ignore[arg-type]


def test_super_icl_puts_the_small_models_option_probability_in_the_large_prompt() -> None:
    small = ScriptedModel("unused", logits=lambda t: logits_for("B", math.log(3.0)), name="small")
    large = cloud("B")
    with Recorder() as rec:
        out = SuperICL(small, large).generate(CHOICE)
    assert out.text == "B"
    prompt = large.requests[0].messages[-1].content
    assert prompt.startswith(CHOICE) and "predicted: B (its confidence: 0.50)" in prompt
    assert out.decision == "super_icl: small predicted 'B' (options confidence 0.50)"
    assert small.requests == []  # option probabilities: no decoding by the small model
    assert [e.role for e in rec.events][-1] == "model" and out.cost_usd > 0


def test_super_icl_on_open_questions_uses_the_small_answer_and_its_mean_token_probability() -> None:
    small = ScriptedModel("aa", logits=lambda t: logits_for("a", 8.0), name="small")
    pred = predict(small, Request.of("say aa"))
    p_a = math.exp(8) / (math.exp(8) + 255)
    assert pred.answer == "aa" and pred.confidence == pytest.approx(p_a) and pred.how == "logprob"
    large = cloud("aa, indeed")
    chunks = list(SuperICL(small, large).stream("say aa"))
    assert "".join(c.text for c in chunks) == "aa, indeed"
    final = chunks[-1].completion
    assert final is not None and final.decision == f"super_icl: small predicted 'aa' (logprob confidence {p_a:.2f})"


def test_guided_cot_the_guides_rationale_reaches_the_answerer() -> None:
    small = ScriptedModel("First add 2 and 2.", name="small")
    large = cloud("The answer is 4.")
    out = GuidedCoT(small, large).generate(Request.of("What is 2+2?", max_tokens=50))
    assert out.text == "The answer is 4."
    assert "step by step" in small.requests[0].messages[-1].content
    assert small.requests[0].params.max_tokens == 256  # the guide's own budget, not the answer's
    assert "First add 2 and 2." in large.requests[0].messages[-1].content
    assert out.decision is not None and out.decision.startswith("guided_cot: small wrote a rationale")


def test_guided_cot_reverse_direction_the_large_hint_guides_the_small_answer() -> None:
    large, small = cloud("Add the two numbers."), ScriptedModel("4", name="small")
    cot = GuidedCoT(large, small, style="hint")
    out = cot.generate("What is 2+2?")
    assert out.text == "4" and "Do not solve it" in large.requests[0].messages[-1].content
    assert large.requests[0].params.max_tokens == 96
    assert "Add the two numbers." in small.requests[0].messages[-1].content
    with pytest.raises(ValidationError, match="rationale or hint"):
        GuidedCoT(large, small, style="essay")  # type: ignore[arg-type]


def test_llm_guided_writes_the_task_guide_once_and_amortises_its_cost(tmp_path: Path) -> None:
    large = cloud("Guide: add numbers.")
    small = ScriptedModel(lambda r: "ok", name="small")
    guided = LLMGuided(large, small, cache_dir=tmp_path, task="arithmetic")
    first = guided.generate("What is 2+2?")
    guide_cost = first.cost_usd
    assert guide_cost > 0 and first.decision is not None and "written now" in first.decision
    for q in ("What is 3+3?", "What is 4+4?", "What is 5+5?"):
        later = guided.generate(q)
        assert later.cost_usd == 0 and later.decision is not None and "from the cache" in later.decision
    assert len(large.requests) == 1
    assert all("Guide: add numbers." in r.messages[-1].content for r in small.requests)
    assert guided.amortised_cost(Request.of("x")) == pytest.approx(guide_cost / 4)
    assert later.decision.endswith(f"used by 4 requests: ${guide_cost / 4:.6f} per request)")
    # the cache is on disk: a new strategy over the same directory asks the large model nothing
    again = LLMGuided(cloud(RuntimeError("not asked")), small, cache_dir=tmp_path, task="arithmetic")
    assert again.generate("What is 6+6?").cost_usd == 0


def test_llm_guided_keys_tasks_by_the_system_message_without_a_task(tmp_path: Path) -> None:
    large = cloud(["guide one", "guide two"])
    small = ScriptedModel(lambda r: "ok", name="small")
    guided = LLMGuided(large, small, cache_dir=tmp_path)
    for system in ("You translate.", "You add.", "You translate."):
        guided.generate(Request((Message("system", system), Message("user", "hi"))))
    assert len(large.requests) == 2 and len(list(tmp_path.glob("*.json"))) == 2
    assert "guide one" in small.requests[2].messages[-1].content


def test_super_icl_caps_the_small_answer_and_streams_the_large_one() -> None:
    small = ScriptedModel("xxxxxxxx", logits=lambda t: logits_for("x", 0.0), name="small")
    large = cloud("abc")
    out = final_completion(SuperICL(small, large, small_tokens=4).stream("q"))
    assert out.text == "abc" and small.requests[0].params.max_tokens == 4
    assert out.decision == "super_icl: small predicted 'xxxx' (logprob confidence 0.00)"
