"""The speculative benchmark's edit suite and report, without models: the edits copy their HumanEval code, the
suites' summaries keep per-suite and per-kind medians and the divergence accounting."""

from __future__ import annotations

import ast
from typing import Any

from tandemlm.bench.datasets import load
from tandemlm.bench.edits import HELD_OUT_FROM, edit_prompts
from tandemlm.bench.speculative import summarise_suites, to_markdown


def test_edits_are_built_from_held_out_humaneval_items_and_carry_their_code() -> None:
    edits = edit_prompts(9)
    items = {item.id: item for item in load("humaneval")}
    assert len(edits) == 9 and all(int(e.id.split("/")[1]) >= HELD_OUT_FROM for e in edits)
    assert {e.task for e in edits} >= {"docstring", "rename"}
    for e in edits:
        item = items[e.id]
        code = e.prompt.split("```python\n", 1)[1].rsplit("```", 1)[0]
        ast.parse(code)  # the code given is valid Python
        if e.task == "docstring":  # docstrings stripped, the solution's statements kept
            tree = ast.parse(code)
            assert ast.get_docstring(tree.body[-1]) is None  # type: ignore[arg-type]
        else:
            assert code.strip() == (item.prompt + item.answer).strip()
        if e.task == "rename":
            assert f"`{item.entry_point}`" in e.prompt
    assert edit_prompts(3) == edits[:3]  # fixed, not drawn


def _row(suite: str, kind: str, speedup: float, gap: float | None) -> dict[str, Any]:
    parts = {p: 1.0 for p in ("first_round", "draft", "lookup", "verify", "accept", "emit", "rest", "llama_decode")}
    one = {
        "tok_s": 10.0, "speedup": speedup, "predicted_speedup": speedup * 1.1, "share_of_prediction": 0.9,
        "alpha": 0.8, "tokens_per_round": 3.0, "lookup_share": 0.5, "draft_ms_tok": 30.0, "verify_ms_pos": 35.0,
        "profile_s": {**parts, "total": 10.0}, "identical": gap is None,
    }  # fmt: skip
    if gap is not None:
        one.update(gap=gap, near_tie=gap < 0.5, diverged_at=3)
    return {"suite": suite, "kind": kind, "tokens": 64, "target_tok_s": 12.5, "hybrid": one, "lookup": dict(one)}


def test_suites_summary_keeps_medians_per_suite_and_kind_and_the_near_tie_share() -> None:
    rows = [
        _row("edit", "rename", 2.0, None), _row("edit", "docstring", 1.6, 0.1), _row("edit", "rename", 1.0, 0.9),
        _row("fresh", "code", 1.3, None), _row("fresh", "math", 0.9, 0.2), _row("fresh", "code", 1.1, None),
    ]  # fmt: skip
    suites = summarise_suites(rows, ("hybrid", "lookup"))
    assert suites["edit"]["median_speedup"] == 1.6 and suites["edit"]["drafter"] == "hybrid"
    assert suites["edit"]["near_tie_share"] == 0.5 and suites["edit"]["largest_gap"] == 0.9
    assert suites["fresh"]["code"]["median_speedup"] == 1.2 and suites["fresh"]["math"]["median_speedup"] == 0.9
    assert (
        suites["fresh"]["near_tie_share"] == 1.0 and suites["fresh"]["code"]["drafters"]["hybrid"]["divergences"] == 0
    )
    assert suites["edit"]["drafters"]["lookup"]["profile_share"]["verify"] == 0.1
    result = {
        "rows": rows, "suites": suites,
        "settings": {"machine": "x", "threads": 1, "llama_cpp_python": "0", "max_tokens": 64, "k": 4,
                     "adaptive": True, "lookup_k": 8, "prompts_per_suite": 3, "load_average_before": [1, 1, 1],
                     "load_average_after": [1, 1, 1], "edits_from": "HumanEval/82", "near_tie_epsilon": 0.5,
                     "drafters": ["hybrid", "lookup"]},
    }  # fmt: skip
    text = to_markdown(result, "tandem bench speculative")
    assert "| edit | hybrid | 3 | **1.6x** | >= 1.5x |" in text and "| fresh/math | hybrid | 1 | **0.9x** |" in text
    assert "50% of 2" in text
