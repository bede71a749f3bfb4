"""Supervised LoRA tuning on CPU: chat examples in, a peft adapter and a GGUF adapter for llama.cpp out.

The data is a JSONL file, one `{"messages": [...]}` per line. Each conversation is rendered with the model's
chat template turn by turn, as the engines render prompts, so the tuned model sees at inference exactly the
token layout it was trained on; the loss is on the assistant turns only (their text and the end-of-turn
token that stops generation). The run is reproducible: a fixed seed sets the LoRA initialisation and the
order of the examples (a permutation per epoch), dropout defaults to 0, and a checkpoint holds the
optimizer state and the step, so `resume` continues the same run rather than starting a similar one.

A line may also carry `teacher_top` (written by `train/kd.py`): the teacher's top-k next-token log-probabilities
at each answer token. With `kd_weight` w > 0 the loss is (1 - w) * cross-entropy + w * KL(teacher || student)
on the teacher's top-k, renormalised (token-level distillation; Hinton et al., MiniLLM's forward-KL baseline).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tandemlm.errors import ModelSourceError, ValidationError, missing_extra

CHECKPOINTS = "checkpoints"
STATE = "trainer_state.pt"
RUN = "run.json"
GGUF_NAME = "adapter.gguf"
IGNORE = -100  # the label torch's cross-entropy skips
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """What a run trains and how. Everything but `steps` and `checkpoint_every` must match to resume a run."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    lr: float = 2e-4
    steps: int = 100
    batch_size: int = 1
    max_length: int = 1024
    seed: int = 0
    checkpoint_every: int = 50
    kd_weight: float = 0.0  # the share of the loss that is KL to the teacher's top-k, where a line has it

    def __post_init__(self) -> None:
        for name in ("rank", "steps", "batch_size", "max_length", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValidationError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1 or self.lr <= 0 or self.alpha <= 0:
            raise ValidationError("dropout must be in [0, 1), lr and alpha positive")
        if not 0 <= self.kd_weight <= 1:
            raise ValidationError(f"kd_weight must be in [0, 1], got {self.kd_weight}")

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint's."""
        out = asdict(self)
        out.pop("steps"), out.pop("checkpoint_every")
        if not self.kd_weight:
            out.pop("kd_weight")  # runs from before token-level KD resume as they were
        out["targets"] = list(self.targets)
        return out


TeacherTop = list[list[tuple[int, float]]]  # per answer token: the teacher's top-k (token id, logprob)


@dataclass
class Example:
    """One tokenized conversation: ids, labels (IGNORE where no loss is taken), and optionally the teacher's
    top-k at each labelled position."""

    ids: list[int]
    labels: list[int]
    teacher: TeacherTop | None = None

    @property
    def trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass
class RunReport:
    """What `run.json` records about a run."""

    base: str
    data: str
    data_sha256: str
    examples: int
    steps: int
    losses: list[float] = field(default_factory=list)
    tokens: int = 0  # tokens read (prompt and answer) over all steps
    trained_tokens: int = 0  # tokens with a loss
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    resumed_from: int | None = None
    adapter: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class Line(NamedTuple):
    """One line of a training JSONL: its messages, its teacher targets where it has them, and the whole object
    (for writers that add to it, such as `train/kd.py`)."""

    messages: list[dict[str, str]]
    teacher: TeacherTop | None
    raw: dict[str, Any]


def read_conversations(path: str | Path) -> list[list[dict[str, str]]]:
    """The `messages` of each line of a JSONL file; each must hold at least one assistant turn."""
    return [line.messages for line in read_examples(path)]


def read_examples(path: str | Path) -> list[Line]:
    """Each line of a JSONL file: its `messages` (at least one assistant turn), and its `teacher_top` where it
    has one."""
    out: list[Line] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ModelSourceError(f"could not read the training data {path}: {err}") from err
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            messages = raw["messages"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValidationError(f"{path}:{n}: expected a JSON object with 'messages': {err}") from err
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages
        ):
            raise ValidationError(f"{path}:{n}: messages must be a list of {{'role', 'content'}} strings")
        if not any(m["role"] == "assistant" for m in messages):
            raise ValidationError(f"{path}:{n}: no assistant message to learn from")
        out.append(Line([{"role": m["role"], "content": m["content"]} for m in messages],
                         teacher_top(raw.get("teacher_top"), f"{path}:{n}"), raw))  # fmt: skip
    if not out:
        raise ValidationError(f"{path} holds no examples")
    return out


def teacher_top(value: Any, where: str) -> TeacherTop | None:
    """A line's `teacher_top` as (token id, logprob) lists, or None when it has none."""
    try:
        return None if value is None else [[(int(t), float(v)) for t, v in row] for row in value]
    except (TypeError, ValueError) as err:
        raise ValidationError(f"{where}: teacher_top must be lists of [token id, logprob]: {err}") from err


def encode_chat(tokenizer: Any, messages: Sequence[dict[str, str]], *, template: str | None, ends: set[int],
                max_length: int) -> Example:  # fmt: skip
    """Token ids and labels of one conversation. Text is rendered up to each assistant turn with the generation
    prompt (what the engine feeds), then with the turn (what the model should write): the difference is the
    answer, labelled up to and including its end token; the rest is context. Without a template (base models)
    the turns are joined by blank lines, as the engines do, and the answer ends with the EOS token."""
    ids: list[int] = []
    labels: list[int] = []
    covered = ""

    def add(text: str, learn: bool) -> None:
        piece = list(tokenizer(text, add_special_tokens=False).input_ids) if text else []
        if learn:
            cut = next((i + 1 for i, t in enumerate(piece) if t in ends), len(piece))
            labels.extend(piece[:cut] + [IGNORE] * (len(piece) - cut))
        else:
            labels.extend([IGNORE] * len(piece))
        ids.extend(piece)

    if template is None:
        from tandemlm.models.hf import adds_bos

        if adds_bos(tokenizer):
            ids.append(int(tokenizer.bos_token_id))
            labels.append(IGNORE)
        for i, m in enumerate(messages):
            if i:
                add("\n\n", learn=False)
            add(m["content"], learn=m["role"] == "assistant")
            if m["role"] == "assistant" and tokenizer.eos_token_id is not None:
                ids.append(int(tokenizer.eos_token_id))
                labels.append(int(tokenizer.eos_token_id))
        return Example(ids[:max_length], labels[:max_length])
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], template, generation=True)
        full = _render(tokenizer, messages[: i + 1], template, generation=False)
        if not prompt.startswith(covered) or not full.startswith(prompt):
            raise ValidationError("the chat template does not render conversations prefix by prefix")
        add(prompt[len(covered) :], learn=False)
        add(full[len(prompt) :], learn=True)
        covered = full
    return Example(ids[:max_length], labels[:max_length])


