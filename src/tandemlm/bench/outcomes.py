"""Outcome tables (RouterBench's idea): each model's answer to each benchmark item, computed once and stored.

One JSONL row per item: the answer, whether it is right, tokens, latency, cost, and the confidence
features cascades and routers use (collab/confidence.py). Routers and cascades are then evaluated
offline in milliseconds. Tables are resumable: rows already in the file are kept and skipped.

    tandem bench outcomes --dataset gsm8k --model edge --limit 120
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tandemlm.bench.datasets import LETTERS, Item, chat_prompt, split_of
from tandemlm.bench.scoring import correct
from tandemlm.collab.confidence import AnswerKey, agreements, examples_pass, option_probs, p_yes, token_confidence
from tandemlm.models.base import LanguageModel
from tandemlm.types import Request

MAX_TOKENS = {"math": 320, "code": 384, "choice": 8}
KEYS: dict[str, AnswerKey] = {"math": "number", "code": "text", "choice": "letter"}


@dataclass(frozen=True)
class Outcome:
    """One model's result on one item. `correct` is by likelihood for multiple choice (`correct_gen`: by the
    generated letter), by the final number for math, by the unit tests for code."""

    id: str
    split: str
    answer: str
    correct: bool
    tokens_in: int
    tokens_out: int
    latency_s: float
    cost_usd: float
    mean_logprob: float | None = None
    min_logprob: float | None = None
    mean_entropy: float | None = None
    p_yes: float | None = None
    agreement: float | None = None
    examples: bool | None = None
    correct_gen: bool | None = None


def measure(model: LanguageModel, item: Item, *, samples: int = 0, features: bool = True) -> Outcome:
    """Answer one item greedily; with `features`, read the confidence features from the same model (a cascade
    reads them from the model that answers first, so the cloud's table can go without)."""
    return measure_many(model, [item], samples=samples, features=features)[0]


def measure_many(model: LanguageModel, items: list[Item], *, samples: int = 0, features: bool = True) -> list[Outcome]:
    """`measure` for several items of one kind. The answers, then the sampled answers, go to the model in one
    `generate_many` each, so an engine that batches decodes them together; `latency_s` is each answer's own."""
    kinds = {item.kind for item in items}
    if len(kinds) != 1:
        raise ValueError(f"measure_many takes items of one kind, got {sorted(kinds)}")
    requests = [Request.of(chat_prompt(item), max_tokens=MAX_TOKENS[item.kind]) for item in items]
    completions = model.generate_many(requests)
    answers: list[str] = []
    extra: list[dict[str, Any]] = []
    for item, request, completion in zip(items, requests, completions, strict=True):
        fields: dict[str, Any] = {}
        if item.kind == "choice":
            probs = option_probs(model, request, LETTERS)
            answer = max(probs, key=lambda k: probs[k])
            fields["correct"], fields["correct_gen"] = answer == item.answer, correct(item, completion.text)
            if features:
                logp = math.log(max(probs[answer], 1e-300))
                entropy = -sum(p * math.log(p) for p in probs.values() if p > 0)
                fields.update(mean_logprob=logp, min_logprob=logp, mean_entropy=entropy)
        else:
            answer = completion.text
            fields["correct"] = correct(item, answer)
            if features:
                conf = token_confidence(model, request, answer)
                fields.update(
                    mean_logprob=conf.mean_logprob, min_logprob=conf.min_logprob, mean_entropy=conf.mean_entropy
                )
                if item.kind == "code":
                    fields["examples"] = examples_pass(item.prompt, answer)
        if features:
            fields["p_yes"] = p_yes(model, request, answer)
        answers.append(answer)
        extra.append(fields)
    if samples:
        shares = agreements(model, requests, answers, samples=samples, key=KEYS[items[0].kind])
        for fields, share in zip(extra, shares, strict=True):
            fields["agreement"] = share
    return [
        Outcome(
            item.id, split_of(item.id), answer, tokens_in=completion.usage.prompt_tokens,
            tokens_out=completion.usage.completion_tokens, latency_s=round(completion.trace[-1].latency_s, 4),
            cost_usd=completion.cost_usd, **fields,
        )
        for item, answer, completion, fields in zip(items, answers, completions, extra, strict=True)
    ]  # fmt: skip


def read_table(path: Path) -> list[Outcome]:
    """The rows of an outcome table (empty when the file does not exist)."""
    if not path.is_file():
        return []
    return [Outcome(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_table(
    model: LanguageModel,
    items: list[Item],
    path: Path,
    *,
    samples: int = 0,
    features: bool = True,
    batch: int = 1,
    progress: bool = True,
) -> Iterator[Outcome]:
    """Measure every item not yet in the table at `path`, `batch` items at a time (decoded together where the
    engine batches), appending each row as soon as its batch is done."""
    done = {row.id for row in read_table(path)}
    todo = [item for item in items if item.id not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), desc=f"{model.name} {path.parent.name}", disable=not progress, unit="item")
    with path.open("a", encoding="utf-8") as out, bar:
        for start in range(0, len(todo), batch):
            for row in measure_many(model, todo[start : start + batch], samples=samples, features=features):
                out.write(json.dumps(asdict(row)) + "\n")
                out.flush()
                bar.update()
                yield row
