"""Token-level distillation targets: the teacher's top-k next-token log-probabilities at every answer token of
a chat JSONL, stored offline in each line as `teacher_top`, for `train/lora.py`'s KL term (`kd_weight`).

Each example is tokenized exactly as training will tokenize it (`lora.chat_encoder`, the student's tokenizer
and chat template), and the teacher scores those very ids in one batched pass (`logprobs_after`), so the
targets line up with the student's answer tokens by construction. That needs one vocabulary: the teacher
must tokenize a probe text to the student's ids (the two Qwen2.5 sizes do), else the run is refused. The cost
is one prompt evaluation of the teacher per example, no generation: seconds on this CPU, where an answer costs
a minute. Examples an earlier run already scored (in its output or its partial file) are not scored again, so
an interrupted run resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tandemlm.errors import ValidationError, missing_extra
from tandemlm.models.base import LanguageModel
from tandemlm.train.lora import TeacherTop, answer_positions, chat_encoder, read_examples, teacher_top

PROBE = "Natalia sold 48 clips in April, then half as many in May: 48 / 2 = 24. Größe, 東京, naïve → ok."


def check_vocabulary(teacher: LanguageModel, tokenizer: Any) -> None:
    """Refuse a teacher whose token ids are not the student's (KD targets would name other tokens)."""
    student_ids = list(tokenizer(PROBE, add_special_tokens=False).input_ids)
    if teacher.tokenize(PROBE) != student_ids:
        raise ValidationError(
            f"the teacher {teacher.name!r} does not share the student's vocabulary (a probe text tokenizes "
            "differently), so its top-k cannot be targets for the student; pick a teacher of the same family"
        )


def teacher_targets(
    teacher: Callable[[], LanguageModel],
    base: str,
    data: str | Path,
    out: str | Path,
    *,
    top_k: int = 8,
    max_length: int = 1024,
    progress: Callable[[int, int], object] | None = None,
) -> dict[str, Any]:
    """Write `out`: the lines of `data`, each with `teacher_top` (per answer token, the teacher's `top_k`
    [token id, logprob] pairs). `teacher` loads the teacher model, called only when an example has no targets
    from an earlier run (a finished file is reread without loading a 1.5B model). Returns counts: examples,
    scored now, kept from an earlier run, answer tokens, and whether the teacher was loaded."""
    if top_k < 1:
        raise ValidationError(f"top_k must be at least 1, got {top_k}")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise missing_extra("transformers", "hf") from None
    from tandemlm.models.hf import hf_directory

    tokenizer = AutoTokenizer.from_pretrained(str(hf_directory(base)))
    model: LanguageModel | None = None
    encode = chat_encoder(base, tokenizer, max_length)
    rows = read_examples(data)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    done = _done(out, partial)
    counts: dict[str, Any] = {"examples": len(rows), "scored": 0, "kept": 0, "answer_tokens": 0, "top_k": top_k}
    out.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("w", encoding="utf-8") as f:
        for n, row in enumerate(rows, 1):
            key = _key(row.messages)
            example = encode(row.messages)
            positions = answer_positions(example)
            top = done.get(key)
            if top is not None and len(top) == len(positions):
                counts["kept"] += 1
            else:
                if not positions:
                    raise ValidationError(f"{data}:{n}: no answer tokens within max_length {max_length}")
                if model is None:
                    model = teacher()
                    check_vocabulary(model, tokenizer)
                dists = model.logprobs_after(example.ids, positions, top_k=top_k, role="kd-teacher")
                top = [[(t, round(v, 5)) for t, v in d.top(top_k)] for d in dists]
                counts["scored"] += 1
            counts["answer_tokens"] += len(top)
            f.write(json.dumps({**row.raw, "teacher_top": top}, ensure_ascii=False) + "\n")
            f.flush()
            if progress:
                progress(n, len(rows))
    partial.replace(out)
    counts["teacher_loaded"] = model is not None
    return counts


def _key(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, sort_keys=True, ensure_ascii=False)


def _done(*paths: Path) -> dict[str, TeacherTop]:
    """teacher_top by example from an earlier run's output or its partial file, to resume (a line cut short by
    an interruption is skipped)."""
    found: dict[str, TeacherTop] = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                top = teacher_top(row["teacher_top"], str(path))
            except (ValueError, KeyError, TypeError):
                continue
            if top is not None:
                found[_key(row["messages"])] = top
    return found
