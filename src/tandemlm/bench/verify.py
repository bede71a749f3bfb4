"""`tandem bench verify`: balanced accuracy of the edge verifier on claims generated from real documents.

No public fact-verification set ships on PyPI as data (FEVER's, SummaC's and the fact-checking packages hold
code, not claims), so the pairs are **generated**: each document is the statement part of a GSM8K test problem
(real text, with people, objects and numbers; the question sentence left out). Supported claims are a sentence
copied from the document (`extract`) or a sentence rewritten without changing what it says (`paraphrase`:
numbers as words or digits, synonyms); unsupported ones are a sentence with one number changed (`number`), a
negation inserted (`negation`), its person swapped for another document's (`entity`), or a clause from another
document added (`addition`). Each document gives two supported and two unsupported claims (the kinds rotate).
The threshold is fitted on the documents of the dev half (datasets.split_of) and reported on the test half.
"""

from __future__ import annotations

import itertools
import random
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tandemlm.bench.datasets import load, sample, split_of
from tandemlm.bench.metrics import auroc
from tandemlm.guard.verify import Verifier, sentences

SUPPORTED_KINDS = ("extract", "paraphrase")
UNSUPPORTED_KINDS = ("number", "negation", "entity", "addition")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)")
SMALL = re.compile(r"(?<![\w.,$])\d+(?![\w%]|[.,]\d)")  # a count that reads as a word: not $2, 2%, 2.5 or 2,000
AUXILIARIES = ("is", "are", "was", "were", "has", "have", "had", "can", "will", "does", "did", "could", "would")
NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
NOT_NAMES = frozenset(  # capitalised words that are no one's name
    re.findall(
        r"\S+",
        "The She He They It If In On At Each Every After Before There This That These Those His Her Their "
        "When Then For One Two Three Four Five Six Seven Eight Nine Ten Some All Half Most Mrs Mr Ms Dr "
        "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July "
        "August September October November December How What Which While During From With Over Last Next "
        "First Second Third Since Until Because She's He's Today Tomorrow Yesterday Also And But Its Our Your "
        "You We Americans English American",
    )
)
ASKS = re.compile(r"\b(calculate|find|determine|how many|how much|what)\b", re.IGNORECASE)  # a question's instruction
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
SYNONYMS = {"buys": "purchases", "bought": "purchased", "gets": "receives", "got": "received", "every": "each",
            "wants": "would like", "costs": "is priced at", "needs": "requires"}  # fmt: skip


@dataclass(frozen=True)
class Pair:
    doc_id: str
    document: str
    claim: str
    kind: str
    supported: bool
    split: str


def document_of(prompt: str) -> list[str]:
    """The statements of a GSM8K problem: its sentences without the question."""
    return [s for s in sentences(prompt) if not s.endswith("?") and not ASKS.search(s)]


def paraphrase(sentence: str) -> str | None:
    """The sentence with its small numbers as words (or number words as digits) and plain synonyms swapped."""
    out = SMALL.sub(lambda m: WORDS[int(m.group())] if m.group().isdigit() and int(m.group()) < len(WORDS)
                     else m.group(), sentence)  # fmt: skip
    if out == sentence:
        out = re.sub(rf"\b({'|'.join(WORDS[2:])})\b", lambda m: str(WORDS.index(m.group())), sentence)
    out = re.sub(rf"\b({'|'.join(SYNONYMS)})\b", lambda m: SYNONYMS[m.group()], out)
    return out if out != sentence else None


def change_number(sentence: str, rng: random.Random) -> str | None:
    found = list(NUMBER.finditer(sentence))
    if not found:
        return None
    m = rng.choice(found)
    value = float(m.group())
    new = value + rng.randint(1, 9) if value < 10 else value * rng.choice((2, 3)) + rng.randint(1, 5)
    text = str(int(new)) if new.is_integer() else f"{new:g}"
    return sentence[: m.start()] + text + sentence[m.end() :]


