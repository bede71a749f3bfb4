"""`tandem bench route` on synthetic outcome tables whose best decisions are known."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from tandemlm.bench import metrics
from tandemlm.bench.datasets import Item
from tandemlm.bench.outcomes import Outcome
from tandemlm.bench.route import evaluate, load_splits, to_markdown


def outcome(item_id: str, split: str, correct: bool, confidence: float, cost: float = 0.0) -> Outcome:
    return Outcome(item_id, split, "x", correct, 10, 5, 0.1, cost, confidence, confidence, 1.0, confidence)


def write_tables(root: Path, items: list[Item], *, informative: bool) -> None:
    """The edge is right on every third item; the cloud on all. With `informative`, the edge's confidence
    is high exactly where it is right (a perfect cascade signal); otherwise it is the same everywhere."""
    from tandemlm.bench.datasets import split_of

    edge, cloud = [], []
    for i, item in enumerate(items):
        right = i % 3 == 0
        conf = (0.9 if right else 0.1) if informative else 0.5
        edge.append(outcome(item.id, split_of(item.id), right, conf))
        cloud.append(outcome(item.id, split_of(item.id), True, 0.9, cost=1e-4))
    for name, rows in (("edge", edge), ("cloud", cloud)):
        path = root / "gsm8k" / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))


@pytest.fixture
def gsm8k_items(dataset: Callable[[str], list[Item]]) -> list[Item]:
    return dataset("gsm8k")[:60]


def test_a_perfect_cascade_signal_matches_the_oracle(tmp_path: Path, gsm8k_items: list[Item]) -> None:
    write_tables(tmp_path, gsm8k_items, informative=True)
    result = evaluate("gsm8k", tmp_path, routers=("length",))
    test = load_splits("gsm8k", tmp_path)["test"]
    assert result["test_items"] == len(test.prompts) and result["cloud_accuracy"] == 1.0
    best = result["methods"]["cascade:logprob"]
    assert best["apgr"] == pytest.approx(result["methods"]["oracle"]["apgr"], abs=1e-9)
    # the share of items the edge gets wrong is exactly the share needed to reach the cloud's accuracy
    wrong = 1 - result["edge_accuracy"]
    assert best["share_at_95"] == pytest.approx(wrong, abs=1e-9)
    assert result["methods"]["random"]["apgr"] == pytest.approx(0.5)
    assert best["aiq"] > result["methods"]["random"]["aiq"]
    assert "| cascade:logprob |" in to_markdown({"machine": "m", "budget_share": 0.5, "datasets": [result]}, "cmd")


def test_an_uninformative_signal_is_no_better_than_random(tmp_path: Path, gsm8k_items: list[Item]) -> None:
    write_tables(tmp_path, gsm8k_items, informative=False)
    result = evaluate("gsm8k", tmp_path, routers=())
    flat = result["methods"]["cascade:logprob"]
    # one score for every item: the sweep has only all-edge and all-cloud, so APGR is the random line's 0.5
    assert flat["curve"] == [(0.0, result["edge_accuracy"]), (1.0, 1.0)]
    assert flat["apgr"] == pytest.approx(0.5)
    assert flat["budget"]["share"] == 0.0  # a tie at the boundary: the budget is undershot, never exceeded
    assert metrics.apgr(flat["curve"], result["edge_accuracy"], 1.0) == flat["apgr"]


def test_missing_tables_say_how_to_build_them(tmp_path: Path) -> None:
    from tandemlm.errors import ModelSourceError

    with pytest.raises(ModelSourceError, match="tandem bench outcomes --dataset gsm8k"):
        evaluate("gsm8k", tmp_path)
