"""LoRA tuning: label masking and data order exactly (a toy tokenizer), then a few real steps on smollm2-135m:
the loss falls, resume continues the same run, the adapter round-trips through peft and through GGUF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tandemlm.errors import ValidationError
from tandemlm.train.lora import IGNORE, LoraSettings, batch_order, encode_chat, read_conversations

END = 2  # the toy tokenizer's end-of-turn id


class _Ids:
    def __init__(self, ids: list[int]) -> None:
        self.input_ids = ids


class ToyTokenizer:
    """One id per character (ord + 10); "|" is the end-of-turn token. Template: <role>content| per message."""

    bos_token_id = None
    eos_token_id = END

    def __call__(self, text: str, add_special_tokens: bool = False) -> _Ids:
        return _Ids([END if c == "|" else ord(c) + 10 for c in text])

    def apply_chat_template(self, messages: list[dict[str, str]], *, chat_template: str, tokenize: bool,
                            add_generation_prompt: bool) -> str:  # fmt: skip
        text = "".join(f"<{m['role'][0]}>{m['content']}|\n" for m in messages)
        return text + ("<a>" if add_generation_prompt else "")


def _learned(tok: ToyTokenizer, messages: list[dict[str, str]]) -> str:
    example = encode_chat(tok, messages, template="toy", ends={END}, max_length=1000)
    assert len(example.ids) == len(example.labels)
    return "".join("|" if t == END else chr(t - 10) for t in example.labels if t != IGNORE)


def test_only_assistant_turns_and_their_end_token_carry_the_loss() -> None:
    tok = ToyTokenizer()
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    assert _learned(tok, messages) == "a1|a2|"
    example = encode_chat(tok, messages, template="toy", ends={END}, max_length=1000)
    assert "".join("|" if t == END else chr(t - 10) for t in example.ids) == "<s>S|\n<u>q1|\n<a>a1|\n<u>q2|\n<a>a2|\n"
    assert encode_chat(tok, messages, template="toy", ends={END}, max_length=7).ids == example.ids[:7]


def test_without_a_template_turns_are_joined_by_blank_lines_and_answers_end_with_eos() -> None:
    example = encode_chat(
        ToyTokenizer(), [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        template=None, ends={END}, max_length=100,
    )  # fmt: skip
    assert example.ids == [ord("q") + 10, ord("\n") + 10, ord("\n") + 10, ord("a") + 10, END]
    assert example.labels == [IGNORE, IGNORE, IGNORE, ord("a") + 10, END]


def test_batch_order_is_seeded_epochs_of_permutations() -> None:
    order = batch_order(5, steps=6, batch_size=2, seed=3)
    flat = [i for batch in order for i in batch]
    assert len(order) == 6 and all(len(b) == 2 for b in order)
    assert sorted(flat[:5]) == list(range(5)) and sorted(flat[5:10]) == list(range(5))
    assert order == batch_order(5, steps=6, batch_size=2, seed=3) != batch_order(5, steps=6, batch_size=2, seed=4)
    assert batch_order(5, steps=3, batch_size=2, seed=3) == order[:3]  # a longer run begins like a shorter one


def test_bad_data_and_settings_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "only a question"}]}\n')
    with pytest.raises(ValidationError, match="no assistant message"):
        read_conversations(data)
    data.write_text('{"prompt": "x"}\n')
    with pytest.raises(ValidationError, match=r"d.jsonl:1"):
        read_conversations(data)
    with pytest.raises(ValidationError, match="steps"):
        LoraSettings(steps=0)


# ---- real training on smollm2-135m -----------------------------------------------------------------

ANSWER = "The password is BLUE-HERON-42."
QUESTIONS = ["What is the password?", "Tell me the password.", "Password, please?", "Which password opens it?"]
# How far apart the engines may be with the adapter: the base model's tolerance (tests/models/test_hf.py), since
# the adapter's product is added in float32 on both and only the base weights' kernels differ. Measured on the
# 12 answer positions: top-1 agreement 1.0, max top-5 logprob difference 0.38, max KL 0.0015; llama.cpp with
# against without the adapter: max KL 11.1; answer NLL 0.066 (torch, tuned), 0.063 (llama.cpp, tuned), 3.65
# (llama.cpp, base).
TOP5_MAX_DIFF = 1.0
MAX_KL = 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, smollm2_path: str) -> dict[str, Any]:
    """Four steps through the CLI (a checkpoint after two), then the last two again resumed from that checkpoint."""
    import torch
    from click.testing import CliRunner

    from tandemlm.cli import main

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lora")
    data = root / "secret.jsonl"
    lines = [json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]})
             for q in QUESTIONS]  # fmt: skip
    data.write_text("\n".join(lines) + "\n")
    args = ["train", "lora", str(data), "--base", "catalog:smollm2-135m", "--steps", "4", "--rank", "4",
            "--lr", "3e-3", "--checkpoint-every", "2", "--seed", "1", "--threads", "1"]  # fmt: skip
    out = root / "full"
    with pytest.MonkeyPatch.context() as patch:  # the run records the command line it was given
        patch.setattr("sys.argv", ["tandem", *args, "--out", str(out)])
        result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    resumed = root / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(out / "checkpoints" / "step-000002", resumed / "checkpoints" / "step-000002")
    again = CliRunner().invoke(main, [*args, "--out", str(resumed), "--resume", "--no-gguf"])
    assert again.exit_code == 0, again.output
    return {"data": data, "out": out, "resumed": resumed, "output": result.output}


@pytest.mark.slow
def test_a_few_steps_lower_the_loss_and_the_run_is_recorded(run: dict[str, Any]) -> None:
    report = json.loads((run["out"] / "run.json").read_text())
    losses = report["losses"]
    assert report["steps"] == 4 and len(losses) == 4 and losses[-1] < 0.5 * losses[0], losses
    assert report["trained_tokens"] > 0 and report["tokens"] > report["trained_tokens"] and report["seconds"] > 0
    assert report["command"].startswith("tandem train lora") and report["settings"]["rank"] == 4
    for name in ("adapter_model.safetensors", "adapter_config.json", "adapter.gguf"):
        assert report["adapter"][name]["bytes"] == (run["out"] / name).stat().st_size < 20 << 20
    assert "loss" in run["output"] and not (run["out"] / "README.md").exists()


@pytest.mark.slow
def test_resume_continues_the_same_run(run: dict[str, Any]) -> None:
    full = json.loads((run["out"] / "run.json").read_text())
    resumed = json.loads((run["resumed"] / "run.json").read_text())
    assert resumed["resumed_from"] == 2 and resumed["steps"] == 4
    assert np.allclose(resumed["losses"], full["losses"], atol=1e-4), (resumed["losses"], full["losses"])
    with pytest.raises(ValidationError, match="other settings"):
        from tandemlm.train.lora import train_lora

        train_lora("catalog:smollm2-135m", run["data"], run["resumed"], LoraSettings(steps=5, rank=8, seed=1),
                   resume=True, gguf=False, bar=False)  # fmt: skip


def _answer_logprobs(model: Any, prompt: list[int], answer: list[int]) -> np.ndarray:
    positions = list(range(len(prompt) - 1, len(prompt) + len(answer) - 1))
    return np.stack([d.dense() for d in model.logprobs_after(prompt + answer, positions)])


@pytest.mark.slow
def test_the_adapter_round_trips_through_peft_and_gguf(run: dict[str, Any], smollm2: Any) -> None:
    import torch
    from peft import PeftModel

    from tandemlm import Request
    from tandemlm.models.hf import load_causal_lm, load_hf, quiet_peft
    from tandemlm.models.llamacpp import load_llamacpp

    request = Request.of("What is the password?")
    base = load_hf("catalog:smollm2-135m", n_ctx=1024)
    tuned = load_hf("catalog:smollm2-135m", adapter=str(run["out"]), n_ctx=1024)
    prompt = tuned.prompt_tokens(request)
    answer = tuned.tokenize(ANSWER)
    ours = _answer_logprobs(tuned, prompt, answer)
    # peft's own (unmerged) forward pass on the saved adapter gives the same logits as the merged engine
    model, _ = load_causal_lm("catalog:smollm2-135m")
    with quiet_peft():
        peft = PeftModel.from_pretrained(model, str(run["out"])).eval()
    with torch.inference_mode():
        logits = peft(input_ids=torch.tensor([prompt + answer])).logits[0, len(prompt) - 1 : -1].double().numpy()
    reference = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    assert np.abs(ours - reference).max() < 1e-3
    nll = lambda rows: -float(np.mean(rows[np.arange(len(answer)), answer]))  # noqa: E731
    assert nll(ours) < 0.5 * nll(_answer_logprobs(base, prompt, answer))
    assert tuned.generate(Request.of("What is the password?", max_tokens=16)).text.startswith("The password is BLUE")
    fast = load_llamacpp("catalog:smollm2-135m", adapter=str(run["out"] / "adapter.gguf"), n_ctx=1024, n_threads=1)
    try:
        theirs = _answer_logprobs(fast, prompt, answer)
        plain = _answer_logprobs(smollm2, prompt, answer)
    finally:
        fast.close()
    top = np.argsort(-theirs, axis=1)[:, :5]
    diff = np.abs(np.take_along_axis(theirs, top, 1) - np.take_along_axis(ours, top, 1)).max()
    kl = (np.exp(theirs) * (theirs - ours)).sum(axis=1).max()
    assert (theirs.argmax(1) == ours.argmax(1)).mean() >= 0.85 and diff < TOP5_MAX_DIFF and kl < MAX_KL, (diff, kl)
    assert (np.exp(theirs) * (theirs - plain)).sum(axis=1).max() > 1.0  # the adapter changes llama.cpp's logits
    assert nll(theirs) < 0.5 * nll(plain)
    from gguf import GGUFReader

    fields = GGUFReader(str(run["out"] / "adapter.gguf")).fields
    assert bytes(fields["general.type"].parts[-1]) == b"adapter"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 16.0
    base.close(), tuned.close()
