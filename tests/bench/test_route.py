"""`tandem bench route` on synthetic outcome tables whose best decisions are known."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tandemlm.bench import metrics
from tandemlm.bench.datasets import Item
from tandemlm.bench.outcomes import Outcome
from tandemlm.bench.route import bootstrap, curve_arrays, evaluate, load_splits, to_markdown


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
    assert best["gain_auc"] == 1.0 and result["cloud_fixes"] == round(wrong * result["test_items"])
    assert result["methods"]["random"]["apgr"] == pytest.approx(0.5)
    assert best["aiq"] > result["methods"]["random"]["aiq"]
    report = to_markdown({"machine": "m", "budget_share": 0.5, "datasets": [result]}, "cmd")
    assert f"| **{result['best_on_train']}** |" in report and "| cascade:min_logprob |" in report


def test_a_constant_signal_is_left_out_and_random_is_the_line(tmp_path: Path, gsm8k_items: list[Item]) -> None:
    write_tables(tmp_path, gsm8k_items, informative=False)
    result = evaluate("gsm8k", tmp_path, routers=())
    assert set(result["methods"]) == {"random", "oracle"}  # one value for every item: no threshold separates
    e_acc = result["edge_accuracy"]
    assert result["methods"]["random"]["curve"][5] == pytest.approx((0.5, (e_acc + 1.0) / 2))
    assert result["methods"]["random"]["apgr"] == pytest.approx(0.5)


def test_missing_tables_say_how_to_build_them(tmp_path: Path) -> None:
    from tandemlm.errors import ModelSourceError

    with pytest.raises(ModelSourceError, match="tandem bench outcomes --dataset gsm8k"):
        evaluate("gsm8k", tmp_path)


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_committed_report_reproduces_from_the_committed_tables(
    tmp_path: Path, dataset: Callable[[str], list[Item]]
) -> None:
    """`tandem bench route` on bench/outcomes gives the numbers in bench/results/route.json, with its plots."""
    from tandemlm.bench.route import run_route_bench
    from tandemlm.collab.routing import fetch_minilm

    committed = json.loads((REPO / "bench/results/route.json").read_text())
    fetch_minilm(fetch=False)
    names = [d["dataset"] for d in committed["datasets"]]
    for name in names:
        dataset(name)  # cached, or skip locally / fail in CI
    result = run_route_bench(names, REPO / "bench/outcomes", tmp_path, latency=False)
    for got, want in zip(result["datasets"], committed["datasets"], strict=True):
        assert (got["test_items"], got["best_on_train"]) == (want["test_items"], want["best_on_train"])
        for method, row in want["methods"].items():
            for key in ("apgr", "cpt50", "cpt80", "aiq", "share_at_95", "gain_auc"):
                want_value = row.get(key)  # random and oracle have no gain AUC
                assert got["methods"][method].get(key) == pytest.approx(want_value, abs=1e-6), (method, key)
            for key, interval in row.get("ci", {}).items():  # the seeded bootstrap reproduces too
                assert got["methods"][method]["ci"][key] == pytest.approx(interval, abs=1e-6), (method, key)
        assert (tmp_path / f"route_{got['dataset']}.png").stat().st_size > 10_000


# ---- bootstrap intervals ------------------------------------------------------------------------------


def _table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    edge = (rng.random(n) < 0.3).astype(float)
    cloud = np.maximum(edge, rng.random(n) < 0.5).astype(float)
    cloud[:3] = 0.0  # a few items only the edge gets right
    return np.round(rng.random(n), 1), edge, cloud  # rounded: many tied scores


@pytest.mark.parametrize("seed", range(5))
def test_curve_arrays_are_the_sweep(seed: int) -> None:
    scores, edge, cloud = _table(40, seed)
    shares, accs = curve_arrays(scores, edge, cloud)
    np.testing.assert_allclose(
        np.column_stack([shares, accs]), np.array(metrics.sweep(scores, edge, cloud)), atol=1e-12
    )


def test_one_identity_draw_gives_the_point_estimates() -> None:
    scores, edge, cloud = _table(40, 1)
    e_acc, c_acc = edge.mean(), cloud.mean()
    curve = metrics.sweep(scores, edge, cloud)
    to_cloud = scores > 0.5
    got = bootstrap(scores, to_cloud, edge, cloud, np.arange(40)[None, :])
    assert got["apgr"] == pytest.approx([metrics.apgr(curve, e_acc, c_acc)] * 2)
    assert got["cpt50"] == pytest.approx([metrics.cpt(curve, e_acc, c_acc, 0.5)] * 2)
    budget = np.where(to_cloud, cloud, edge).mean()
    assert got["budget_accuracy"] == pytest.approx([budget] * 2)
    assert got["budget_of_cloud"] == pytest.approx([budget / c_acc] * 2)
    oracle = bootstrap(None, None, edge, cloud, np.arange(40)[None, :])
    assert oracle["apgr"] == pytest.approx([metrics.apgr(metrics.oracle(edge, cloud), e_acc, c_acc)] * 2)
    assert "budget_accuracy" not in oracle


def test_intervals_are_seeded_cover_the_estimate_and_leave_out_resamples_without_a_gap(
    tmp_path: Path, gsm8k_items: list[Item]
) -> None:
    write_tables(tmp_path, gsm8k_items, informative=True)
    a, b = (evaluate("gsm8k", tmp_path, routers=("length",), resamples=200) for _ in range(2))
    assert a["methods"]["router:length"]["ci"] == b["methods"]["router:length"]["ci"]
    for name in ("cascade:logprob", "router:length", "oracle"):
        row = a["methods"][name]
        lo, hi = row["ci"]["apgr"]
        assert lo <= row["apgr"] <= hi
    # the perfect signal is the oracle on every resample
    assert a["methods"]["cascade:logprob"]["ci"]["apgr"] == pytest.approx(a["methods"]["oracle"]["ci"]["apgr"])
    # the cloud is right everywhere, so every resample has a gap (unless the edge is right on all of it)
    assert a["methods"]["oracle"]["ci"]["defined"] == 200
    scores, edge, _ = _table(40, 2)
    no_gap = bootstrap(scores, scores > 0.5, edge, edge, np.arange(40)[None, :])
    assert (no_gap["defined"], no_gap["apgr"], no_gap["cpt50"]) == (0, None, None)
    assert no_gap["budget_accuracy"] == pytest.approx([edge.mean()] * 2)
    assert "[" in to_markdown({"machine": "m", "budget_share": 0.5, "datasets": [a]}, "cmd")


def test_the_whole_split_decides_whether_apgr_has_an_interval() -> None:
    scores, edge, cloud = _table(40, 3)
    draws = np.random.default_rng(0).integers(0, 40, size=(200, 40))
    # the edge ahead on the whole split: no APGR, so no interval, though some resamples have the cloud ahead
    got = bootstrap(scores, scores > 0.5, cloud, edge, draws)
    assert (got["defined"], got["apgr"], got["cpt50"]) == (0, None, None)
    assert got["budget_accuracy"] is not None


def test_the_learned_routers_are_fitted_on_train_and_the_draft_router_is_a_cascade(
    tmp_path: Path, gsm8k_items: list[Item]
) -> None:
    from tandemlm.bench.route import _target, method_scores
    from tandemlm.collab.routing import HashEmbedder

    write_tables(tmp_path, gsm8k_items, informative=True)
    splits = load_splits("gsm8k", tmp_path)
    train, test = splits["train"], splits["test"]
    scores = method_scores(train, test, ("mf", "mlp", "signals"), HashEmbedder(64))
    assert {"router:mf", "router:mlp", "cascade:signals"} <= set(scores)
    assert scores["cascade:signals"]["router"].signals == ("logprob", "min_logprob", "verify")
    # the draft's confidence is a perfect signal here, and the learned cascade finds it
    signals = scores["cascade:signals"]["test"]
    curve = metrics.sweep(signals, test.edge_correct, test.cloud_correct)
    oracle = metrics.oracle(test.edge_correct, test.cloud_correct)
    e_acc, c_acc = test.edge_correct.mean(), test.cloud_correct.mean()
    assert metrics.apgr(curve, e_acc, c_acc) == pytest.approx(metrics.apgr(oracle, e_acc, c_acc))
    assert len(scores["router:mf"]["train"]) == len(train.prompts)  # out-of-fold scores for the train pick
    # MF learns pairwise wins (½ a tie); the others where the cloud fixes the edge
    wins = _target("mf", train)
    assert set(wins.tolist()) <= {0.0, 0.5, 1.0}
    assert np.array_equal(wins == 1.0, _target("mlp", train) == 1.0)


def test_fitting_never_reads_the_test_rows(tmp_path: Path, gsm8k_items: list[Item]) -> None:
    """Every router's fit and train scores are the same whatever the test split holds: other outcomes, other
    draft signals, other prompts; only its test scores may change (and a query router's only with the prompts)."""
    from dataclasses import replace

    from tandemlm.bench.route import Split, method_scores
    from tandemlm.collab.routing import HashEmbedder

    write_tables(tmp_path, gsm8k_items, informative=True)
    splits = load_splits("gsm8k", tmp_path)
    train, test = splits["train"], splits["test"]
    flipped = Split(
        test.prompts,
        [
            replace(o, correct=not o.correct, mean_logprob=-3.0 * (i % 4), p_yes=0.25 * (i % 4))
            for i, o in enumerate(test.edge)
        ],
        [replace(o, correct=not o.correct) for o in test.cloud],
    )
    reworded = Split([f"{p} {i} matrix" for i, p in enumerate(test.prompts)], test.edge, test.cloud)
    names = ("length", "knn", "logistic", "mf", "mlp", "signals")
    base = method_scores(train, test, names, HashEmbedder(64))
    for other_test in (flipped, reworded):
        other = method_scores(train, other_test, names, HashEmbedder(64))
        assert set(other) == set(base)
        for label, row in base.items():
            assert np.array_equal(other[label]["train"], row["train"]), label
            if "router" in row:
                got, want = other[label]["router"].state(), row["router"].state()
                assert all(np.array_equal(got[k], want[k]) for k in want), label
            if label.startswith("router:") and other_test is flipped:
                assert np.array_equal(other[label]["test"], row["test"]), label
