"""The cascade guard: the cheap guard decides outside its uncertainty band, the judge inside it."""

from __future__ import annotations

import pytest

from tandemlm.errors import ConfigError
from tandemlm.guard.cascade import CascadeGuard
from tandemlm.guard.scripted import ScriptedGuard


def cascade(score: float) -> tuple[CascadeGuard, ScriptedGuard]:
    cheap = ScriptedGuard(score=lambda _: score, category="S2", name="classifier")
    judge = ScriptedGuard(["bomb"], category="S9", name="judge")
    return CascadeGuard(cheap, judge, low=0.2, high=0.8), judge


@pytest.mark.parametrize(
    ("score", "decider", "unsafe", "category"),
    [
        (0.05, "classifier", False, None),  # sure it is safe
        (0.95, "classifier", True, "S2"),  # sure it is unsafe
        (0.2, "judge", True, "S9"),  # the band's edges are inside it
        (0.5, "judge", True, "S9"),
        (0.8, "judge", True, "S9"),
    ],
)
def test_band_routing(score: float, decider: str, unsafe: bool, category: str | None) -> None:
    guard, judge = cascade(score)
    verdict = guard.check("a bomb", kind="output", context="q")
    assert (guard.decided_by(verdict), verdict.unsafe, verdict.category) == (decider, unsafe, category)
    assert verdict.guard == f"cascade:{decider}"
    assert judge.seen == ([("a bomb", "output", "q")] if decider == "judge" else [])
    assert verdict.score == (1.0 if decider == "judge" else score)


def test_the_judge_can_clear_what_the_classifier_doubts() -> None:
    guard, _ = cascade(0.6)
    verdict = guard.check("how do I choke up on a baseball bat")
    assert (verdict.unsafe, verdict.score, verdict.guard) == (False, 0.0, "cascade:judge")


def test_the_band_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="0 <= low <= high <= 1"):
        CascadeGuard(ScriptedGuard(), ScriptedGuard(), low=0.9, high=0.1)
