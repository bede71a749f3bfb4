"""`tandem bench privacy-utility`'s logic with scripted models: the items, one row, the summary."""

from __future__ import annotations

from tandemlm import ScriptedModel
from tandemlm.bench.datasets import split_of
from tandemlm.bench.privacy_utility import answer_row, policy_model, summarise, to_markdown, utility_items
from tandemlm.privacy import PatternDetector


def test_items_are_one_split_half_with_four_values_woven_in() -> None:
    items = utility_items(4, "test", 0)
    assert len(items) == 4 and all(split_of(item.id) == "test" for item, _ in items)
    assert all(all(v in item.prompt for v in values) and len(values) == 4 for item, values in items)
    assert [i.id for i, _ in items] == [i.id for i, _ in utility_items(4, "test", 0)]  # seeded, fixed
    assert not {i.id for i, _ in items} & {i.id for i, _ in utility_items(20, "train", 0)}


def test_a_row_counts_the_values_in_the_exact_egress() -> None:
    (item, values), = utility_items(1, "test", 0)  # fmt: skip
    cloud = ScriptedModel(f"The answer is {item.answer}.", name="cloud", location="cloud")
    edge = ScriptedModel("How many?", name="edge")  # drops every number: retried, then pseudonymize
    raw = answer_row(policy_model("none", edge, cloud, PatternDetector()), "none", item, values, 16)
    assert raw["correct"] and len(raw["leaked"]) >= 3  # the e-mail, phone and card at least (no NER here)
    row = answer_row(policy_model("disclosure", edge, cloud, PatternDetector()), "disclosure", item, values, 16)
    assert row["correct"] and row["retried"] == 1 and len(row["fell_back"]) == 1
    assert row["egress"] and not set(row["leaked"]) & set(values[1:])  # e-mail, phone, card masked


def test_summary_compares_the_items_every_policy_answered() -> None:
    def row(policy: str, i: int, right: bool, fell_back: bool = False) -> dict[str, object]:
        return {"policy": policy, "id": f"gsm8k/{i}", "correct": right, "fell_back": ["x"] if fell_back else [],
                "retried": int(fell_back), "leaked": [], "egress": ["e"], "seconds": 2.0}  # fmt: skip

    rows = [row("none", 1, True), row("none", 2, True), row("none", 3, False),
            row("disclosure", 1, True, fell_back=True), row("disclosure", 2, False)]  # fmt: skip
    summary = summarise(rows, ["none", "disclosure"])
    assert summary["items"] == 2  # item 3 has no disclosure row yet
    none, disclosure = summary["rows"]
    assert none["accuracy"] == 1.0 and disclosure["accuracy"] == 0.5 and disclosure["utility"] == 0.5
    assert disclosure["fell_back"] == 0.5 and disclosure["leaked"] == 0 and disclosure["inserted"] == 8
    # paired with raw on the same items: item 1 right under both, item 2 lost: -0.5, the interval spans [-1, 0]
    assert disclosure["vs_raw"] == {"diff": -0.5, "ci_low": -1.0, "ci_high": 0.0}
    assert none["vs_raw"] == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    cfg = {"date": "d", "machine": "m", "load": "1", "edge": "e", "cloud": "c", "config": "default",
           "detectors": "patterns", "split": "test", "items_asked": 50, "max_tokens": 256, "seed": 0}  # fmt: skip
    assert "| disclosure | 2 | 0.5 | 0.5 | -0.500 [-1.000, +0.000] | 0.5 | 0.5 | 0 / 8 | 2 | 2.0 |" in to_markdown(
        {"settings": cfg, "summary": summary}, "tandem bench privacy-utility"
    )
