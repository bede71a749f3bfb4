"""Outcome tables (RouterBench's idea): each model's answer to each benchmark item, computed once and stored.

One JSONL row per item: the answer, whether it is right, tokens, latency, cost, and the confidence
features cascades and routers use (collab/confidence.py). Routers and cascades are then evaluated
offline in milliseconds. Tables are resumable: rows already in the file are kept and skipped.

    tandem bench outcomes --dataset gsm8k --model edge --limit 120
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tandemlm.bench.datasets import LETTERS, Item, chat_prompt, split_of
from tandemlm.bench.scoring import correct
from tandemlm.collab.confidence import AnswerKey, agreement, examples_pass, option_probs, p_yes, token_confidence
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
    request = Request.of(chat_prompt(item), max_tokens=MAX_TOKENS[item.kind])
    start = time.perf_counter()
    completion = model.generate(request)
    latency = time.perf_counter() - start
    fields: dict[str, Any] = {}
    if item.kind == "choice":
        probs = option_probs(model, request, LETTERS)
        answer = max(probs, key=lambda k: probs[k])
        is_right, fields["correct_gen"] = answer == item.answer, correct(item, completion.text)
        if features:
            logp = math.log(max(probs[answer], 1e-300))
            entropy = -sum(p * math.log(p) for p in probs.values() if p > 0)
            fields.update(mean_logprob=logp, min_logprob=logp, mean_entropy=entropy)
    else:
        answer, is_right = completion.text, correct(item, completion.text)
        if features:
            conf = token_confidence(model, request, answer)
            fields.update(mean_logprob=conf.mean_logprob, min_logprob=conf.min_logprob, mean_entropy=conf.mean_entropy)
            if item.kind == "code":
                fields["examples"] = examples_pass(item.prompt, answer)
    if features:
        fields["p_yes"] = p_yes(model, request, answer)
    if samples:
        fields["agreement"] = agreement(model, request, answer, samples=samples, key=KEYS[item.kind])
    return Outcome(
        item.id, split_of(item.id), answer, is_right, completion.usage.prompt_tokens,
        completion.usage.completion_tokens, round(latency, 4), completion.cost_usd, **fields,
    )  # fmt: skip


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
    progress: bool = True,
) -> Iterator[Outcome]:
    """Measure every item not yet in the table at `path`, appending each row as soon as it is done."""
    done = {row.id for row in read_table(path)}
    todo = [item for item in items if item.id not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for item in tqdm(todo, desc=f"{model.name} {path.parent.name}", disable=not progress, unit="item"):
            row = measure(model, item, samples=samples, features=features)
            out.write(json.dumps(asdict(row)) + "\n")
            out.flush()
            yield row
