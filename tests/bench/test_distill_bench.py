"""The distillation benchmark's arithmetic: the cascade fitted on train and read on test, paired gains."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tandemlm.bench import distill as bench
from tandemlm.bench.outcomes import Outcome


def test_the_threshold_is_the_least_cloud_share_that_reaches_the_target() -> None:
    scores = np.array([0.1, 0.4, 0.3, 0.2])  # higher goes to the cloud first: items 1, 2, 3, 0
    edge = np.array([1.0, 0.0, 0.0, 1.0])
    cloud = np.array([1.0, 1.0, 0.0, 1.0])
    # edge alone 0.5; item 1 to the cloud: 0.75 (share 0.25)
    assert bench.fitted_threshold(scores, edge, cloud, 0.5) == pytest.approx(0.4)  # nothing to the cloud
    assert bench.fitted_threshold(scores, edge, cloud, 0.75) == pytest.approx(0.3)
    assert bench.fitted_threshold(scores, edge, cloud, 0.9) == -math.inf  # unreachable: all to the cloud


def out(item_id: str, correct: bool, prob: float | None = None, split: str = "test") -> Outcome:
    lp = None if prob is None else math.log(prob)
    return Outcome(item_id, split, "a", correct, 1, 1, 0.0, 0.0, mean_logprob=lp)


def test_cascade_point_applies_the_train_threshold_to_test() -> None:
    train = [({"correct": False, "mean_logprob": math.log(0.5)}, out("a", True)),
             ({"correct": True, "mean_logprob": math.log(0.9)}, out("b", True))]  # fmt: skip
    test = [({"correct": False, "mean_logprob": math.log(0.6)}, out("c", True)),
            ({"correct": True, "mean_logprob": math.log(0.95)}, out("d", False)),
            ({"correct": False, "mean_logprob": math.log(0.4)}, out("e", False))]  # fmt: skip
    point = bench.cascade_point(train, test)
    # train: the 0.5-confident item must go to the cloud to reach 0.95 x 1.0; threshold at -0.9 (score = -prob)
    assert point["threshold"] == pytest.approx(0.9)
    assert (point["share"], point["accuracy"]) == (0.6667, 0.6667)  # c and e go up (rounded to 4 places)


def test_summary_pairs_the_variants_on_common_items(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = ["gsm8k/1", "gsm8k/2", "gsm8k/3", "gsm8k/4"]
    items = [type("I", (), {"id": i, "kind": "math"})() for i in ids]
    monkeypatch.setattr(bench, "test_items", lambda dataset, n, seed=0: items)
    monkeypatch.setattr(bench, "split_of", lambda i: "test")
    (tmp_path / "gsm8k").mkdir()
    for role in ("edge", "cloud"):
        (tmp_path / "gsm8k" / f"{role}.jsonl").write_text("")
    right = {"student_before": [0, 1, 0, 0], "student_after": [1, 1, 1, 0], "teacher": [1, 1, 1, 1]}
    rows = [{"variant": v, "id": i, "correct": bool(c), "mean_logprob": -0.1,
             "tokens_out": 320 if v == "student_before" and i != "gsm8k/1" else 100}
            for v, cs in right.items() for i, c in zip(ids, cs, strict=True)]  # fmt: skip
    rows = [r for r in rows if not (r["variant"] == "teacher" and r["id"] == "gsm8k/4")]  # one item missing
    s = bench.DistillBench(work=tmp_path, rows=tmp_path / "rows.jsonl", outcomes=tmp_path,
                           variants=("student_before", "student_after", "teacher"))  # fmt: skip
    got = bench.summarise(rows, s)
    assert got["test_items"] == 3  # the item the teacher lacks is left out of every variant
    assert got["student_before"]["accuracy"] == 0.3333
    assert got["student_after"]["accuracy"] == 1.0 and got["teacher"]["accuracy"] == 1.0
    assert got["gain_all"]["gain"] == 0.6667
    assert got["gain_all"]["ci_low"] <= got["gain_all"]["gain"] <= got["gain_all"]["ci_high"]
    assert (got["gain_all"]["won"], got["gain_all"]["lost"]) == (2, 0)
    assert got["student_before"]["cut"] == 0.667 and got["student_after"]["cut"] == 0.0  # 320: GSM8K's budget
    json.dumps(got)  # the report is plain JSON


def test_the_cascade_is_refitted_on_train_items_the_students_were_not_tuned_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_ids, train_ids = ["gsm8k/1", "gsm8k/2"], ["gsm8k/10", "gsm8k/11", "gsm8k/12", "gsm8k/13", "gsm8k/14"]

    def items(ids: list[str]) -> list[object]:
        return [type("I", (), {"id": i, "kind": "math"})() for i in ids]

    monkeypatch.setattr(bench, "test_items", lambda dataset, n, seed=0: items(test_ids))
    pools: list[int | None] = []
    monkeypatch.setattr(bench, "train_pool", lambda dataset, n, seed=0: pools.append(n) or items(train_ids[:n]))
    (tmp_path / "gsm8k").mkdir()
    for role in ("edge", "cloud"):
        table = [out(i, True, 0.5, "test") for i in test_ids] + [out(i, True, 0.5, "train") for i in train_ids]
        lines = [json.dumps(asdict(o)) for o in table]
        (tmp_path / "gsm8k" / f"{role}.jsonl").write_text("\n".join(lines) + "\n")
    variants = ("student_before", "student_after", "teacher")
    rows = [{"variant": v, "id": i, "correct": True, "mean_logprob": -0.1, "tokens_out": 9} for v in variants
            for i in test_ids]  # fmt: skip
    rows += [{"variant": "student_after", "id": i, "correct": True, "mean_logprob": -0.1} for i in train_ids]
    s = bench.DistillBench(work=tmp_path, rows=tmp_path / "rows.jsonl", outcomes=tmp_path, variants=variants)
    got = bench.summarise(rows, s)
    assert pools == [4]  # by default four fifths of the teacher's 5 train items are the tuning pool
    assert got["cascade_after"]["train_items"] == 1 and got["cascade_before"]["train_items"] == 1  # gsm8k/14
    pools.clear()
    got = bench.summarise(rows, bench.DistillBench(work=tmp_path, rows=s.rows, outcomes=tmp_path, variants=variants,
                                                   train_items=2))  # fmt: skip
    assert pools == [2] and got["cascade_after"]["train_items"] == 3


def test_a_cloud_share_that_falls_below_the_accuracy_target_is_not_a_saving() -> None:
    def verdict(share: float, accuracy: float) -> str:
        result = {"cascade_share_before": 0.9, "cascade_share_after": share, "test_items": 100,
                  "cascade_after": {"accuracy": accuracy, "target_test": 0.45}}  # fmt: skip
        return next(line for line in bench.targets(result) if "cascade" in line)

    assert ": met" in verdict(0.5, 0.46)
    assert "not met" in verdict(0.5, 0.40)  # fewer cloud calls, but under the target the threshold was fitted to
    assert "not met" in verdict(0.95, 0.50)
