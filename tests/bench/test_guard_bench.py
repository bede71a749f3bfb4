"""tandem bench guard: the metrics against hand-computed values, and the cascade scored from recorded verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from tandemlm.bench.guard import _Recorded, average_precision, binary_metrics, recall_at_fpr
from tandemlm.guard.base import Verdict
from tandemlm.guard.cascade import CascadeGuard


def test_binary_metrics_at_a_threshold() -> None:
    scores = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.1])
    y = np.array([1, 0, 1, 1, 0, 0])
    m = binary_metrics(scores, y, 0.5)
    assert (m["precision"], m["recall"], m["fpr"]) == pytest.approx((2 / 3, 2 / 3, 1 / 3))
    assert m["f1"] == pytest.approx(2 / 3) and (m["positives"], m["negatives"]) == (3, 3)


def test_average_precision_is_sklearns_definition() -> None:
    # ranks: 1 (hit), 2 (miss), 3 (hit), 4 (hit): precisions at hits 1, 2/3, 3/4
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    y = np.array([1, 0, 1, 1, 0])
    assert average_precision(scores, y) == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert average_precision(scores, np.zeros(5, dtype=int)) == 0.0


def test_recall_at_one_percent_fpr_flags_at_most_one_percent_of_negatives() -> None:
    negatives = np.linspace(0, 0.5, 200)  # 1% of 200: the two highest may be flagged
    positives = np.array([0.9, 0.495, 0.2])
    scores = np.concatenate([negatives, positives])
    y = np.array([0] * 200 + [1] * 3)
    cut = np.sort(negatives)[::-1][2]
    assert recall_at_fpr(scores, y, 0.01) == pytest.approx(float((positives > cut).mean()))
    assert recall_at_fpr(scores, y, 0.01) == pytest.approx(2 / 3)


def test_the_cascade_reads_the_judge_only_inside_its_band() -> None:
    def verdict(score: float, guard: str) -> Verdict:
        return Verdict(score >= 0.5, score, None, guard)

    cheap = {"sure": verdict(0.95, "classifier"), "unsure": verdict(0.5, "classifier"), "benign": verdict(0.05, "c")}
    judge = {"sure": verdict(0.0, "judge"), "unsure": verdict(0.9, "judge"), "benign": verdict(1.0, "judge")}
    cascade = CascadeGuard(_Recorded(cheap, "classifier"), _Recorded(judge, "judge"), low=0.2, high=0.8)
    assert cascade.check("sure").unsafe and cascade.check("sure").guard == "cascade:classifier"
    assert cascade.check("unsure").unsafe and cascade.check("unsure").guard == "cascade:judge"
    assert not cascade.check("benign").unsafe
