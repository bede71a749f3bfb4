"""`tandem bench collab` on scripted models and a made-up outcome table: rows, resumption, baselines, TTS offline."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tandemlm.bench import collab
from tandemlm.bench.datasets import Item, split_of
from tandemlm.bench.outcomes import Outcome
from tandemlm.models.scripted import ScriptedModel
from tandemlm.types import Price

ITEMS = [Item(f"gsm8k/{i}", f"What is {i} + {i}?", str(2 * i), "math") for i in range(40)]


def write_tables(root: Path, answer: str = "x") -> None:
    (root / "gsm8k").mkdir(parents=True)
    for model, right in (("edge", lambda i: i % 2 == 0), ("cloud", lambda i: i % 4 != 3)):
        cost = 0.0 if model == "edge" else 1e-5
        rows = [
            Outcome(
                it.id, split_of(it.id), answer, right(i), 10, 5, 0.5, cost, mean_logprob=-0.1 if i % 2 == 0 else -2.0
            )
            for i, it in enumerate(ITEMS)
        ]
        (root / "gsm8k" / f"{model}.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))


def test_collab_bench_answers_resumes_and_summarises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collab, "load", lambda name: ITEMS)
    write_tables(tmp_path)
    asked = []

    def pair() -> tuple[ScriptedModel, ScriptedModel]:
        asked.append(1)
        edge = ScriptedModel(lambda r: "The answer is 0.", name="edge")
        cloud = ScriptedModel(lambda r: "The answer is 0.", name="cloud", location="cloud", price=Price(1.0, 1.0))
        return edge, cloud

    r = collab.run_dataset("gsm8k", ["cross-verify"], pair, outcomes=tmp_path, limit=5, progress=False, replay=False)
    test_ids = [it.id for it in collab.sample(ITEMS, None) if split_of(it.id) == "test"][:5]
    rows = [json.loads(line) for line in (tmp_path / "collab/gsm8k/cross-verify.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == test_ids and r["items"] == 5 and asked == [1]
    s = r["methods"]["cross-verify"]
    assert s["n"] == 5 and s["accuracy"] == np.mean([it.answer == "0" for it in ITEMS if it.id in test_ids])
    assert s["cloud_tokens"] > 0 and s["edge_tokens"] > 0 and s["cost_usd"] > 0
    assert set(r["baselines"]) == {"edge alone", "cloud alone"} and r["baselines"]["edge alone"]["n"] == 5
    again = collab.run_dataset("gsm8k", ["cross-verify"], pair, outcomes=tmp_path, limit=5, progress=False,
                               replay=False)  # fmt: skip
    assert asked == [1] and again["methods"] == r["methods"]  # nothing new to answer: no model is loaded
    only = collab.run_dataset("gsm8k", ["llm-guided"], pair, outcomes=tmp_path, limit=5, progress=False, run=False)
    assert only["methods"]["llm-guided"]["n"] == 0 and "cloud_cost_of_cloud_alone" not in only["methods"]["llm-guided"]
    assert not (tmp_path / "collab/gsm8k/llm-guided.jsonl").exists()  # a report leaves no empty row file
    assert r["tts"]["budgets"] and all(b["test_cost_usd"] <= 1e-5 for b in r["tts"]["budgets"])
    text = collab.to_markdown({"datasets": {"gsm8k": r}, "targets": collab.targets({"datasets": {"gsm8k": r}})}, "x")
    assert "| cross-verify | 5 |" in text and "TTS allocator" in text


def test_members_asked_the_tables_request_answer_from_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collab, "load", lambda name: ITEMS)
    write_tables(tmp_path, "The answer is 5.")  # both tables give 5 for every item: the first round agrees
    models: list[ScriptedModel] = []

    def pair() -> tuple[ScriptedModel, ScriptedModel]:
        models[:] = [
            ScriptedModel(lambda r: "The answer is 0.", name="edge"),
            ScriptedModel(lambda r: "The answer is 0.", name="cloud", location="cloud", price=Price(1, 1)),
        ]
        return models[0], models[1]

    r = collab.run_dataset("gsm8k", ["cross-verify"], pair, outcomes=tmp_path, limit=4, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "collab/gsm8k/cross-verify.jsonl").read_text().splitlines()]
    assert [m.calls for m in models] == [0, 0]  # neither engine generated anything
    assert all(row["answer"] == "The answer is 5." for row in rows) and r["seconds"]["cross-verify"]["replayed"] == {
        "edge": 4, "cloud": 4}  # fmt: skip
    s = r["methods"]["cross-verify"]  # the tables' usage, cost and latency (0.5 s each, summed)
    assert (s["cloud_tokens"], s["edge_tokens"], s["cost_usd"]) == (15, 15, pytest.approx(1e-5))
    assert all(row["latency_s"] >= 1.0 for row in rows)
    assert "4 edge and 4 cloud answers replayed" in collab.to_markdown({"datasets": {"gsm8k": r}, "targets": {}}, "x")


def test_a_replayed_engine_answers_other_requests_itself() -> None:
    from tandemlm.bench.replay import REPLAYED, Replayed, table_request
    from tandemlm.types import Request

    item = ITEMS[0]
    engine = ScriptedModel(lambda r: "The answer is 7.", name="cloud", location="cloud", price=Price(1, 1))
    replayed = Replayed(engine, {table_request(item): Outcome(item.id, "test", "42", True, 10, 5, 2.0, 3e-5)})
    got = replayed.generate(table_request(item))
    assert got.text == "42" and engine.calls == 0 and got.usage.completion_tokens == 5
    [event] = [e for e in got.trace if e.model == "cloud"]
    assert (event.role, event.latency_s, event.cost_usd) == (REPLAYED, 2.0, 3e-5) and event.egress
    other = Request.of(table_request(item).messages, max_tokens=999)  # not what the table asked
    assert replayed.generate(other).text == "The answer is 7." and engine.calls == 1
    assert "".join(c.text for c in replayed.stream(table_request(item))) == "42" and engine.calls == 1
    got = replayed.generate_many([other, table_request(item), other], roles=["x", "y", "z"])
    assert [c.text for c in got] == ["The answer is 7.", "42", "The answer is 7."] and engine.calls == 3  # two decoded
    assert [[e.role for e in c.trace if e.model == "cloud"] for c in got] == [["x"], [REPLAYED], ["z"]]
    assert not replayed.constrained
    engine.constrained = engine.grammars = True  # an engine decoding under grammars (llama.cpp) stays one replayed
    assert Replayed(engine, {}).constrained and Replayed(engine, {}).grammars


def test_bootstrap_interval_brackets_the_mean() -> None:
    values = np.array([1.0] * 30 + [0.0] * 70)
    low, high = collab.bootstrap_ci(values)
    assert low < 0.3 < high and low > 0.15 and high < 0.45


def rows_of(correct: list[int], cost: float) -> dict[str, dict[str, float]]:
    return {f"i{k}": {"correct": bool(c), "cost_usd": cost} for k, c in enumerate(correct)}


def test_matched_cost_mixes_the_two_baselines_that_bracket_the_method() -> None:
    curve = {"edge alone": rows_of([0, 0, 0, 1], 0.0), "cloud alone": rows_of([1, 0, 0, 1], 1.0),
             "cloud-sc3": rows_of([1, 1, 0, 1], 3.0)}  # fmt: skip
    m = collab.matched_cost(rows_of([1, 1, 1, 0], 2.0), curve)  # halfway between the cloud (0.5) and sc3 (0.75)
    assert m is not None and m["between"] == ["cloud alone", "cloud-sc3"] and m["share"] == 0.5
    assert (m["baseline_accuracy"], m["accuracy"], m["gain"], m["cost_of_cloud"]) == (0.625, 0.75, 0.125, 2.0)
    assert m["gain_ci"][0] <= m["gain"] <= m["gain_ci"][1] and not m["capped"]
    cheap = collab.matched_cost(rows_of([1, 1, 1, 0], 0.25), curve)  # a quarter of the way from the edge to the cloud
    assert cheap is not None and cheap["between"] == ["edge alone", "cloud alone"]
    assert cheap["baseline_accuracy"] == pytest.approx(0.75 * 0.25 + 0.25 * 0.5)
    dear = collab.matched_cost(rows_of([1, 1, 1, 0], 9.0), curve)  # past the curve: the dearest baseline, capped
    assert dear is not None and dear["between"] == ["cloud-sc3"] and dear["capped"]
    assert dear["baseline_accuracy"] == 0.75
    partial = {**curve, "cloud-sc3": {k: v for k, v in curve["cloud-sc3"].items() if k != "i3"}}
    fewer = collab.matched_cost(rows_of([1, 1, 1, 0], 2.0), partial)
    assert fewer is not None and fewer["n"] == 3  # only the items every baseline answered
    assert collab.matched_cost({}, curve) is None
