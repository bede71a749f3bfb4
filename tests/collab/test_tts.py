"""Compute-optimal test-time scaling: the fitted allocation, and the per-query budget the strategy never passes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tandemlm.collab.tts import ARMS, Allocation, ComputeOptimal, fit_allocation
from tandemlm.errors import ConfigError, ValidationError
from tandemlm.models.scripted import DEFAULT_VOCAB, ScriptedModel
from tandemlm.trace import Recorder
from tandemlm.types import Price, Request


def test_fit_spends_the_budget_where_the_small_model_is_unsure() -> None:
    # 8 train queries: the small model is right exactly when confident; the large one always, at cost 1
    conf = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    small = (conf > 0.5).astype(float)
    correct = {"small": small, "large": np.ones(8)}
    cost = {"small": np.zeros(8), "large": np.ones(8)}
    alloc = fit_allocation(conf, correct, cost, budget=0.5, bins=2)
    assert alloc.edges == (0.5,) and alloc.arms == ("large", "small")
    assert alloc.train_accuracy == 1.0 and alloc.train_cost == 0.5
    assert alloc.arm(0.2) == "large" and alloc.arm(0.5) == "small" and alloc.arm(0.95) == "small"
    # a smaller budget buys the large model for no bin: the best within it is the small model everywhere
    assert fit_allocation(conf, correct, cost, budget=0.2, bins=2).arms == ("small", "small")
    # uniform allocation at the same budget (half the queries at random to the large model) reaches 0.75 on average
    assert alloc.train_accuracy > 0.5 * 1.0 + 0.5 * small.mean()


def test_fit_returns_the_cheapest_assignment_when_nothing_fits() -> None:
    alloc = fit_allocation([0.5, 0.6], {"large": [1, 1]}, {"large": [2.0, 2.0]}, budget=1.0, bins=1)
    assert alloc.arms == ("large",) and alloc.train_cost == 2.0
    with pytest.raises(ValidationError):
        fit_allocation([], {"small": []}, {"small": []}, budget=1.0)


def test_allocations_are_checked_and_round_trip(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Allocation((0.5,), ("small",), 1.0)
    with pytest.raises(ValidationError):
        Allocation((0.5,), ("small", "huge"), 1.0)
    alloc = Allocation((0.3, 0.6), ("large", "small_vote", "small"), 0.001)
    alloc.save(tmp_path / "a.json")
    assert Allocation.load(tmp_path / "a.json") == alloc
    with pytest.raises(ConfigError, match="cannot read the TTS allocation"):
        Allocation.load(tmp_path / "missing.json")


def flat(tokens: Sequence[int]) -> np.ndarray:
    return np.zeros(len(DEFAULT_VOCAB))


def confident(tokens: Sequence[int]) -> np.ndarray:
    out = np.zeros(len(DEFAULT_VOCAB))
    out[ord("7")] = 10.0
    return out


PRICE = Price(1_000_000.0, 1_000_000.0)  # $1 per token: costs read as token counts


@pytest.mark.parametrize("arm", ARMS)
def test_every_arm_stays_within_the_cap_on_every_query(arm: str) -> None:
    small = ScriptedModel(lambda r: "7" if r.params.seed is None else str(r.params.seed), logits=flat, name="small")
    large = ScriptedModel("7", logits=confident, name="large", location="cloud", price=PRICE)
    alloc = Allocation((), (arm,), budget=0.0)
    prompts = ["q", "a longer question here", "x" * 40]
    for cap in (0.0, 30.0, 60.0, 200.0):
        tts = ComputeOptimal(small, large, alloc, samples=3, key="number", cap=cap)
        for prompt in prompts:
            request = Request.of(prompt, max_tokens=4)
            with Recorder() as rec:
                out = tts.generate(request)
            spent = sum(e.cost_usd for e in rec.events if e.model == "large")
            assert spent <= cap, (arm, cap, prompt, spent, out.decision)
            assert out.decision is not None and out.decision.startswith("tts: confidence ")


def test_the_planned_arm_runs_when_it_fits_and_a_cheaper_one_when_not() -> None:
    small = ScriptedModel(lambda r: "7" if r.params.seed is None else "8", logits=flat, name="small")
    large = ScriptedModel("9", logits=confident, name="large", location="cloud", price=PRICE)
    alloc = Allocation((0.5,), ("large", "small"), budget=1000.0)
    out = ComputeOptimal(small, large, alloc, samples=3, key="number").generate(Request.of("q", max_tokens=4))
    assert out.text == "9" and out.decision == "tts: confidence 0.004 -> large"  # flat logits: 1/256 per token
    tight = ComputeOptimal(small, large, alloc, samples=3, key="number", cap=2.0)
    out = tight.generate(Request.of("q", max_tokens=4))
    assert out.text == "8" and out.decision == "tts: confidence 0.004 -> large, small_vote within the cap"
    confident_small = ScriptedModel("7", logits=confident, name="small")
    out = ComputeOptimal(confident_small, large, alloc).generate(Request.of("q", max_tokens=4))
    assert out.text == "7" and out.decision == "tts: confidence 0.989 -> small" and len(large.requests) == 1


def test_large_vote_lets_the_large_answer_win_ties_and_verify_picks_by_p_yes() -> None:
    small = ScriptedModel(lambda r: "1" if r.params.seed is None else "2", logits=flat, name="small")
    large = ScriptedModel("3", logits=confident, name="large", location="cloud", price=PRICE)
    vote = ComputeOptimal(small, large, Allocation((), ("large_vote",), 1e9), samples=3, key="number")
    assert vote.generate(Request.of("q", max_tokens=4)).text == "2"  # two sampled 2s outvote 3 and 1
    two = ComputeOptimal(small, large, Allocation((), ("large_vote",), 1e9), samples=2, key="number")
    assert two.generate(Request.of("q", max_tokens=4)).text == "3"  # 3 against 1 against 2: the large one
    with pytest.raises(ValidationError):
        ComputeOptimal(small, large, Allocation((), ("small",), 1.0), samples=1)