def negate(sentence: str) -> str | None:
    m = re.search(rf"\b({'|'.join(AUXILIARIES)})\b(?! not)", sentence)
    if m is None:
        return None
    return sentence[: m.end()] + " not" + sentence[m.end() :]


def names_in(sentence: str) -> list[str]:
    return [w for w in NAME.findall(sentence) if w not in NOT_NAMES]


def swap_entity(sentence: str, others: list[str], rng: random.Random) -> str | None:
    mine = names_in(sentence)
    choices = [n for n in others if n not in mine]
    if not mine or not choices:
        return None
    return re.sub(rf"\b{mine[0]}\b", rng.choice(choices), sentence)


def add_clause(sentence: str, other: str) -> str:
    return f"{sentence.rstrip('.!')}, and {other[0].lower() + other[1:] if not names_in(other[:12]) else other}"


def perturb(kind: str, sentence: str, other: list[str], names: list[str], rng: random.Random) -> str | None:
    """An unsupported claim of `kind` made from a document sentence (None when the sentence has nothing to change)."""
    if kind == "number":
        return change_number(sentence, rng)
    if kind == "negation":
        return negate(sentence)
    if kind == "entity":
        return swap_entity(sentence, names, rng)
    return add_clause(sentence, rng.choice(other))


def make_pairs(n_docs: int, seed: int = 0) -> list[Pair]:
    """Two supported and two unsupported claims for each of `n_docs` GSM8K test problems (seeded)."""
    rng = random.Random(seed)
    items = [it for it in sample(load("gsm8k"), None, seed) if len(document_of(it.prompt)) >= 2]
    docs = [(it.id, document_of(it.prompt)) for it in items]
    all_names = sorted({n for _, doc in docs for s in doc for n in names_in(s)})
    pairs: list[Pair] = []
    turn = 0
    for index, (doc_id, doc) in enumerate(docs):
        if len({p.doc_id for p in pairs}) >= n_docs:
            break
        text, split = " ".join(doc), split_of(doc_id)
        other = docs[(index + 1) % len(docs)][1]
        claims: list[tuple[str, str, bool]] = [("extract", rng.choice(doc), True)]
        para = next((p for s in rng.sample(doc, len(doc)) if (p := paraphrase(s)) is not None), None)
        if para is None:
            continue
        claims.append(("paraphrase", para, True))
        made = 0
        for k in range(len(UNSUPPORTED_KINDS)):
            if made == 2:
                break
            kind = UNSUPPORTED_KINDS[(turn + k) % len(UNSUPPORTED_KINDS)]
            for s in rng.sample(doc, len(doc)):
                claim = perturb(kind, s, other, all_names, rng)
                if claim is not None and claim != s:
                    claims.append((kind, claim, False))
                    made += 1
                    break
        if made < 2:
            continue
        turn += 2
        pairs += [Pair(doc_id, text, claim, kind, ok, split) for kind, claim, ok in claims]
    return pairs


def balanced_accuracy(labels: list[bool], predicted: list[bool]) -> float:
    pos = [p for t, p in zip(labels, predicted, strict=True) if t]
    neg = [not p for t, p in zip(labels, predicted, strict=True) if not t]
    return 0.5 * ((sum(pos) / len(pos) if pos else 0.0) + (sum(neg) / len(neg) if neg else 0.0))


def best_threshold(labels: list[bool], scores: list[float]) -> float:
    """The threshold (midway between adjacent scores) with the best balanced accuracy on these pairs."""
    values = sorted(set(scores))
    cuts = [values[0] - 1e-9] + [(a + b) / 2 for a, b in itertools.pairwise(values)] + [values[-1] + 1e-9]
    return max(cuts, key=lambda t: balanced_accuracy(labels, [s >= t for s in scores]))


