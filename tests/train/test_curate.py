"""SLM-guided curation: scores exactly from scripted logits, the kept fraction and range, the score cache."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tandemlm.errors import ValidationError
from tandemlm.models.scripted import DEFAULT_VOCAB, ScriptedModel
from tandemlm.train.curate import curate, keep_indices, score_examples

V = len(DEFAULT_VOCAB)


def favouring(char: str, boost: float) -> ScriptedModel:
    """A model whose every next-token distribution gives `char` logit `boost` and every other token 0."""

    def logits(tokens: Sequence[int]) -> np.ndarray:
        out = np.zeros(V)
        out[ord(char)] = boost
        return out

    return ScriptedModel(logits=logits)


def expected_ppl(answer: str, char: str, boost: float) -> float:
    z = math.exp(boost) + V - 1
    logps = [boost - math.log(z) if c == char else -math.log(z) for c in answer]
    return math.exp(-sum(logps) / len(logps))


def example(answer: str, question: str = "q?") -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


ANSWERS = ["aaaa", "aaab", "aabb", "abbb", "bbbb", "aaaa b"]


def test_perplexity_is_the_students_on_the_answer_alone() -> None:
    scores = score_examples([example(a) for a in ANSWERS], favouring("a", 4.0))
    assert scores == pytest.approx([expected_ppl(a, "a", 4.0) for a in ANSWERS])
    # the prompt does not count: the same answer after another question scores the same
    assert score_examples([example("aaab", "another question")], favouring("a", 4.0)) == pytest.approx([scores[1]])


def test_the_gap_is_student_loss_minus_teacher_loss() -> None:
    student, teacher = favouring("a", 4.0), favouring("b", 4.0)
    gaps = score_examples([example(a) for a in ANSWERS[:5]], student, by="gap", teacher=teacher)
    # mean logprob of the teacher minus the student's: the log perplexities' difference
    want = [math.log(expected_ppl(a, "a", 4.0)) - math.log(expected_ppl(a, "b", 4.0)) for a in ANSWERS[:5]]
    assert gaps == pytest.approx(want)
    assert gaps[0] < 0 < gaps[4]  # "bbbb": easy for the teacher, hard for the student
    with pytest.raises(ValidationError, match="teacher"):
        score_examples([example("a")], student, by="gap")


def test_keep_takes_the_low_middle_or_high_part_of_the_ranking() -> None:
    scores = [5.0, 1.0, 4.0, 2.0, 6.0, 3.0]  # ranking: 1, 3, 5, 2, 0, 4
    assert keep_indices(scores, 0.5, "low") == [1, 3, 5]
    assert keep_indices(scores, 0.5, "mid") == [2, 3, 5]  # ranks 1..3 of 0..5: scores 2, 3, 4
    assert keep_indices(scores, 0.5, "high") == [0, 2, 4]
    assert keep_indices(scores, 1 / 3, "mid") == [2, 5]  # round(2.0) = 2 kept: ranks 2 and 3
    assert keep_indices(scores, 0.01, "high") == [4]  # at least one
    assert keep_indices([1.0, 1.0, 1.0, 1.0], 0.5, "low") == [0, 1]  # ties by position
    with pytest.raises(ValidationError):
        keep_indices(scores, 0.0)
    with pytest.raises(ValidationError):
        keep_indices(scores, 0.5, "top")  # type: ignore[arg-type]


def test_curate_writes_the_kept_lines_and_caches_the_scores(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"id": i, "messages": example(a)}) + "\n" for i, a in enumerate(ANSWERS)))
    out = tmp_path / "kept.jsonl"
    model = favouring("a", 4.0)
    report = curate(data, out, model, fraction=0.5, order="high")
    kept = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert kept == [2, 3, 4]  # the three highest perplexities: most "b"s
    assert (report["examples"], report["kept"], report["share_kept"]) == (6, 3, 0.5)
    assert report["score_kept"][0] > report["score_all"][0]
    calls = len(model.requests)
    # a rerun reads every score from the cache: the model is not asked again (a model with no logits would fail)
    again = curate(data, tmp_path / "kept.jsonl", ScriptedModel(), fraction=0.5, order="low")
    assert again["kept"] == 3 and len(model.requests) == calls
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [0, 1, 5]
