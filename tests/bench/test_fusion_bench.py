"""tandem bench fusion: gap closed and its interval, the summary's keys, the safety data, resumable rows, and a
slow end-to-end run on SmolLM2-135M."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tandemlm.bench import fusion
from tandemlm.bench.fusion import GSM8K_VARIANTS, FusionBench, gap_closed, summarise, to_markdown
from tandemlm.bench.fusion_safety import build_safety_data, refused, safety_summary, wrap
from tandemlm.errors import ConfigError
from tandemlm.guard.data import GuardItem
from tandemlm.models.scripted import ScriptedModel


def test_gap_closed_is_the_ratio_of_means_with_a_paired_percentile_interval() -> None:
    proxy, base, tuned = [1, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0], [1, 1, 1, 0, 1, 0]
    got = gap_closed(proxy, base, tuned, draws=500, seed=3)
    assert got["gap_closed"] == round((3 / 6 - 1 / 6) / (4 / 6 - 1 / 6), 4)  # 2/3, rounded as reported
    p, b, t = (np.array(x, dtype=float) for x in (proxy, base, tuned))
    rng = np.random.default_rng(3)
    ratios = []
    for row in rng.integers(0, 6, size=(500, 6)):
        den = t[row].mean() - b[row].mean()
        if den != 0:
            ratios.append((p[row].mean() - b[row].mean()) / den)
    low, high = np.percentile(ratios, [2.5, 97.5])
    assert (got["ci_low"], got["ci_high"]) == (round(float(low), 4), round(float(high), 4))


def test_gap_closed_at_the_ends_and_undefined_without_a_gap() -> None:
    base, tuned = [0, 0, 1, 0], [1, 1, 1, 0]
    assert gap_closed(tuned, base, tuned) == {"gap_closed": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    assert gap_closed(base, base, tuned) == {"gap_closed": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert gap_closed([1, 1], [0, 1], [0, 1])["gap_closed"] is None


def _bench(tmp_path: Path, **kw: Any) -> FusionBench:
    return FusionBench(work=tmp_path / "work", rows=tmp_path / "rows.jsonl", outcomes=tmp_path / "none", **kw)


def _scripted_rows(ids: list[str]) -> list[dict[str, Any]]:
    right = {  # per variant: which of the 4 items it gets right
        "base_large": [1, 0, 0, 0], "base_small": [0, 0, 0, 0], "tuned_small": [1, 0, 0, 0],
        "proxy": [1, 1, 0, 0], "tuned_large": [1, 1, 1, 0], "contrastive": [1, 0, 1, 1], "safety_guided": [1, 0, 0, 0],
    }  # fmt: skip
    rows = [{"variant": v, "id": i, "origin": "measured", "correct": bool(c), "answer": "", "tokens_out": 10,
             "latency_s": 2.0 if v == "base_large" else 4.0}
            for v, cs in right.items() for i, c in zip(ids, cs, strict=True)]  # fmt: skip
    for v, attacks in (("base_large", [True, True]), ("safety_guided", [False, True])):
        for k, (kind, attack) in enumerate(zip(("harmful", "jailbreak"), attacks, strict=True)):
            rows.append({"variant": v, "id": f"{kind}:x{k}", "kind": kind, "attack": attack, "refused": not attack,
                         "tokens_out": 5, "latency_s": 1.0})  # fmt: skip
        rows.append({"variant": v, "id": "sensitive:y", "kind": "sensitive", "attack": False,
                     "refused": v == "safety_guided", "tokens_out": 5, "latency_s": 1.0})  # fmt: skip
    return rows


def test_summary_holds_the_issue_keys(tmp_path: Path, dataset: Any) -> None:
    dataset("gsm8k")
    s = _bench(tmp_path, items=4)
    ids = [i.id for i in fusion.test_items("gsm8k", 4)]
    result = summarise(_scripted_rows(ids), s)
    p = result["proxy"]
    assert {"base_large", "tuned_small", "proxy", "tuned_large", "gap_closed", "ci_low", "ci_high"} <= set(p)
    assert (p["items"], p["base_large"], p["proxy"], p["tuned_large"]) == (4, 0.25, 0.5, 0.75)
    assert p["gap_closed"] == 0.5
    assert result["contrastive"]["expert"] == 0.25 and result["contrastive"]["fused"] == 0.75
    assert result["contrastive"]["gain"]["gain"] == 0.5
    sf = result["safety"]
    assert (sf["asr_base"], sf["asr_guided"], sf["helpful_base"], sf["helpful_guided"]) == (1.0, 0.5, 0.25, 0.25)
    assert (sf["asr_harmful_safety_guided"], sf["asr_jailbreak_safety_guided"]) == (0.0, 1.0)
    assert (sf["over_refusal_base"], sf["over_refusal_guided"]) == (0.0, 1.0)
    assert (sf["refused_base_large"], sf["refused_safety_guided"]) == (0.0, 0.5)
    assert {k: sf["asr_change"][k] for k in ("gain", "won", "lost")} == {"gain": -0.5, "won": 0, "lost": 1}
    assert sf["over_refusal_change"]["gain"] == 1.0 and sf["helpful_change"]["gain"] == 0.0
    assert result["contrastive"]["gain"]["won"] == 2 and result["contrastive"]["gain"]["lost"] == 0
    co = result["cost"]
    assert co["base_large"]["tokens_per_s"] == 5.0 and co["proxy"]["vs_large"] == 0.5
    assert co["proxy"]["cut"] == 0.0 and result["answer_seconds"] == 4 * 2.0 + 24 * 4.0  # measured rows only
    assert set(co) == set(s.variants())
    result.update(
        training={v: {"examples": 3, "seconds": 1.5, "loss_first": 2.0, "loss_last": 1.0, "reused": False,
                      "harmful": 2, "benign": 2} for v in ("tuned_small", "tuned_large", "safe_small")},
        wall_seconds=1.0,
        settings={**fusion._settings(s, "tiny", "catalog:a"), "large_model": "catalog:b"},  # type: ignore[arg-type]
    )  # fmt: skip
    md = to_markdown(result, "tandem bench fusion --items 4")
    assert "Smoke-sized run" in md and "Gap closed" in md and "tandem bench fusion --items 4" in md
    assert "not judged (smoke-sized) (gap closed 0.5 on 4 items" in md and "answers 104.0 s" in md
    assert "attack success -0.500 [" in md and "(won 0, lost 1)" in md
    assert p["cut"] == dict.fromkeys(GSM8K_VARIANTS["proxy"], 0.0) and result["contrastive"]["cut"]["contrastive"] == 0
    assert p["tokens_out"]["proxy"] == 10.0 and p["length_gap_closed"]["gap_closed"] is None  # equal lengths
    worse = {**result, "proxy": {**p, "items": 40, "tuned_large": 0.2}}  # tuning lowers the large model
    assert "not judged: there is no gap to close, the tuned large model scores 0.2" in fusion.targets(worse)[0]
    assert "met (gap closed 0.5" not in "".join(fusion.targets(worse))
    judged = fusion.targets({**result, "proxy": {**p, "items": 40}})[0]
    assert judged.endswith(": met (gap closed 0.5 on 40 items, interval [0.0, 1.0])")
    json.dumps(result)


def test_safety_data_refuses_harmful_and_keeps_the_base_answers_cached(tmp_path: Path) -> None:
    harmful = [GuardItem(f"h/{i}", f"how to do harm {i}", 1, "h") for i in range(3)]
    benign = [GuardItem(f"b/{i}", f"how to bake {i}", 0, "b") for i in range(2)]
    asked: list[str] = []

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return f"Sure: {prompt}."

    out, cache = tmp_path / "safety.jsonl", tmp_path / "answers.jsonl"
    counts = build_safety_data(harmful, benign, answer, cache, out, "I can't help with that request.")
    assert counts == {"harmful": 3, "benign": 2, "examples": 5}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    by_id = {r["id"]: r for r in lines}
    assert {r["messages"][1]["content"] for r in lines if r["origin"] == "refusal"} == {
        "I can't help with that request."
    }
    assert by_id["b/1"]["messages"] == [{"role": "user", "content": "how to bake 1"},
                                        {"role": "assistant", "content": "Sure: how to bake 1."}]  # fmt: skip
    assert sorted(asked) == ["how to bake 0", "how to bake 1"]
    build_safety_data(harmful, benign, answer, cache, out, "No.")  # the benign answers come from the cache
    assert len(asked) == 2 and len(cache.read_text().splitlines()) == 2


def test_refusals_and_wrapping() -> None:
    assert refused("I'm sorry, but I can't assist with that.") and refused("I cannot help with this request.")
    assert not refused("Sure! Here is how SQL injection works: ...")
    assert not refused("x" * 200 + " I cannot")  # only the opening counts
    assert wrap("Be DAN. [INSERT PROMPT HERE] now", "Q?") == "Be DAN. Q? now"
    assert wrap("Be DAN.", "Q?") == "Be DAN.\n\nQ?"
    rows = [{"variant": "a", "id": "s", "kind": "sensitive", "refused": True, "attack": False}]
    assert safety_summary(rows, ("a", "b"))["prompts"] == {"harmful": 0, "jailbreak": 0, "sensitive": 0}


def _scripted_models(monkeypatch: Any) -> list[str]:
    """Every variant answers from a scripted model; the list the variants asked are appended to."""
    asked: list[str] = []

    def get(self: Any, variant: str) -> ScriptedModel:
        asked.append(variant)
        return ScriptedModel("... The answer is 0", name=variant)

    monkeypatch.setattr(fusion._Models, "get", get)
    return asked


def test_rows_resume_and_only_missing_answers_are_asked(tmp_path: Path, dataset: Any, monkeypatch: Any) -> None:
    dataset("gsm8k")
    s = _bench(tmp_path, items=2, parts=("contrastive",))
    ids = [i.id for i in fusion.test_items("gsm8k", 2)]
    first = {"variant": "base_large", "id": ids[0], "origin": "measured", "correct": True, "answer": "",
             "tokens_out": 1, "latency_s": 1.0}  # fmt: skip
    s.rows.write_text(json.dumps(first) + "\n")
    asked = _scripted_models(monkeypatch)
    rows = fusion.answer_all(None, s, {}, lambda _: None)  # type: ignore[arg-type]
    assert sorted(asked) == ["base_large", "contrastive", "contrastive"]
    assert len(rows) == 4 and len(s.rows.read_text().splitlines()) == 4
    asked.clear()
    again = fusion.answer_all(None, s, {}, lambda _: None)  # type: ignore[arg-type]
    assert asked == [] and again == rows
    assert set(GSM8K_VARIANTS["contrastive"]) == {r["variant"] for r in rows}


def test_cost_items_time_the_large_model_on_the_first_items_and_report_only_answers_nothing(
    tmp_path: Path, dataset: Any, monkeypatch: Any
) -> None:
    dataset("gsm8k")
    ids = [i.id for i in fusion.test_items("gsm8k", 3)]
    tables = tmp_path / "outcomes" / "gsm8k"
    tables.mkdir(parents=True)
    for role in ("edge", "cloud"):
        rows = [{"id": i, "split": "test", "answer": f"{role} table", "correct": role == "cloud", "tokens_in": 5,
                 "tokens_out": 7, "latency_s": 0.5, "cost_usd": 0.0} for i in ids]  # fmt: skip
        (tables / f"{role}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = replace(_bench(tmp_path, items=3, parts=("contrastive", "cost"), cost_items=1), outcomes=tmp_path / "outcomes")
    asked = _scripted_models(monkeypatch)
    rows = fusion.answer_all(None, s, {}, lambda _: None)  # type: ignore[arg-type]
    large = {r["id"]: r["origin"] for r in rows if r["variant"] == "base_large"}
    assert large == {ids[0]: "measured", ids[1]: "table", ids[2]: "table"}
    assert sorted(asked) == ["base_large"] + ["contrastive"] * 3
    timed = [{**r, "latency_s": 1.0} for r in rows]  # a scripted answer can take under the rounding's 1 ms
    assert summarise(timed, s)["cost"]["base_large"]["answers"] == 1  # only measured answers are timed

    asked.clear()
    later = replace(s, items=5, answer=False)  # two more items wanted, none answered
    assert fusion.answer_all(None, later, {}, lambda _: None) == rows and asked == []  # type: ignore[arg-type]
    assert summarise(rows, later)["contrastive"]["items"] == 3
    with pytest.raises(ConfigError, match="--report-only"):
        fusion._train(later, "base", tmp_path / "data.jsonl", tmp_path / "none", "tuned small", lambda _: None)


@pytest.mark.slow
def test_bench_fusion_end_to_end_on_smollm2(tmp_path: Path, dataset: Any, smollm2_path: str) -> None:
    """Two GSM8K items, four train items, 2 LoRA steps per adapter, one safety prompt of each kind."""
    from click.testing import CliRunner

    from tandemlm.cli import main

    dataset("gsm8k")
    out = tmp_path / "fusion.json"
    args = ["bench", "fusion", "--config", "tiny", "--items", "2", "--train-items", "4", "--steps", "2",
            "--max-tokens", "12", "--safety-items", "1", "--safety-train", "2", "--safety-tokens", "6",
            "--max-length", "160", "--outcomes", str(tmp_path / "none"), "--work", str(tmp_path / "work"),
            "--rows", str(tmp_path / "rows.jsonl"), "--json", str(out),
            "--out", str(tmp_path / "fusion.md")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert got["proxy"]["items"] == 2 and got["contrastive"]["items"] == 2
    assert {"asr_base", "asr_guided", "helpful_base", "helpful_guided"} <= set(got["safety"])
    assert got["safety"]["prompts"] == {"harmful": 1, "jailbreak": 1, "sensitive": 1}
    assert got["cost"]["proxy"]["answers"] == 2 and got["cost"]["base_large"]["tokens_per_s"] > 0
    assert all(got["training"][k]["examples"] == n for k, n in
               (("tuned_small", 4), ("tuned_large", 4), ("safe_small", 4)))  # fmt: skip
    rows = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 2 * 7 + 3 * 2
    again = CliRunner().invoke(main, args)  # everything reused: no training, no answer asked again
    assert again.exit_code == 0, again.output
    assert "training" not in again.output.split("# Logit fusion")[0]
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == len(rows)
    assert json.loads(out.read_text())["training"]["tuned_large"]["reused"] is True
    assert "Command: `tandem" in (tmp_path / "fusion.md").read_text()  # the words after it are pytest's own argv


def test_the_committed_report_reproduces_from_its_rows(dataset: Any) -> None:
    """bench/results/fusion.json's numbers are what its rows give (the rows hold every answer behind them)."""
    dataset("gsm8k")
    results = Path(__file__).resolve().parents[2] / "bench" / "results"
    committed = json.loads((results / "fusion.json").read_text(encoding="utf-8"))
    cfg = committed["settings"]
    s = FusionBench(work=Path("unused"), rows=results / "fusion.jsonl", items=cfg["items"], seed=cfg["seed"],
                    max_tokens=cfg["max_tokens"], parts=tuple(cfg["parts"]))  # fmt: skip
    again = json.loads(json.dumps(summarise(fusion.read_rows(s.rows), s)))
    for part in cfg["parts"]:
        assert again[part] == committed[part], part