def run_verify_bench(config: str, n_docs: int, chunk_tokens: int = 400, seed: int = 0) -> dict[str, Any]:
    """Score every generated pair with the config's verifier model; fit on dev, report on test."""
    from tandemlm.config import Runtime, load_config
    from tandemlm.guard.verify_cli import verifier_spec

    cfg = load_config(config)
    spec = verifier_spec(cfg, None)
    runtime = Runtime(cfg)
    try:
        verifier = Verifier(runtime.model(spec.model), chunk_tokens=chunk_tokens)
        pairs = make_pairs(n_docs, seed)
        scores, latencies = [], []
        t0 = time.perf_counter()
        for pair in pairs:  # claims on one document in a row: they share its cached prefix, as in Verified
            support = verifier.check(pair.document, pair.claim)
            scores.append(support.score)
            latencies.append(support.latency_ms)
        elapsed = time.perf_counter() - t0
    finally:
        runtime.close()
    dev = [i for i, p in enumerate(pairs) if p.split == "train"]
    test = [i for i, p in enumerate(pairs) if p.split == "test"]
    threshold = best_threshold([pairs[i].supported for i in dev], [scores[i] for i in dev])
    labels = [pairs[i].supported for i in test]
    predicted = [scores[i] >= threshold for i in test]
    kinds = {}
    for kind in (*SUPPORTED_KINDS, *UNSUPPORTED_KINDS):
        rows = [i for i in test if pairs[i].kind == kind]
        right = [(scores[i] >= threshold) == pairs[i].supported for i in rows]
        kinds[kind] = {"n": len(rows), "accuracy": round(sum(right) / len(rows), 4) if rows else None,
                       "mean_score": round(statistics.fmean(scores[i] for i in rows), 4) if rows else None}  # fmt: skip
    return {
        "config": config,
        "verifier": spec.model,
        "data": "generated from GSM8K test problems (see bench/verify.py): not a public fact-verification set",
        "documents": len({p.doc_id for p in pairs}),
        "pairs": len(pairs),
        "dev_pairs": len(dev),
        "test_pairs": len(test),
        "chunk_tokens": chunk_tokens,
        "threshold_fitted_on_dev": round(threshold, 6),
        "balanced_accuracy_test": round(balanced_accuracy(labels, predicted), 4),
        "balanced_accuracy_dev": round(
            balanced_accuracy([pairs[i].supported for i in dev], [scores[i] >= threshold for i in dev]), 4
        ),
        "auroc_test": round(auroc(labels, [scores[i] for i in test]), 4),
        "per_kind_test": kinds,
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1),
        "seconds": round(elapsed, 1),
        "target_balanced_accuracy": 0.75,
        "anchor": "MiniCheck-Flan-T5-L 75.0 balanced accuracy on LLM-AggreFact (its own set)",
        "examples": [
            {"kind": p.kind, "claim": p.claim, "score": round(s, 4)} for p, s in zip(pairs[:8], scores, strict=False)
        ],
    }


def to_markdown(result: dict[str, Any], command: str) -> str:
    r = result
    lines = [
        f"# Fact verification: {r['verifier']} ({r['config']} config)",
        "",
        f"Command: `{command}`",
        "",
        f"Data: {r['data']}. {r['documents']} documents, {r['pairs']} claims ({r['dev_pairs']} dev, "
        f"{r['test_pairs']} test); chunks of at most {r['chunk_tokens']} tokens.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| balanced accuracy, test (threshold fitted on dev) | {r['balanced_accuracy_test']} |",
        f"| balanced accuracy, dev | {r['balanced_accuracy_dev']} |",
        f"| AUROC, test | {r['auroc_test']} |",
        f"| threshold | {r['threshold_fitted_on_dev']} |",
        f"| p50 / p95 latency per claim (ms) | {r['latency_ms_p50']} / {r['latency_ms_p95']} |",
        f"| target / anchor | {r['target_balanced_accuracy']} / {r['anchor']} |",
        "",
        "| kind (test) | supported | n | accuracy | mean P(supported) |",
        "|---|---|---|---|---|",
    ]
    for kind, row in r["per_kind_test"].items():
        ok = "yes" if kind in SUPPORTED_KINDS else "no"
        lines.append(f"| {kind} | {ok} | {row['n']} | {row['accuracy']} | {row['mean_score']} |")
    return "\n".join(lines) + "\n"