def chat_encoder(base: str, tokenizer: Any, max_length: int) -> Callable[[Sequence[dict[str, str]]], Example]:
    """`encode_chat` with the base model's template and end tokens: how training, and the teacher targets
    made for it (`train/kd.py`), tokenize an example."""
    from tandemlm.models.hf import END_TEXTS

    template = None if _plain(base) else tokenizer.chat_template
    texts = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    ends = {i for i, t in enumerate(texts) if t in END_TEXTS} | (
        {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    )
    return lambda messages: encode_chat(tokenizer, messages, template=template, ends=ends, max_length=max_length)


def answer_positions(example: Example) -> list[int]:
    """The positions whose logits predict a labelled token (the label at i is predicted at i - 1)."""
    return [i - 1 for i, label in enumerate(example.labels) if label != IGNORE and i > 0]


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], template: str, *, generation: bool) -> str:
    return str(
        tokenizer.apply_chat_template(
            list(messages), chat_template=template, tokenize=False, add_generation_prompt=generation
        )
    )


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """The example indices of every step: epochs of seeded permutations, cut into batches (so step s is the
    same batch whether the run was resumed or not)."""
    rng = np.random.default_rng(seed)
    need = steps * batch_size
    order: list[int] = []
    while len(order) < need:
        order += rng.permutation(n).tolist()
    return [order[s * batch_size : (s + 1) * batch_size] for s in range(steps)]


