"""Selective distillation: which train items are kept, exactly, on scripted outcome rows; the examples file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tandemlm.bench.datasets import Item, chat_prompt
from tandemlm.bench.outcomes import Outcome
from tandemlm.errors import ValidationError
from tandemlm.train.distill import (
    SelectionSettings,
    chosen,
    clean_reference,
    select,
    summary,
    write_examples,
)


def row(item_id: str, correct: bool, conf: float | None = None, answer: str = "") -> Outcome:
    """An outcome row whose answer has geometric-mean token probability `conf` (None: not measured)."""
    logprob = None if conf is None else math.log(conf)
    return Outcome(item_id, "train", answer or f"answer to {item_id}", correct, 10, 20, 1.0, 0.0, mean_logprob=logprob)


ITEMS = [Item(f"gsm8k/{i}", f"question {i}", str(i), "math") for i in range(7)]
# teacher: right on 0-4 (sure on 0-3, unsure on 4), wrong on 5, no answer for 6
TEACHER = {
    "gsm8k/0": row("gsm8k/0", True), "gsm8k/1": row("gsm8k/1", True, 0.95), "gsm8k/2": row("gsm8k/2", True, 0.95),
    "gsm8k/3": row("gsm8k/3", True, 0.99), "gsm8k/4": row("gsm8k/4", True, 0.5), "gsm8k/5": row("gsm8k/5", False),
}  # fmt: skip
# student: wrong on 0, right and unsure on 1, right and sure on 2, not measured on 3; right and sure on 4, 5
STUDENT = {
    "gsm8k/0": row("gsm8k/0", False, 0.97), "gsm8k/1": row("gsm8k/1", True, 0.8),
    "gsm8k/2": row("gsm8k/2", True, 0.92), "gsm8k/4": row("gsm8k/4", True, 0.99), "gsm8k/5": row("gsm8k/5", True, 0.99),
}  # fmt: skip
REFS = {f"gsm8k/{i}": f"worked {i}\nThe answer is {i}." for i in range(7)}


def test_keeps_where_the_teacher_is_right_and_sure_and_the_student_wrong_or_unsure() -> None:
    choices = select(ITEMS, TEACHER, STUDENT, SelectionSettings(student_sure=0.9, teacher_sure=0.9))
    assert [(c.id[6:], c.selected, c.reason) for c in choices] == [
        ("0", True, "student wrong"),  # a confident wrong student is still wrong
        ("1", True, "student unsure"),
        ("2", False, "student right and sure"),
        ("3", True, "student not measured"),
        ("4", False, "teacher unsure"),
        ("5", False, "teacher wrong"),
        ("6", False, "no teacher answer"),
    ]
    assert [c.target for c in choices][:2] == ["answer to gsm8k/0", "answer to gsm8k/1"]
    assert all(c.origin == "teacher" for c in choices[:6]) and choices[6].target is None
    assert choices[0].prompt == chat_prompt(ITEMS[0])  # the benchmark's own prompt, so eval sees what was trained


def test_thresholds_move_the_verdicts() -> None:
    lenient = select(ITEMS, TEACHER, STUDENT, SelectionSettings(student_sure=0.95, teacher_sure=0.0))
    assert [c.id[6:] for c in lenient if c.selected] == ["0", "1", "2", "3"]  # 0.92 < 0.95: item 2 now unsure
    # a teacher row without confidence passes any teacher_sure (tables built with --no-features)
    strict = select(ITEMS, TEACHER, STUDENT, SelectionSettings(student_sure=0.5, teacher_sure=1.0))
    assert [c.id[6:] for c in strict if c.selected] == ["0"]


def test_all_takes_every_teacher_answer_and_the_share_kept_is_reported() -> None:
    choices = select(ITEMS, TEACHER, STUDENT, SelectionSettings(teacher_sure=0.9))
    assert [c.id[6:] for c in chosen(choices, "all")] == ["0", "1", "2", "3", "4", "5"]  # wrong teacher included
    s = summary(choices, "selected")
    assert (s["items"], s["with_target"], s["kept"], s["share_kept"]) == (7, 6, 3, 0.5)
    assert s["reasons"]["teacher wrong"] == 1 and s["origins"] == {"teacher": 3}
    assert summary(choices, "all")["share_kept"] == 1.0


def test_references_stand_in_where_the_teacher_fails() -> None:
    mixed = select(ITEMS, TEACHER, STUDENT, SelectionSettings(teacher_sure=0.9), source="teacher+reference",
                   references=REFS)  # fmt: skip
    assert [(c.id[6:], c.origin, c.selected) for c in mixed] == [
        ("0", "teacher", True), ("1", "teacher", True), ("2", "teacher", False), ("3", "teacher", True),
        ("4", "reference", False), ("5", "reference", False), ("6", "reference", True),
    ]  # fmt: skip
    assert mixed[6].target == REFS["gsm8k/6"]
    only = select(ITEMS, TEACHER, STUDENT, source="reference", references=REFS)
    assert {c.origin for c in only} == {"reference"} and [c.id[6:] for c in only if c.selected] == ["0", "1", "3", "6"]
    with pytest.raises(ValidationError, match="reference"):
        select(ITEMS, TEACHER, STUDENT, source="reference")


def test_reference_solutions_take_the_prompted_answer_format() -> None:
    raw = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18"
    assert clean_reference(raw) == "Janet sells 16 - 3 - 4 = 9 duck eggs.\nShe makes 9 * 2 = $18.\nThe answer is 18."


def test_examples_are_the_chat_jsonl_lora_reads(tmp_path: Path) -> None:
    choices = chosen(select(ITEMS, TEACHER, STUDENT), "selected")
    path = tmp_path / "d.jsonl"
    assert write_examples(choices, path) == len(choices)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["messages"] == [
        {"role": "user", "content": chat_prompt(ITEMS[0])},
        {"role": "assistant", "content": "answer to gsm8k/0"},
    ]
    with pytest.raises(ValidationError, match="no examples"):
        write_examples([], tmp_path / "e.jsonl")


@pytest.mark.slow
def test_train_distill_tunes_smollm2_on_the_teacher_table(tmp_path: Path, dataset: Any, smollm2_path: str) -> None:
    """End to end on the committed GSM8K tables: 4 train items, 2 LoRA steps, a GGUF adapter out."""
    from click.testing import CliRunner

    from tandemlm.cli import main

    dataset("gsm8k")  # skips unless cached: the pool is read from it
    outcomes = Path(__file__).parents[2] / "bench" / "outcomes"
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "distill", "--out", str(out), "--outcomes", str(outcomes), "--train-items", "4", "--select", "all",
        "--base", "catalog:smollm2-135m", "--steps", "2", "--max-length", "256", "--threads", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    picked = json.loads((out / "selection.json").read_text())
    assert (picked["items"], picked["kept"], picked["share_kept"]) == (4, 4, 1.0)  # the table has all 4 answers
    assert len((out / "distill.jsonl").read_text().splitlines()) == 4
    run = json.loads((out / "run.json").read_text())
    assert run["steps"] == 2 and run["examples"] == 4 and run["trained_tokens"] > 0
    assert (out / "adapter.gguf").stat().st_size > 0
    assert "kept 4 of 4" in result.output
