"""SLM-guided data curation: score a training set with a small model and keep a fraction of it.

Two scores, both per example on its last assistant turn given the conversation before it (the chat-rendered
prompt, as the engines and `train/lora.py` render it):

- `perplexity` (Ankner et al. 2024, "Perplexed by Perplexity"): the edge model's perplexity of the answer,
  exp(-mean token logprob). Ankner et al. found that keeping the middle or high range of a small reference
  model's perplexities trains better than keeping the lowest (which is mostly text the model already knows).
- `gap` (SALT-style): the student's loss minus the teacher's, mean token logprob of the teacher minus that of
  the student: high where the teacher finds the answer easy and the student does not, which is where a
  student has the most to learn that is learnable.

Any `LanguageModel` that gives token logprobs works (the llama.cpp engines do, without torch), through
`collab.confidence.token_confidence`, one batched pass per example. Scores are cached in a JSONL beside the
output, keyed by a hash of the example, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from tandemlm.collab.confidence import token_confidence
from tandemlm.errors import ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.types import Message, Request, Role

By = Literal["perplexity", "gap"]
Order = Literal["low", "mid", "high"]
BYS: tuple[By, ...] = ("perplexity", "gap")
ORDERS: tuple[Order, ...] = ("low", "mid", "high")


def example_key(messages: Sequence[dict[str, str]]) -> str:
    """A stable key of one example (its messages), for the score cache."""
    return hashlib.sha256(json.dumps(list(messages), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def answer_logprob(model: LanguageModel, messages: Sequence[dict[str, str]]) -> float:
    """Mean token logprob of the last assistant turn given the messages before it, under `model`."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0:
        raise ValidationError("an example needs a prompt and an assistant turn after it")
    request = Request(messages=tuple(Message(cast(Role, m["role"]), m["content"]) for m in messages[:last]))
    return token_confidence(model, request, messages[last]["content"]).mean_logprob


def score_examples(
    conversations: Sequence[Sequence[dict[str, str]]],
    student: LanguageModel,
    *,
    by: By = "perplexity",
    teacher: LanguageModel | None = None,
    cache: Path | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> list[float]:
    """One score per example: the student's perplexity of the answer, or the loss gap (student loss minus
    teacher loss, in nats per token). Scores already in `cache` are reused; new ones are appended to it."""
    if by not in BYS:
        raise ValidationError(f"by must be one of {', '.join(BYS)}, got {by!r}")
    if by == "gap" and teacher is None:
        raise ValidationError("the loss gap needs a teacher model")
    known: dict[str, float] = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("by") == by:
                    known[row["key"]] = float(row["score"])
    out: list[float] = []
    for n, messages in enumerate(conversations, 1):
        key = example_key(messages)
        if key not in known:
            s = answer_logprob(student, messages)
            known[key] = math.exp(-s) if by == "perplexity" else answer_logprob(teacher, messages) - s  # type: ignore[arg-type]
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                with cache.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "by": by, "score": known[key]}) + "\n")
        out.append(known[key])
        if progress is not None:
            progress(n, len(conversations))
    return out


def keep_indices(scores: Sequence[float], fraction: float, order: Order = "mid") -> list[int]:
    """The indices of the examples kept: round(fraction * n) of them (at least one), the lowest scores, the
    middle of the ranking or the highest, per `order`; ties broken by position; returned in the data's order."""
    if not 0.0 < fraction <= 1.0:
        raise ValidationError(f"the kept fraction must be in (0, 1], got {fraction}")
    if order not in ORDERS:
        raise ValidationError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    n = len(scores)
    if n == 0:
        raise ValidationError("no examples to curate")
    k = min(n, max(1, round(fraction * n)))
    ranked = sorted(range(n), key=lambda i: (scores[i], i))
    start = {"low": 0, "mid": (n - k) // 2, "high": n - k}[order]
    return sorted(ranked[start : start + k])


def curate(
    data: str | Path,
    out: str | Path,
    student: LanguageModel,
    *,
    by: By = "perplexity",
    fraction: float = 0.5,
    order: Order = "mid",
    teacher: LanguageModel | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> dict[str, Any]:
    """Score the chat JSONL `data`, write the kept lines (unchanged) to `out`, and return what was kept: the
    counts, the kept share and the score range of the kept and of all examples."""
    from tandemlm.train.lora import read_conversations

    src = Path(data)
    lines = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    conversations = read_conversations(src)
    target = Path(out)
    cache = target.with_name(target.name + ".scores.jsonl")
    scores = score_examples(conversations, student, by=by, teacher=teacher, cache=cache, progress=progress)
    kept = keep_indices(scores, fraction, order)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(lines[i] + "\n" for i in kept), encoding="utf-8")
    chosen = [scores[i] for i in kept]
    return {
        "data": str(src), "out": str(target), "by": by, "order": order, "fraction": fraction,
        "examples": len(scores), "kept": len(kept), "share_kept": round(len(kept) / len(scores), 4),
        "score_all": [round(min(scores), 4), round(max(scores), 4)],
        "score_kept": [round(min(chosen), 4), round(max(chosen), 4)], "scores": [round(s, 6) for s in scores],
    }  # fmt: skip