def train_lora(
    base: str,
    data: str | Path,
    out: str | Path,
    settings: LoraSettings,
    *,
    resume: bool = False,
    gguf: bool = True,
    command: str = "",
    bar: bool = True,
    log: Callable[[str], object] | None = None,
) -> RunReport:
    """Tune a LoRA adapter of `base` (catalog:NAME, a GGUF or an HF directory) on the chat examples in `data`.
    Writes into `out`: the peft adapter (adapter_config.json, adapter_model.safetensors), `run.json`,
    checkpoints every `checkpoint_every` steps, and with `gguf` the llama.cpp adapter `adapter.gguf`."""
    try:
        import torch
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file
    except ImportError:
        raise missing_extra("torch, transformers and peft", "hf") from None
    from tqdm import tqdm

    from tandemlm.models.hf import hf_directory, load_causal_lm
    from tandemlm.models.hf import quiet_peft as _quiet

    say = log or (lambda _: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_examples(data)
    torch.manual_seed(settings.seed)
    model, tokenizer = load_causal_lm(base)
    encode = chat_encoder(base, tokenizer, settings.max_length)
    examples = [_with_teacher(encode(row.messages), row.teacher, data, n) for n, row in enumerate(rows, 1)]
    if settings.kd_weight > 0 and not any(e.teacher for e in examples):
        raise ValidationError(f"kd_weight {settings.kd_weight} needs teacher_top in {data} (tandem train kd)")
    if not any(e.trained for e in examples):
        raise ValidationError(f"{data}: no answer tokens left to learn from (max_length {settings.max_length})")
    options: dict[str, Any] = {"r": settings.rank, "lora_alpha": settings.alpha, "lora_dropout": settings.dropout}
    lora = LoraConfig(**options, target_modules=list(settings.targets), bias="none", task_type="CAUSAL_LM")
    with _quiet():
        peft_model = get_peft_model(model, lora)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    report = RunReport(
        base=base, data=str(data), data_sha256=_sha256(Path(data)), examples=len(examples), steps=0,
        settings={**settings.identity(), "steps": settings.steps, "checkpoint_every": settings.checkpoint_every},
        command=command,
    )  # fmt: skip
    if resume and (last := _latest_checkpoint(out)) is not None:
        state = torch.load(last / STATE, weights_only=True)
        if state["identity"] != json.loads(json.dumps(settings.identity())) or state["data_sha256"] != (
            report.data_sha256
        ):
            raise ValidationError(f"{last} was trained with other settings or data; resume with the same ones")
        set_peft_model_state_dict(peft_model, load_file(str(last / "adapter_model.safetensors")))
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        report.steps, report.losses = int(state["step"]), list(state["losses"])
        report.tokens, report.trained_tokens = int(state["tokens"]), int(state["trained_tokens"])
        report.seconds, report.resumed_from = float(state["seconds"]), int(state["step"])
        say(f"resumed from {last} (step {report.steps})")
    order = batch_order(len(examples), settings.steps, settings.batch_size, settings.seed)
    peft_model.train()
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    progress = tqdm(total=settings.steps, initial=report.steps, desc="lora", unit="step", disable=not bar)
    try:
        for step in range(report.steps, settings.steps):
            began = time.perf_counter()
            batch = [examples[i] for i in order[step]]
            ids, labels, mask = _collate(torch, batch, pad)
            result = peft_model(input_ids=ids, attention_mask=mask, labels=labels)
            loss = result.loss
            if settings.kd_weight > 0 and any(e.teacher for e in batch):
                loss = (1 - settings.kd_weight) * loss + settings.kd_weight * kd_loss(torch, result.logits, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            report.seconds += time.perf_counter() - began
            report.steps = step + 1
            report.losses.append(round(float(loss.item()), 6))
            report.tokens += int(mask.sum().item())
            report.trained_tokens += sum(e.trained for e in batch)
            progress.update(1)
            progress.set_postfix(loss=f"{report.losses[-1]:.3f}", tok_s=f"{report.tokens_per_s:.0f}")
            if report.steps % settings.checkpoint_every == 0 and report.steps < settings.steps:
                _checkpoint(torch, out, peft_model, optimizer, report, settings)
    finally:
        progress.close()
    with _quiet():
        peft_model.save_pretrained(str(out))
    card = out / "README.md"  # peft's model card template: nothing the run does not say better in run.json
    if card.is_file() and card.read_text(encoding="utf-8").startswith("---"):
        card.unlink()
    _checkpoint(torch, out, peft_model, optimizer, report, settings)
    files = ["adapter_model.safetensors", "adapter_config.json"]
    if gguf:
        from tandemlm.train.lora_gguf import export_gguf_adapter

        export_gguf_adapter(out, hf_directory(base), out / GGUF_NAME)
        files.append(GGUF_NAME)
    report.adapter = {name: {"bytes": (out / name).stat().st_size, "sha256": _sha256(out / name)} for name in files}
    (out / RUN).write_text(json.dumps(_report_json(report), indent=2) + "\n")
    say(f"{report.steps} steps, loss {report.losses[0]:.3f} -> {report.losses[-1]:.3f}, {report.tokens} tokens "
        f"in {report.seconds:.1f} s ({report.tokens_per_s:.0f} tokens/s); adapter in {out}")  # fmt: skip
    return report


def _plain(base: str) -> bool:
    """Whether the base model is a catalog model without a chat template (messages joined by blank lines)."""
    from tandemlm.models.catalog import CATALOG

    scheme, _, rest = base.partition(":")
    return scheme in ("catalog", "pypi") and rest in CATALOG and not CATALOG[rest].chat_template


def _with_teacher(example: Example, teacher: TeacherTop | None, data: str | Path, line: int) -> Example:
    if teacher is not None and len(teacher) != len(answer_positions(example)):
        raise ValidationError(
            f"{data}:{line}: teacher_top has {len(teacher)} entries for {len(answer_positions(example))} answer "
            "tokens; make it with the same base model and max_length (tandem train kd)"
        )
    example.teacher = teacher
    return example


def kd_loss(torch: Any, logits: Any, batch: Sequence[Example]) -> Any:
    """Mean over the answer tokens that have teacher targets of KL(p || q) on the teacher's top-k: p the
    teacher's top-k renormalised, q the student's full-vocabulary probabilities at those tokens."""
    terms = []
    for row, example in enumerate(batch):
        if not example.teacher:
            continue
        ids = torch.tensor([[t for t, _ in top] for top in example.teacher], dtype=torch.long)
        p = torch.softmax(torch.tensor([[v for _, v in top] for top in example.teacher], dtype=logits.dtype), -1)
        q = torch.log_softmax(logits[row, answer_positions(example)], -1).gather(-1, ids)
        terms.append((p * (torch.log(p.clamp_min(1e-12)) - q)).sum(-1))
    return torch.cat(terms).mean()


def _collate(torch: Any, batch: list[Example], pad: int) -> tuple[Any, Any, Any]:
    """Right-padded tensors of a batch: ids, labels (IGNORE on padding) and the attention mask."""
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, : len(e.ids)] = torch.tensor(e.labels)
        mask[row, : len(e.ids)] = 1
    return ids, labels, mask


def _checkpoint(torch: Any, out: Path, model: Any, optimizer: Any, report: RunReport, settings: LoraSettings) -> None:
    """The adapter and everything needed to continue: optimizer state, step, losses, RNG, written then renamed."""
    from tandemlm.models.hf import quiet_peft as _quiet

    target = out / CHECKPOINTS / f"step-{report.steps:06d}"
    partial = target.with_name(target.name + ".partial")
    with _quiet():
        model.save_pretrained(str(partial))
    state = {
        "step": report.steps, "losses": report.losses, "tokens": report.tokens,
        "trained_tokens": report.trained_tokens, "seconds": report.seconds, "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(), "identity": settings.identity(), "data_sha256": report.data_sha256,
    }  # fmt: skip
    torch.save(state, partial / STATE)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    partial.replace(target)


def _latest_checkpoint(out: Path) -> Path | None:
    found = sorted(p for p in (out / CHECKPOINTS).glob("step-*") if not p.name.endswith(".partial"))
    return found[-1] if found else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _report_json(report: RunReport) -> dict[str, Any]:
    out = asdict(report)
    out["tokens_per_s"] = round(report.tokens_per_s, 1)
    out["seconds"] = round(report.seconds, 2)
    out["loss_first"], out["loss_last"] = report.losses[0], report.losses[-1]
    out["perplexity_last"] = round(math.exp(min(report.losses[-1], 50.0)), 3)
    return out
