"""Outcome tables: one row per item with correctness and the confidence features, resumable."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tandemlm.bench.datasets import Item, chat_prompt, sample, split_of
from tandemlm.bench.outcomes import build_table, measure, read_table
from tandemlm.models.scripted import DEFAULT_VOCAB, ScriptedModel
from tandemlm.types import Completion, Request


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


class BatchingModel(ScriptedModel):
    """A scripted model that answers `generate_many` in batches, as llama.cpp does, and records their sizes."""

    batch_slots = 8

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []

    def _generate_many(self, requests: list[Request]) -> list[tuple[Completion, float]]:
        self.batches.append(len(requests))
        return [(self._generate(r), 0.01) for r in requests]


def test_batched_tables_hold_the_rows_of_one_item_at_a_time(tmp_path: Path) -> None:
    items = [Item(f"gsm8k/{i}", f"q{i}", str(i), "math") for i in range(5)]

    def reply(request: Request) -> str:  # item i: greedy i, sample 1 agrees only for even i, sample 2 never
        i = int(request.messages[0].content.split()[0][1:])
        return {None: str(i), 1: str(i if i % 2 == 0 else i + 10), 2: "99"}[request.params.seed]

    one = ScriptedModel(reply, logits=lambda t: np.zeros(256))
    alone = list(build_table(one, items, tmp_path / "a.jsonl", samples=2, progress=False))
    batching = BatchingModel(reply, logits=lambda t: np.zeros(256))
    together = list(build_table(batching, items, tmp_path / "b.jsonl", samples=2, batch=3, progress=False))
    assert batching.batches == [3, 6, 2, 4]  # answers of 3 items, their 6 samples, then the last 2 items
    assert [replace(r, latency_s=0) for r in together] == [replace(r, latency_s=0) for r in alone]
    assert [r.agreement for r in together] == [0.5, 0.0, 0.5, 0.0, 0.5]
    assert all(r.latency_s == 0.01 for r in together)  # each answer's own seconds, from its batch
