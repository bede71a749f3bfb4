"""Outcome tables: one row per item with correctness and the confidence features, resumable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tandemlm.bench.datasets import Item, chat_prompt, sample, split_of
from tandemlm.bench.outcomes import build_table, measure, read_table
from tandemlm.models.scripted import DEFAULT_VOCAB, ScriptedModel
from tandemlm.types import Request


def logits_for(char: str, value: float) -> np.ndarray:
    out = np.zeros(len(DEFAULT_VOCAB))
    out[ord(char)] = value
    return out


def test_multiple_choice_is_scored_by_the_likelihood_of_the_letters() -> None:
    item = Item("mmlu/x", "Which?\n\nA. one\nB. two\nC. three\nD. four", "B", "choice")
    model = ScriptedModel("A", logits=lambda tokens: logits_for("B", math.log(6.0)))
    row = measure(model, item)
    assert (row.answer, row.correct, row.correct_gen) == ("B", True, False)  # likelihood says B, generation said A
    assert row.mean_logprob == pytest.approx(math.log(6 / 9))  # B: 6 against 1 + 1 + 1 for A, C, D
    probs = np.array([1, 6, 1, 1]) / 9
    assert row.mean_entropy == pytest.approx(float(-(probs * np.log(probs)).sum()))
    assert row.split == split_of("mmlu/x")
    assert model.requests[0].messages[0].content == chat_prompt(item)


def test_math_rows_carry_correctness_tokens_and_self_consistency() -> None:
    item = Item("gsm8k/x", "What is 6 * 7?", "42", "math")

    def reply(request: Request) -> str:
        return {None: "The answer is 42", 1: "42", 2: "41"}[request.params.seed]

    model = ScriptedModel(reply, logits=lambda tokens: np.zeros(len(DEFAULT_VOCAB)))
    row = measure(model, item, samples=2)
    assert row.correct and row.answer == "The answer is 42"
    assert row.agreement == 0.5
    assert row.tokens_out == len("The answer is 42")  # one token per character in the scripted vocabulary
    assert row.mean_logprob == pytest.approx(-math.log(len(DEFAULT_VOCAB)))  # uniform logits
    assert row.p_yes == pytest.approx(0.5)
    assert row.examples is None and row.correct_gen is None


def test_tables_resume_and_never_measure_an_item_twice(tmp_path: Path) -> None:
    items = [Item(f"gsm8k/{i}", f"q{i}", str(i), "math") for i in range(4)]
    model = ScriptedModel(lambda r: r.messages[0].content.split()[0][1:], logits=lambda t: np.zeros(256))
    path = tmp_path / "gsm8k" / "edge.jsonl"
    assert len(list(build_table(model, items[:2], path, progress=False))) == 2
    seen = len(model.requests)
    new = list(build_table(model, items, path, progress=False))
    assert [r.id for r in new] == ["gsm8k/2", "gsm8k/3"]
    assert len(model.requests) - seen == 2  # one answer per new item; the first two are not asked again
    rows = read_table(path)
    assert [r.id for r in rows] == [f"gsm8k/{i}" for i in range(4)]
    assert all(r.correct for r in rows)
    assert json.loads(path.read_text().splitlines()[0])["id"] == "gsm8k/0"


def test_splits_are_fixed_halves_and_samples_are_seeded() -> None:
    ids = [f"gsm8k/{i}" for i in range(2000)]
    train = sum(split_of(i) == "train" for i in ids)
    assert 900 < train < 1100
    assert split_of("gsm8k/7") == split_of("gsm8k/7")
    items = [Item(i, "", "", "math") for i in ids[:50]]
    assert sample(items, 10, seed=0) == sample(items, 10, seed=0) == sample(items, 20, seed=0)[:10]
    assert sample(items, 10, seed=0) != sample(items, 10, seed=1)


def test_without_features_only_the_answer_is_measured() -> None:
    item = Item("gsm8k/x", "What is 6 * 7?", "42", "math")
    model = ScriptedModel("The answer is 42")  # no logits scripted: asking for any would fail
    row = measure(model, item, features=False)
    assert row.correct and row.answer == "The answer is 42"
    assert (row.mean_logprob, row.min_logprob, row.mean_entropy, row.p_yes, row.agreement) == (None,) * 5
