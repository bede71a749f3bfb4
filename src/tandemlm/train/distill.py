"""Selective distillation from the cloud model into the edge model (LLKD-style, sequence-level).

The teacher's answers to train items come from outcome tables (bench/outcomes/DATASET/cloud.jsonl, or a model
run on the fly and appended to its table), so nothing is generated twice. An item is kept where the teacher is
right (and sure, where its confidence was measured) and the student is wrong or unsure: what the student
already does well teaches it nothing, and a wrong teacher answer teaches it an error. The kept items become
chat examples (question -> teacher's answer) that `train/lora.py` tunes the student on.

GSM8K's rows hold a reference worked solution; `source="reference"` uses it as the target instead of the
teacher, and `"teacher+reference"` takes the teacher's answer where the teacher is right and the reference
elsewhere (the reference is right by definition), so items the teacher failed still teach the student.
Token-level KD adds the teacher's top-k next-token logprobs at each answer token: `tandem train kd` scores the
examples written here in one teacher pass each (no generation) and `tandem train lora --kd-weight` learns from
them (`train/kd.py`; `tandem bench distill --variants ...,student_kd` compares it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tandemlm.bench.datasets import Item, chat_prompt, member_bytes
from tandemlm.bench.outcomes import Outcome
from tandemlm.errors import ValidationError

Source = Literal["teacher", "reference", "teacher+reference"]
SOURCES: tuple[Source, ...] = ("teacher", "reference", "teacher+reference")
SELECTIONS = ("all", "selected")
CALC = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: 16-3-4 = <<16-3-4=9>>9


@dataclass(frozen=True)
class SelectionSettings:
    """When an item is worth distilling. Confidences are the geometric-mean token probability of an answer,
    exp(mean token logprob), as the cascades read it (bench/route.py's cascade:logprob).

    student_sure: a right student answer at or above this is already learned (dropped); below it the student
        is unsure and the item is kept. 1.0 keeps every item the student got right as well.
    teacher_sure: a right teacher answer below this is dropped (0: any right answer counts; tables built
        with --no-features hold no teacher confidence, which then passes).
    """

    student_sure: float = 0.9
    teacher_sure: float = 0.0

    def __post_init__(self) -> None:
        for name in ("student_sure", "teacher_sure"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValidationError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class Choice:
    """One train item's verdict: its target text (None: nothing to learn from), where the target comes from,
    whether selection keeps it, and why."""

    id: str
    prompt: str
    target: str | None
    origin: str  # "teacher", "reference" or "" when there is no target
    selected: bool
    reason: str


def confidence(outcome: Outcome | None) -> float | None:
    """exp(mean token logprob) of an outcome's answer, or None when the table did not measure it."""
    if outcome is None or outcome.mean_logprob is None:
        return None
    return math.exp(outcome.mean_logprob)


def clean_reference(solution: str) -> str:
    """A GSM8K reference solution in the answer format the benchmark prompt asks for: calculator annotations
    dropped and the closing '#### N' line written as 'The answer is N.'."""
    body, sep, final = solution.rpartition("####")
    if not sep:
        return CALC.sub("", solution).strip()
    return f"{CALC.sub('', body).strip()}\nThe answer is {final.strip()}."


def reference_solutions(*, fetch: bool = True) -> dict[str, str]:
    """The reference worked solution of every GSM8K item, by item id (the file `datasets.load` reads)."""
    rows = [json.loads(line) for line in member_bytes("gsm8k", fetch=fetch).splitlines() if line.strip()]
    return {f"gsm8k/{i}": clean_reference(r["answer"]) for i, r in enumerate(rows)}


def select(
    items: Sequence[Item],
    teacher: Mapping[str, Outcome],
    student: Mapping[str, Outcome],
    settings: SelectionSettings | None = None,
    *,
    source: Source = "teacher",
    references: Mapping[str, str] | None = None,
) -> list[Choice]:
    """Each item's target and verdict. The target is the teacher's answer (right or wrong: plain
    sequence-level KD takes every teacher output), or the reference per `source`. Selection keeps an item when
    its target is right (a right and sure teacher answer, or a reference) and the student is wrong, unsure, or
    was not measured (nothing says it has learned the item)."""
    if source not in SOURCES:
        raise ValidationError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source != "teacher" and references is None:
        raise ValidationError(f"source {source!r} needs the reference solutions")
    settings = settings or SelectionSettings()
    refs = references or {}
    out: list[Choice] = []
    for item in items:
        prompt = chat_prompt(item)
        t = teacher.get(item.id)
        t_conf = confidence(t)
        t_good = t is not None and t.correct and (t_conf is None or t_conf >= settings.teacher_sure)
        if source == "reference" or (source == "teacher+reference" and not t_good):
            target, origin = refs.get(item.id), "reference"
            right, why_not = target is not None, "no reference solution"
        else:
            target, origin = (t.answer, "teacher") if t is not None else (None, "")
            right = t_good
            why_not = "no teacher answer" if t is None else "teacher wrong" if not t.correct else "teacher unsure"
        if target is None:
            out.append(Choice(item.id, prompt, None, "", False, why_not))
            continue
        if not right:
            out.append(Choice(item.id, prompt, target, origin, False, why_not))
            continue
        s = student.get(item.id)
        s_conf = confidence(s)
        if s is None:
            keep, reason = True, "student not measured"
        elif not s.correct:
            keep, reason = True, "student wrong"
        elif s_conf is not None and s_conf < settings.student_sure:
            keep, reason = True, "student unsure"
        else:
            keep, reason = False, "student right and sure"
        out.append(Choice(item.id, prompt, target, origin, keep, reason))
    return out


def chosen(choices: Sequence[Choice], which: str) -> list[Choice]:
    """The choices a run trains on: every one with a target (`all`) or only those selection keeps."""
    if which not in SELECTIONS:
        raise ValidationError(f"select must be one of {', '.join(SELECTIONS)}, got {which!r}")
    return [c for c in choices if c.target is not None and (which == "all" or c.selected)]


def write_examples(choices: Sequence[Choice], path: str | Path) -> int:
    """Write the chat JSONL `train/lora.py` reads (question -> target), one line per choice; returns the count."""
    if not choices:
        raise ValidationError("no examples to write: selection kept no item with a target")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for c in choices:
            if c.target is None:
                raise ValidationError(f"{c.id} has no target to learn from")
            messages = [{"role": "user", "content": c.prompt}, {"role": "assistant", "content": c.target}]
            f.write(json.dumps({"id": c.id, "origin": c.origin, "messages": messages}, ensure_ascii=False) + "\n")
    return len(choices)


def summary(choices: Sequence[Choice], which: str) -> dict[str, Any]:
    """What selection kept: counts by reason and origin, and the share of the items with a target it kept."""
    with_target = [c for c in choices if c.target is not None]
    kept = chosen(choices, which)
    reasons: dict[str, int] = {}
    for c in choices:
        reasons[c.reason] = reasons.get(c.reason, 0) + 1
    origins: dict[str, int] = {}
    for c in kept:
        origins[c.origin] = origins.get(c.origin, 0) + 1
    return {
        "select": which, "items": len(choices), "with_target": len(with_target), "kept": len(kept),
        "share_kept": round(len(kept) / len(with_target), 4) if with_target else 0.0,
        "reasons": reasons, "origins": origins,
    }  # fmt: skip


def write_selection(choices: Sequence[Choice], which: str, path: str | Path, settings: SelectionSettings,
                    source: str) -> dict[str, Any]:  # fmt: skip
    """The selection's summary and every item's verdict, as JSON beside the examples."""
    out = {**summary(choices, which), "source": source, "settings": asdict(settings),
           "choices": [{"id": c.id, "origin": c.origin, "selected": c.selected, "reason": c.reason}
                       for c in choices]}  # fmt: skip
    Path(path).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


def train_pool(dataset: str, n_items: int | None, seed: int = 0) -> list[Item]:
    """The first `n_items` train-split items in the seeded order of `datasets.sample` (the outcome tables'
    order, so the items the tables cover come first)."""
    from tandemlm.bench.datasets import load, sample, split_of

    items = [item for item in sample(load(dataset), None, seed) if split_of(item.id) == "train"]
    return items if n_items is None else items[:n_items]


def distill(
    items: Sequence[Item],
    teacher: Mapping[str, Outcome],
    student: Mapping[str, Outcome],
    base: str,
    out: str | Path,
    lora: Any,
    *,
    which: str = "selected",
    source: Source = "teacher",
    settings: SelectionSettings | None = None,
    resume: bool = False,
    gguf: bool = True,
    command: str = "",
    bar: bool = True,
    log: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Select, write `out/distill.jsonl` and `out/selection.json`, and LoRA-tune `base` on the examples
    (`lora`: a `train.lora.LoraSettings`). Returns the selection summary and the training run's report."""
    from tandemlm.train.lora import train_lora

    settings = settings or SelectionSettings()
    refs = reference_solutions() if source != "teacher" else None
    choices = select(items, teacher, student, settings, source=source, references=refs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "distill.jsonl"
    write_examples(chosen(choices, which), data)
    picked = write_selection(choices, which, out / "selection.json", settings, source)
    report = train_lora(base, data, out, lora, resume=resume, gguf=gguf, command=command, bar=bar, log=log)
    return picked, report
