"""Token-level KD: the KL term exactly on a toy batch; then real targets from SmolLM2 (llama.cpp) for SmolLM2
(transformers) line up with the student's answer tokens, resume, and feed a few training steps."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tandemlm.errors import ValidationError
from tandemlm.train.lora import IGNORE, Example, LoraSettings, answer_positions, kd_loss

QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 3?"]
ANSWERS = ["Paris is the capital of France.", "Red is a primary colour.", "2 + 3 = 5."]


def test_kd_loss_is_kl_from_the_renormalised_teacher_top_k_to_the_student() -> None:
    torch = pytest.importorskip("torch")
    logits = torch.tensor([[[0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 2.0, 0.0]]])
    example = Example(ids=[7, 8, 9], labels=[IGNORE, 3, 0], teacher=[[(3, -0.1), (2, -2.5)], [(0, -0.2), (1, -1.9)]])
    assert answer_positions(example) == [0, 1]
    got = float(kd_loss(torch, logits, [example]))
    want = 0.0
    for row, top in zip([0, 1], example.teacher or [], strict=True):
        q = torch.log_softmax(logits[0, row], -1)
        z = math.log(sum(math.exp(v) for _, v in top))
        for token, v in top:
            p = math.exp(v - z)
            want += p * (math.log(p) - float(q[token])) / 2
    assert got == pytest.approx(want, rel=1e-5) and got > 0
    # a student that is the teacher's renormalised top-k pays nothing
    same = torch.full((1, 2, 4), -30.0)
    same[0, 0, 3], same[0, 0, 2] = -0.1, -2.5
    same[0, 1, 0], same[0, 1, 1] = -0.2, -1.9
    exact = Example(ids=[1, 2, 3], labels=[IGNORE, 3, 0], teacher=example.teacher)
    assert float(kd_loss(torch, torch.cat([same, same[:, :1]], 1), [exact])) == pytest.approx(0.0, abs=1e-6)


def test_kd_weight_is_checked() -> None:
    with pytest.raises(ValidationError, match="kd_weight"):
        LoraSettings(kd_weight=1.5)
    assert "kd_weight" not in LoraSettings().identity()  # runs from before KD resume unchanged
    assert LoraSettings(kd_weight=0.5).identity()["kd_weight"] == 0.5


@pytest.fixture(scope="module")
def kd(tmp_path_factory: pytest.TempPathFactory, smollm2_path: str) -> dict[str, Any]:
    from click.testing import CliRunner

    from tandemlm.cli import main

    root = tmp_path_factory.mktemp("kd")
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps({"id": i, "messages": [{"role": "user", "content": q},
                                                               {"role": "assistant", "content": a}]}) + "\n"
                            for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))))  # fmt: skip
    config = root / "c.yaml"
    config.write_text(f"models:\n  cloud: {{engine: llamacpp, source: 'path:{smollm2_path}', location: cloud, "
                      "n_ctx: 1024, n_threads: 1}\npipelines:\n  cloud: {model: cloud}\n")  # fmt: skip
    out = root / "kd.jsonl"
    args = ["train", "kd", str(data), "--out", str(out), "--base", "catalog:smollm2-135m", "--top-k", "4",
            "-c", str(config)]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    return {"root": root, "data": data, "out": out, "first": first.output, "again": again.output}


@pytest.mark.slow
def test_targets_line_up_with_the_students_answer_tokens_and_resume(kd: dict[str, Any]) -> None:
    from transformers import AutoTokenizer

    from tandemlm.models.hf import hf_directory
    from tandemlm.train.lora import chat_encoder, read_examples

    rows = read_examples(kd["out"])
    assert [r.messages for r in rows] == [r.messages for r in read_examples(kd["data"])]
    assert [r.raw["id"] for r in rows] == [0, 1, 2]  # the rest of each line is kept
    encode = chat_encoder("catalog:smollm2-135m", AutoTokenizer.from_pretrained(str(hf_directory(
        "catalog:smollm2-135m"))), 1024)  # fmt: skip
    for messages, top, _ in rows:
        example = encode(messages)
        assert top is not None and len(top) == len(answer_positions(example)) and all(len(t) == 4 for t in top)
        answer = [label for label in example.labels if label != IGNORE]
        # the teacher is the student's own weights: its top-1 is the answer's token most of the time
        hits = sum(t[0][0] == token for t, token in zip(top, answer, strict=True))
        assert hits >= 0.5 * len(answer), (hits, len(answer))
    assert "3 scored" in kd["first"] and "not loaded" not in kd["first"]
    assert "0 scored, 3 from an earlier run" in kd["again"] and "(the teacher was not loaded)" in kd["again"]


@pytest.mark.slow
def test_the_kl_to_its_own_weights_is_the_top_k_floor_and_shifted_targets_cost_nats(kd: dict[str, Any]) -> None:
    import torch

    from tandemlm.models.hf import load_causal_lm
    from tandemlm.train.lora import chat_encoder, read_examples

    torch.set_num_threads(1)
    model, tokenizer = load_causal_lm("catalog:smollm2-135m")
    encode = chat_encoder("catalog:smollm2-135m", tokenizer, 1024)
    aligned, shifted, floor = [], [], []
    for messages, top, _ in read_examples(kd["out"]):
        example = encode(messages)
        example.teacher = top
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([example.ids])).logits.float()
        aligned.append(float(kd_loss(torch, logits, [example])))
        late = Example(example.ids, example.labels, (top or [])[1:] + (top or [])[:1])  # one token off
        shifted.append(float(kd_loss(torch, logits, [late])))
        # the least KL a student can have on renormalised top-k targets: -log of the mass it gives them
        q = torch.softmax(logits[0, answer_positions(example)], -1)
        ids = torch.tensor([[t for t, _ in row] for row in top or []])
        floor.append(float(-torch.log(q.gather(-1, ids).sum(-1)).mean()))
    # the teacher is these weights (llama.cpp's Q4 kernels, torch's dequantised copy): KL close to that floor
    assert all(a < f + 0.1 for a, f in zip(aligned, floor, strict=True)), (aligned, floor)
    assert min(shifted) > max(aligned) + 1.0, (aligned, shifted)


@pytest.mark.slow
def test_a_run_with_kd_trains_and_records_its_weight(kd: dict[str, Any]) -> None:
    import torch

    from tandemlm.train.lora import train_lora

    torch.set_num_threads(1)
    settings = LoraSettings(steps=2, rank=4, lr=1e-3, seed=0, kd_weight=0.5)
    report = train_lora("catalog:smollm2-135m", kd["out"], kd["root"] / "adapter", settings, gguf=False, bar=False)
    assert report.steps == 2 and all(math.isfinite(x) and x > 0 for x in report.losses)
    assert report.settings["kd_weight"] == 0.5
    with pytest.raises(ValidationError, match="teacher_top"):
        train_lora("catalog:smollm2-135m", kd["data"], kd["root"] / "none", settings, gguf=False, bar=False)


def test_a_teacher_of_another_vocabulary_is_refused() -> None:
    from tandemlm.train.kd import check_vocabulary

    class Teacher:
        name = "other"

        def tokenize(self, text: str) -> list[int]:
            return [1, 2, 3]

    class Tokenizer:
        def __call__(self, text: str, add_special_tokens: bool = False) -> Any:
            return type("Ids", (), {"input_ids": [4, 5]})()

    with pytest.raises(ValidationError, match="vocabulary"):
        check_vocabulary(Teacher(), Tokenizer())  # type: ignore[arg-type]


def test_targets_of_another_length_are_refused(tmp_path: Path) -> None:
    from tandemlm.train.lora import _with_teacher

    example = Example(ids=[1, 2, 3], labels=[IGNORE, 2, 3])
    with pytest.raises(ValidationError, match="2 answer tokens"):
        _with_teacher(example, [[(1, -0.1)]], tmp_path / "d.jsonl", 1)


def test_an_interrupted_run_resumes_from_its_partial_file_skipping_a_cut_line(tmp_path: Path) -> None:
    from tandemlm.train.kd import _done

    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    partial = tmp_path / "kd.jsonl.partial"
    partial.write_text(json.dumps({"messages": messages, "teacher_top": [[[5, -0.1]]]}) + "\n"
                       '{"messages": [{"role": "user", "content": "q2"}], "teacher_to')  # fmt: skip
    found = _done(tmp_path / "kd.jsonl", partial)
    assert list(found.values()) == [[[(5, -0.1)]]]
