"""Privacy benchmark: detection quality, leakage against utility per policy, and the gatekeeper's latency.

(a) Detection: precision/recall/F1 per entity type on synthetic sentences (bench/pii_data.py), ours
    (validated patterns + Presidio NER) beside Presidio's default analyzer alone (all its recognizers,
    the same spaCy model). A prediction is correct when it overlaps a gold span of its type; `masked`
    is the share of gold values whose every character some span covers, whatever its type: what
    decides leakage.
(b) Leakage vs utility: GSM8K problems with a name, an e-mail, a phone and a card number woven in, answered
    under each policy; leakage is the share of inserted values found in the egress ledger (exact or
    normalised, as `tandem audit` matches), utility the accuracy relative to sending the raw text.
(c) Latency: the gatekeeper (no SLM detector) around an instant cloud, minus that cloud alone.
(d) World: the default detectors (config.DEFAULT_DETECTORS, optionally with the SLM) on multinational synthetic
    PII (bench/pii_world.py), scored on the development, the held-out and the fresh templates apart (the fresh
    ones, bench/pii_world_fresh.py, written after the finders and never shown to their authors): recall per kind of
    value and locale (covered, and covered by the right type), precision, false positives per 100 PII-free
    GSM8K/MMLU/HumanEval prompts, what `pseudonymize` lets out in its exact egress, and the added latency.
"""

from __future__ import annotations

import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

from tqdm import tqdm

from tandemlm.bench import pii_data, pii_world
from tandemlm.bench.datasets import chat_prompt, load
from tandemlm.bench.datasets import sample as sample_items
from tandemlm.bench.scoring import correct
from tandemlm.config import DEFAULT_DETECTORS, Runtime, TandemConfig
from tandemlm.errors import PrivacyBlockedError
from tandemlm.models.base import LanguageModel
from tandemlm.models.scripted import ScriptedModel
from tandemlm.privacy import (
    Detector,
    PatternDetector,
    PiiGatekeeper,
    PresidioDetector,
    PrivacyPolicy,
    UnionDetector,
    build_detectors,
)
from tandemlm.privacy.audit import audit_ledger, find_leaks
from tandemlm.privacy.gatekeeper import Mode
from tandemlm.privacy.policy import Action
from tandemlm.privacy.spans import Span
from tandemlm.trace import Recorder
from tandemlm.types import Request

POLICIES = ("none", "pseudonymize", "route_local", "disclosure", "guardian", "block")


# ---- (a) detection --------------------------------------------------------------------------------


def score_detection(samples: Sequence[pii_data.Sample], detector: Detector) -> dict[str, dict[str, float]]:
    """Per entity type (and `all`): precision, recall, F1, masked share, support."""
    counts: dict[str, dict[str, int]] = {}
    for sample in samples:
        predicted = detector.detect(sample.text)
        for entity in {g.entity for g in sample.gold} | {p.entity for p in predicted}:
            c = counts.setdefault(entity, {"tp_pred": 0, "pred": 0, "tp_gold": 0, "gold": 0, "masked": 0})
            golds = [g for g in sample.gold if g.entity == entity]
            preds = [p for p in predicted if p.entity == entity and not _ignored(p, sample)]
            c["pred"] += len(preds)
            c["tp_pred"] += sum(any(p.overlaps(g) for g in golds) for p in preds)
            c["gold"] += len(golds)
            c["tp_gold"] += sum(any(p.overlaps(g) for p in preds) for g in golds)
            c["masked"] += sum(_covered(g, predicted) for g in golds)
    gold_types = {e for e, c in counts.items() if c["gold"]}
    total = {k: sum(counts[e][k] for e in gold_types) for k in ("tp_pred", "pred", "tp_gold", "gold", "masked")}
    return {e: _prf(c) for e, c in sorted({**{e: counts[e] for e in gold_types}, "all": total}.items())}


def _ignored(span: Span, sample: pii_data.Sample) -> bool:
    """Inside a region the benchmark does not score (an address, a job title ...) and touching no gold span."""
    inside = any(a <= span.start and span.end <= b for a, b in sample.ignore)
    return inside and not any(span.overlaps(g) for g in sample.gold)


def _covered(gold: Span, predicted: Sequence[Span]) -> bool:
    chars = [i for i in range(gold.start, gold.end) if gold.text[i - gold.start].isalnum()]
    return all(any(p.start <= i < p.end for p in predicted) for i in chars)


def _prf(c: dict[str, int]) -> dict[str, float]:
    precision = c["tp_pred"] / c["pred"] if c["pred"] else 0.0
    recall = c["tp_gold"] / c["gold"] if c["gold"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    masked = c["masked"] / c["gold"] if c["gold"] else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
            "masked": round(masked, 3), "support": c["gold"]}  # fmt: skip


def detection_bench(n_sentences: int, seed: int) -> dict[str, Any]:
    samples = pii_data.synthetic_sentences(n_sentences, seed)
    ours = UnionDetector([PatternDetector(phone_regions=pii_data.PHONE_REGIONS), PresidioDetector()])
    presidio = PresidioDetector(entities=None, min_score=0.0, organizations=False)
    return {"sentences": len(samples), "ours": score_detection(samples, ours),
            "presidio_default": score_detection(samples, presidio)}  # fmt: skip


# ---- (b) leakage vs utility -----------------------------------------------------------------------


WOVEN_TYPES = ("PERSON", "EMAIL", "PHONE", "CREDIT_CARD")  # the types of the values woven_items inserts, in order


def woven_items(n_items: int, seed: int) -> list[tuple[Any, list[str]]]:
    """GSM8K items with PII woven into the question, and the inserted values (of WOVEN_TYPES, in order)."""
    return woven(load("gsm8k")[:n_items], seed)


def woven(items: Sequence[Any], seed: int) -> list[tuple[Any, list[str]]]:
    """Each item with a name, an e-mail, a phone and a card number woven into its question, and the values."""
    faker = pii_data.Faker(seed)
    rng = random.Random(seed)
    out = []
    for item in items:
        faker.new_person()
        name, email = faker.value("person"), faker.value("email")
        tel, cc = pii_data.phone(rng), pii_data.card(rng)
        prompt = (f"Hi, I'm {name} ({email}, phone {tel}). I'll pay with card {cc}. {item.prompt} "
                  f"Please send the result to {email}.")  # fmt: skip
        out.append((replace(item, prompt=prompt), [name, email, tel, cc]))
    return out


def policy_model(policy: str, edge: LanguageModel, cloud: LanguageModel, detector: Detector) -> LanguageModel:
    """The model a benchmark policy answers with: the raw cloud (`none`), or a gatekeeper around it."""
    if policy == "none":
        return cloud
    mode = cast(Mode, policy if policy in ("disclosure", "guardian") else "pseudonymize")
    action = cast(Action, policy if policy in ("route_local", "block") else "pseudonymize")
    policy_ = PrivacyPolicy(default=action)
    return PiiGatekeeper(cloud, edge=edge, detectors=detector, policy=policy_, mode=mode, name=f"privacy-{policy}")


def leakage_bench(runtime: Runtime, edge_name: str, cloud_name: str, n_items: int, max_tokens: int, seed: int,
                  policies: Sequence[str]) -> list[dict[str, Any]]:  # fmt: skip
    edge, cloud = runtime.model(edge_name), runtime.model(cloud_name)
    detector = UnionDetector([PatternDetector(), PresidioDetector()])
    items = woven_items(n_items, seed)
    rows: list[dict[str, Any]] = []
    for policy in policies:
        model = policy_model(policy, edge, cloud, detector)
        with tempfile.TemporaryDirectory() as tmp:
            ledger = Path(tmp) / "egress.jsonl"
            right = refused = leaked = inserted = cloud_calls = 0
            started = time.perf_counter()
            for item, values in tqdm(items, desc=policy, file=sys.stderr):
                with Recorder(ledger=ledger) as rec:
                    try:
                        answer = model.generate(Request.of(chat_prompt(item), max_tokens=max_tokens)).text
                    except PrivacyBlockedError:
                        answer, refused = "", refused + 1
                right += correct(item, answer)
                cloud_calls += sum(e.egress is not None for e in rec.events)
                inserted += len(values)
            if ledger.exists():
                leaked = len({(leak.line, leak.secret) for leak in audit_ledger(ledger, _all_values(items))})
            seconds = time.perf_counter() - started
        rows.append({"policy": policy, "items": len(items), "accuracy": round(right / len(items), 3),
                     "leaked": leaked, "inserted": inserted, "leak_rate": round(leaked / max(inserted, 1), 3),
                     "refused": refused, "cloud_calls": cloud_calls, "seconds": round(seconds, 1)})  # fmt: skip
    base: float | None = next((r["accuracy"] for r in rows if r["policy"] == "none"), None)
    for r in rows:
        r["utility"] = round(r["accuracy"] / base, 3) if base else None
    return rows


def masking_bench(n_items: int, seed: int) -> dict[str, dict[str, int]]:
    """Which inserted values, by type, the gatekeeper (patterns + Presidio, pseudonymize) leaves in the text it
    would send: the leakage of `pseudonymize` without running a model (the cloud here only records)."""
    cloud = ScriptedModel("ok", name="recorder", location="cloud")
    gate = PiiGatekeeper(cloud, detectors=UnionDetector([PatternDetector(), PresidioDetector()]))
    counts = {t: {"inserted": 0, "leaked": 0} for t in WOVEN_TYPES}
    for item, values in woven_items(n_items, seed):
        gate.generate(Request.of(chat_prompt(item), max_tokens=16))
        sent = "\n".join(m.content for m in cloud.requests[-1].messages)
        leaked = {leak.secret for leak in find_leaks([(1, "cloud", sent)], values)}
        for i, kind in enumerate(WOVEN_TYPES):
            counts[kind]["inserted"] += 1
            counts[kind]["leaked"] += i in leaked
    return counts


def _all_values(items: list[tuple[Any, list[str]]]) -> list[str]:
    """Every inserted value once, in order (a value inserted twice is one secret)."""
    return list(dict.fromkeys(v for _, values in items for v in values))


# ---- (c) latency ----------------------------------------------------------------------------------


def latency_bench(n_prompts: int, repeats: int, seed: int) -> dict[str, float]:
    """p50/p95 of the gatekeeper (patterns + Presidio, pseudonymize) around an instant cloud, and its own cost."""
    prompts = [chat_prompt(item) for item, _ in woven_items(n_prompts, seed)]
    cloud = ScriptedModel(lambda r: r.messages[-1].content[:200], name="instant", location="cloud")
    gatekeeper = PiiGatekeeper(cloud, detectors=[PatternDetector(), PresidioDetector()])
    gatekeeper.generate(prompts[0])  # loads spaCy
    direct = _timings(cloud, prompts, repeats)
    gated = _timings(gatekeeper, prompts, repeats)
    p50 = statistics.median
    return {"requests": len(gated), "direct_p50_ms": round(p50(direct), 2), "gated_p50_ms": round(p50(gated), 2),
            "gated_p95_ms": round(_p95(gated), 2), "added_p50_ms": round(p50(gated) - p50(direct), 2)}  # fmt: skip


def _timings(model: LanguageModel, prompts: list[str], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        for prompt in prompts:
            t0 = time.perf_counter()
            model.generate(Request.of(prompt, max_tokens=256))
            out.append((time.perf_counter() - t0) * 1000)
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


# ---- (d) world: multinational PII, dev, held-out and fresh templates ------------------------------


SPLITS = ("dev", "held_out", "fresh")
JUDGED = ("held_out", "fresh")  # the splits the targets are judged on
TARGETS = {"structured_recall": 0.99, "name_recall": 0.95, "fp_per_100": 1.0, "added_p50_ms": 25.0}


def _typed(gold: pii_world.Gold, predicted: Sequence[Span]) -> bool:
    """Covered by spans that stand for one of the kind's types (a merged span counts for each of its types)."""
    accepted = set(pii_world.KINDS[gold.kind])
    return _covered(gold.span, [p for p in predicted if accepted & set(p.entities)])


def _rate(found: int, n: int) -> float | None:
    return round(found / n, 4) if n else None


def score_world(samples: Sequence[pii_world.WorldSample], predicted: Sequence[Sequence[Span]],
                top: int = 25) -> dict[str, Any]:  # fmt: skip
    """Per split: recall of each kind of value per locale (`recall`: every alphanumeric character covered by
    some span, whatever its type; `typed`: by spans of the kind's types), per detail, and precision (a span
    overlapping no gold value counts against it; spans inside a region not scored, such as a username, do not
    count). Also the commonest false-positive strings."""
    cells: dict[tuple[str, str, str], list[int]] = {}  # (split, kind, locale) -> [n, covered, typed]
    details: dict[tuple[str, str, str], list[int]] = {}  # (split, kind, detail)
    precision: dict[tuple[str, str, str], list[int]] = {}  # (split, "type"/"locale", key) -> [pred, tp]
    fps: Counter[tuple[str, str]] = Counter()
    for s, spans in zip(samples, predicted, strict=True):
        split = s.split
        for g in s.gold:
            hit = (1, int(_covered(g.span, spans)), int(_typed(g, spans)))
            for key, table in (((split, g.kind, s.locale), cells), ((split, g.kind, "all"), cells),
                               ((split, g.kind, g.detail), details)):  # fmt: skip
                row = table.setdefault(key, [0, 0, 0])
                for i, v in enumerate(hit):
                    row[i] += v
        for p in spans:
            touches = any(p.overlaps(g.span) for g in s.gold)
            if not touches and any(a <= p.start and p.end <= b for a, b in s.ignore):
                continue
            for at in ((split, "type", p.entity), (split, "type", "all"), (split, "locale", s.locale)):
                row = precision.setdefault(at, [0, 0])
                row[0] += 1
                row[1] += touches
            if not touches:
                fps[(p.text, p.entity)] += 1
    recall: dict[str, dict[str, dict[str, dict[str, Any]]]] = {split: {} for split in SPLITS}
    for (split, kind, where), (n, covered, typed) in sorted(cells.items()):
        recall[split].setdefault(kind, {})[where] = {"n": n, "recall": _rate(covered, n), "typed": _rate(typed, n)}
    by_detail: dict[str, dict[str, dict[str, Any]]] = {split: {} for split in SPLITS}
    for (split, kind, detail), (n, covered, typed) in sorted(details.items()):
        by_detail[split][detail] = {"kind": kind, "n": n, "recall": _rate(covered, n), "typed": _rate(typed, n)}
    prec: dict[str, dict[str, dict[str, dict[str, Any]]]] = {split: {"type": {}, "locale": {}} for split in SPLITS}
    for (split, axis, name), (pred, tp) in sorted(precision.items()):
        prec[split][axis][name] = {"predicted": pred, "false": pred - tp, "precision": _rate(tp, pred)}
    false = [{"text": t, "entity": e, "count": c} for (t, e), c in fps.most_common(top)]
    return {"recall": recall, "by_detail": by_detail, "precision": prec, "false_positives": false}


def pii_free_prompts(n: int, seed: int) -> list[tuple[str, str]]:
    """(dataset, prompt) for n benchmark questions without PII: GSM8K, MMLU and HumanEval in equal shares."""
    names = ("gsm8k", "mmlu", "humaneval")
    return [(name, item.prompt) for i, name in enumerate(names)
            for item in sample_items(load(name), n // 3 + (i < n % 3), seed)]  # fmt: skip


def score_pii_free(prompts: Sequence[tuple[str, str]], predicted: Sequence[Sequence[Span]],
                   top: int = 25) -> dict[str, Any]:  # fmt: skip
    """Every span found in a PII-free prompt is a false positive: per 100 prompts, by type and by dataset."""
    by_type: Counter[str] = Counter()
    by_dataset: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    strings: Counter[tuple[str, str]] = Counter()
    flagged = 0
    for (dataset, _), spans in zip(prompts, predicted, strict=True):
        sizes[dataset] += 1
        flagged += bool(spans)
        by_dataset[dataset] += len(spans)
        for p in spans:
            by_type[p.entity] += 1
            strings[(p.text, p.entity)] += 1
    n = max(len(prompts), 1)
    return {"prompts": len(prompts), "spans": sum(by_type.values()), "prompts_flagged": flagged,
            "per_100": round(100 * sum(by_type.values()) / n, 2),
            # names of the people a question is about (GSM8K's "Natalia", MMLU's "Bertrand Russell") are names,
            # though nobody's private data: the count without PERSON spans says what else fires
            "per_100_without_names": round(100 * (sum(by_type.values()) - by_type["PERSON"]) / n, 2),
            "by_type": {e: round(100 * c / n, 2) for e, c in by_type.most_common()},
            "by_dataset": {d: {"prompts": sizes[d], "per_100": round(100 * by_dataset[d] / sizes[d], 2)}
                           for d in sizes},
            "top": [{"text": t, "entity": e, "count": c} for (t, e), c in strings.most_common(top)]}  # fmt: skip


def _words(value: str) -> list[str]:
    return re.findall(r"[^\W_]{4,}", value)


def world_leakage(samples: Sequence[pii_world.WorldSample], detector: Detector) -> dict[str, Any]:
    """Each sample through `pseudonymize` (a PiiGatekeeper around an echoing cloud, egress ledgered), audited
    for its own gold values (`audit_ledger`: exact or normalised). `partly`: the value, or one of its words of
    4+ letters or digits that the rest of the text does not contain, left."""
    cloud = ScriptedModel(lambda r: r.messages[-1].content, name="echo", location="cloud")
    gate = PiiGatekeeper(cloud, detectors=detector, policy=PrivacyPolicy(default="pseudonymize"))
    counts: dict[tuple[str, str], list[int]] = {}  # ("kind"/"locale", key) -> [inserted, left, partly]
    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(tqdm(samples, desc="world leakage", file=sys.stderr)):
            ledger = Path(tmp) / f"{i}.jsonl"
            with Recorder(ledger=ledger):
                gate.generate(Request.of(s.text, max_tokens=16))
            values = [g.text for g in s.gold]
            left = {leak.secret for leak in audit_ledger(ledger, values)} if ledger.exists() else set()
            sent = "\n".join(m.content for m in cloud.requests[-1].messages)
            rest = s.text
            for g in sorted(s.gold, key=lambda g: -g.start):
                rest = rest[: g.start] + " " + rest[g.end :]
            for j, g in enumerate(s.gold):
                partly = j in left or any(re.search(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", sent) and w not in rest
                                          for w in _words(g.text))  # fmt: skip
                for at in (("kind", g.kind), ("locale", s.locale), ("kind", "all")):
                    row = counts.setdefault(at, [0, 0, 0])
                    row[0] += 1
                    row[1] += j in left
                    row[2] += partly
    out: dict[str, Any] = {"kind": {}, "locale": {}}
    order = {k: i for i, k in enumerate([*pii_world.KINDS, "all", *pii_world.LOCALES])}
    for (axis, key), (inserted, left_, partly_) in sorted(counts.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        out[axis][key] = {"inserted": inserted, "left": left_, "leak_rate": _rate(left_, inserted),
                          "partly": partly_, "partly_rate": _rate(partly_, inserted)}  # fmt: skip
    return out


def world_latency(prompts: Sequence[str], detector: Detector, repeats: int = 3) -> dict[str, Any]:
    """Per prompt, the best of `repeats` runs (shared cores make single runs noisy) of the detector alone, and of
    the gatekeeper (pseudonymize) around an instant cloud minus that cloud alone; p50 and p95 over prompts."""
    cloud = ScriptedModel(lambda r: r.messages[-1].content, name="instant", location="cloud")
    gate = PiiGatekeeper(cloud, detectors=detector, policy=PrivacyPolicy(default="pseudonymize"))
    gate.generate(Request.of(prompts[0], max_tokens=16))  # the first call pays for imports and caches
    detect, added = [], []
    for text in tqdm(prompts, desc="world latency", file=sys.stderr):
        request = Request.of(text, max_tokens=16)
        detect.append(_best_ms(partial(detector.detect, text), repeats))
        direct = _best_ms(partial(cloud.generate, request), repeats)
        added.append(_best_ms(partial(gate.generate, request), repeats) - direct)
    return {"prompts": len(prompts), "repeats": repeats, "detect_p50_ms": round(statistics.median(detect), 2),
            "detect_p95_ms": round(_p95(detect), 2), "added_p50_ms": round(statistics.median(added), 2),
            "added_p95_ms": round(_p95(added), 2)}  # fmt: skip


def _best_ms(call: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def world_targets(result: dict[str, Any], with_slm: bool) -> list[dict[str, Any]]:
    """The issue's targets; recall judged on the held-out and the fresh templates, each on its own (the
    development share shown beside)."""
    rows = []
    for kind in pii_world.KINDS:
        goal = TARGETS["name_recall"] if kind == "person" else TARGETS["structured_recall"]
        value = {split: result["detection"]["recall"][split].get(kind, {}).get("all", {}).get("recall")
                 for split in SPLITS}  # fmt: skip
        rows.append({"target": f"{kind} recall >= {goal}", **value,
                     "pass": all(value[split] is not None and value[split] >= goal for split in JUDGED)})  # fmt: skip
    fp = result["pii_free"]["per_100"]
    rows.append({"target": f"false positives per 100 PII-free prompts <= {TARGETS['fp_per_100']:g}", "dev": None,
                 "held_out": fp, "fresh": None, "pass": fp <= TARGETS["fp_per_100"]})  # fmt: skip
    p50 = result["latency"]["added_p50_ms"]
    rows.append({"target": f"added p50 <= {TARGETS['added_p50_ms']:g} ms without the SLM", "dev": None,
                 "held_out": p50, "fresh": None,
                 "pass": None if with_slm else p50 <= TARGETS["added_p50_ms"]})  # fmt: skip
    return rows


def world_bench(detector: Detector, per_locale: int, n_free: int, seed: int, with_slm: bool = False,
                n_latency: int = 300, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:  # fmt: skip
    """The world part: detection, PII-free false positives, leakage and latency for one detector; `per_locale`
    samples from the dev and held-out templates and half as many again from the fresh ones."""
    samples = pii_world.world_samples(per_locale, seed) + pii_world.world_samples(max(1, per_locale // 2), seed,
                                                                                  fresh=True)  # fmt: skip
    free = pii_free_prompts(n_free, seed)
    detector.detect(samples[0].text)  # loads spaCy before anything is timed
    progress(f"world detection on {len(samples)} samples and {len(free)} PII-free prompts")
    texts = [s.text for s in samples] + [p for _, p in free]
    predicted = [detector.detect(text) for text in tqdm(texts, desc="world detect", file=sys.stderr)]
    counts: Counter[tuple[str, str, str]] = Counter()
    for s in samples:
        counts.update((s.split, g.kind, s.locale) for g in s.gold)
    by_split = Counter(s.split for s in samples)
    result: dict[str, Any] = {
        "samples": {"total": len(samples), "held_out": by_split["held_out"], "fresh": by_split["fresh"],
                    "templates": len(pii_world.TEMPLATES),
                    "held_out_templates": sum(t.held_out for t in pii_world.TEMPLATES),
                    "fresh_templates": len(pii_world.FRESH_TEMPLATES),
                    "by_style": {split: dict(Counter(s.style for s in samples if s.split == split))
                                 for split in SPLITS},
                    "values": {split: {kind: {loc: counts[(split, kind, loc)] for loc in pii_world.LOCALES}
                                       for kind in pii_world.KINDS} for split in SPLITS}},
        "detection": score_world(samples, predicted[: len(samples)]),
        "pii_free": score_pii_free(free, predicted[len(samples) :]),
    }  # fmt: skip
    progress(f"world leakage through pseudonymize on {len(samples)} samples")
    result["leakage"] = world_leakage(samples, detector)
    timed = texts[:: max(1, len(texts) // n_latency)][:n_latency]
    progress(f"world latency on {len(timed)} prompts")
    result["latency"] = world_latency(timed, detector)
    result["targets"] = world_targets(result, with_slm)
    return result


def world_markdown(world: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    locales = list(pii_world.LOCALES)
    short = [loc.split("_")[1] for loc in locales]
    det, smp = world["detection"], world["samples"]
    cell = lambda v: "–" if v is None else f"{v:.3f}".rstrip("0").rstrip(".") if v < 1 else "1"  # noqa: E731
    verdict = lambda ok: "n/a" if ok is None else "**PASS**" if ok else "**FAIL**"  # noqa: E731
    name = lambda split: split.replace("_", "-")  # noqa: E731
    lines = [f"## World: multinational PII ({smp['total']} samples, {smp['held_out']} from held-out templates, "
             f"{smp['fresh']} from fresh ones)", "",
             f"Detectors: `{cfg['world_detectors']}`; {len(locales)} Faker locales (faker {cfg['faker']}), "
             f"{smp['templates']} templates of which {smp['held_out_templates']} held out (the finders' authors "
             f"did not see them), and {smp['fresh_templates']} fresh templates (written after the finders, "
             "never shown to their authors); "
             f"{cfg['world_samples']} samples per locale and half as many fresh ones, seed {cfg['seed']}.", "",
             "### Targets (recall judged on the held-out and the fresh templates, each on its own)", "",
             "| target | " + " | ".join(map(name, SPLITS)) + " | verdict |",
             "|---|" + "---:|" * len(SPLITS) + "---|"]  # fmt: skip
    for t in world["targets"]:
        recall = "recall" in t["target"]
        values = [cell(t.get(split)) if recall else "–" if t.get(split) is None else t[split] for split in SPLITS]
        lines.append(f"| {t['target']} | " + " | ".join(map(str, values)) + f" | {verdict(t['pass'])} |")
    lines += ["", "Recall: a value counts as found when every letter and digit of it is inside some detected span, "
              "whatever its type; type-exact: inside spans of the kind's types "
              f"({'; '.join(k + ' ' + '/'.join(v) for k, v in pii_world.KINDS.items())}).", ""]  # fmt: skip
    for split in SPLITS:
        lines += [f"### Values per kind and locale, {name(split)}", "",
                  "| kind | " + " | ".join(short) + " |", "|---|" + "---:|" * len(short)]  # fmt: skip
        for kind, by in smp["values"][split].items():
            lines.append(f"| {kind} | " + " | ".join(str(by[loc] or "–") for loc in locales) + " |")
        lines.append("")
    lines += ["Samples by style: " + "; ".join(f"{name(split)}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(smp["by_style"][split].items())) for split in SPLITS), ""]  # fmt: skip
    for measure, title in (("recall", "Recall (covered, any type)"), ("typed", "Type-exact recall")):
        for split in SPLITS:
            lines += [f"### {title}, {name(split)} templates", "",
                      "| kind | all | " + " | ".join(short) + " |", "|---|---:|" + "---:|" * len(short)]  # fmt: skip
            for kind in pii_world.KINDS:
                by = det["recall"][split].get(kind, {})
                row = [cell(by.get(w, {}).get(measure)) for w in ["all", *locales]]
                lines.append(f"| {kind} | " + " | ".join(row) + " |")
            lines.append("")
    by_detail = [det["by_detail"][split] for split in SPLITS]
    columns = " | ".join(f"{name(s)} {m}" for s in SPLITS for m in ("n", "recall", "typed"))
    lines += ["### Recall by detail (which ID, which secret format, which phone range)", "",
              f"| detail | kind | {columns} |", "|---|---|" + "---:|" * 3 * len(SPLITS)]  # fmt: skip
    kind_of = {d: r["kind"] for table in by_detail for d, r in table.items()}
    for detail in sorted(kind_of, key=lambda d: (kind_of[d], d)):
        row = [str(c) for r in (t.get(detail, {}) for t in by_detail)
               for c in (r.get("n", 0), cell(r.get("recall")), cell(r.get("typed")))]  # fmt: skip
        lines.append(f"| {detail} | {kind_of[detail]} | " + " | ".join(row) + " |")
    columns = " | ".join(f"{name(s)} {m}" for s in SPLITS for m in ("spans", "false", "precision"))
    lines += ["", "### Precision on the PII-bearing samples (a span overlapping no gold value is false)", "",
              f"| detected type | {columns} |", "|---|" + "---:|" * 3 * len(SPLITS)]  # fmt: skip
    precision = [det["precision"][split] for split in SPLITS]
    for axis in ("type", "locale"):
        for key in sorted({k for table in precision for k in table[axis]}):
            row = [str(c) for r in (t[axis].get(key, {}) for t in precision)
                   for c in (r.get("predicted", 0), r.get("false", 0), cell(r.get("precision")))]  # fmt: skip
            lines.append(f"| {key if axis == 'type' else 'locale ' + key} | " + " | ".join(row) + " |")
    lines += ["", "Commonest false positives on PII-bearing samples: " + ", ".join(
        f"`{_md(f['text'])}` {f['entity']} ×{f['count']}" for f in det["false_positives"][:20]), ""]  # fmt: skip
    free = world["pii_free"]
    lines += [f"### False positives on {free['prompts']} PII-free prompts (GSM8K, MMLU, HumanEval)", "",
              f"**{free['per_100']} per 100 prompts** ({free['spans']} spans; {free['prompts_flagged']} prompts "
              f"with at least one); without PERSON spans (the names of the people a word problem or a history "
              f"passage is about): {free.get('per_100_without_names', '–')} per 100. The target is judged on "
              "every span. By dataset: " + ", ".join(f"{d} {v['per_100']}" for d, v in
              free["by_dataset"].items()) + ". By type (per 100): " + ", ".join(f"{e} {v}" for e, v in
              free["by_type"].items()) + ".", "", "| false positive | type | count |", "|---|---|---:|"]  # fmt: skip
    lines += [f"| `{_md(f['text'])}` | {f['entity']} | {f['count']} |" for f in free["top"]]
    leak = world["leakage"]
    lines += ["", "### Leakage: the exact egress of `pseudonymize` (audited like `tandem audit`)", "",
              "Left: the whole value found in what was sent (exact or normalised); partly: the value or one of its "
              "words of 4+ letters or digits.", "", "| kind | inserted | left | leak rate | partly | partly rate |",
              "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for axis in ("kind", "locale"):
        for key, r in leak[axis].items():
            lines.append(f"| {key if axis == 'kind' else 'locale ' + key} | {r['inserted']} | {r['left']} | "
                         f"{cell(r['leak_rate'])} | {r['partly']} | {cell(r['partly_rate'])} |")  # fmt: skip
    lat = world["latency"]
    lines += ["", f"### Latency ({lat['prompts']} prompts, samples and PII-free alike; best of {lat['repeats']})", "",
              f"Added by the gatekeeper (pseudonymize around an instant cloud, minus that cloud): p50 "
              f"**{lat['added_p50_ms']} ms**, p95 {lat['added_p95_ms']} ms per prompt; the detector alone: p50 "
              f"{lat['detect_p50_ms']} ms, p95 {lat['detect_p95_ms']} ms. Load average at the start: "
              f"{cfg.get('load', '?')}.", ""]  # fmt: skip
    return lines


def _md(text: str) -> str:
    return text.replace("\n", "⏎").replace("|", "\\|").replace("`", "'")[:60]


# ---- the whole run --------------------------------------------------------------------------------


PARTS = ("detection", "masking", "leakage", "latency", "world")


def run_privacy_bench(config: TandemConfig, label: str, edge: str, cloud: str, n_items: int, n_sentences: int,
                      max_tokens: int, policies: Sequence[str] = POLICIES, seed: int = 0,
                      parts: Sequence[str] = PARTS, *, world_samples: int = 600, pii_free: int = 300,
                      with_slm: bool = False,
                      progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:  # fmt: skip
    """The parts asked for: (a) detection, (b) leakage vs utility, (c) the gatekeeper's added latency, (d) the
    default detectors on multinational PII (`world_samples` per locale, `pii_free` PII-free prompts)."""
    settings = {"config": label, "edge": edge, "cloud": cloud, "items": n_items, "sentences": n_sentences,
                "max_tokens": max_tokens, "seed": seed, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
                           f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
                "presidio_analyzer": version("presidio-analyzer"),
                "data": f"{pii_data.DIST}=={pii_data.VERSION}"}  # fmt: skip
    result: dict[str, Any] = {"settings": settings}
    if "world" in parts:
        names = [*DEFAULT_DETECTORS, *(["slm"] if with_slm else [])]
        settings.update({"world_detectors": ",".join(names), "world_samples": world_samples, "pii_free": pii_free,
                         "faker": version("faker"), "load": " ".join(f"{x:.1f}" for x in os.getloadavg())})  # fmt: skip
        runtime = Runtime(config) if with_slm else None
        try:
            detector = build_detectors(names, runtime.model(edge) if runtime else None)
            result["world"] = world_bench(detector, world_samples, pii_free, seed, with_slm, progress=progress)
        finally:
            if runtime is not None:
                runtime.close()
    if "detection" in parts:
        progress(f"detection on {n_sentences} synthetic sentences")
        result["detection"] = detection_bench(n_sentences, seed)
    if "masking" in parts:
        progress(f"masking of {n_items} GSM8K items with PII woven in")
        result["masking"] = masking_bench(n_items, seed)
    if "leakage" in parts:
        progress(f"leakage and utility on {n_items} GSM8K items per policy")
        runtime = Runtime(config)
        try:
            result["leakage"] = leakage_bench(runtime, edge, cloud, n_items, max_tokens, seed, policies)
        finally:
            runtime.close()
    if "latency" in parts:
        progress("gatekeeper latency")
        result["latency"] = latency_bench(min(max(n_items, 5), 20), 5, seed)
    return result


def to_markdown(result: dict[str, Any], command: str) -> str:
    cfg = result["settings"]
    only_world = set(result) - {"settings", "command"} == {"world"}
    lines = [
        "# Privacy: multinational PII" if only_world else "# Privacy: detection, leakage vs utility, latency", "",
        f"Command: `{command}`  ",
        *([f"Date: {cfg['date']}; machine: {cfg['machine']}  "] if "date" in cfg else []),
        f"Models: edge `{cfg['edge']}`, cloud `{cfg['cloud']}` from config `{cfg['config']}`; "
        f"data: {cfg['data']} templates (seed {cfg['seed']}), GSM8K test." if not only_world else
        "Data: bench/pii_world.py (Faker locales, valid checksums), PII-free GSM8K/MMLU/HumanEval questions.", "",
    ]  # fmt: skip
    if det := result.get("detection"):
        lines += [
            f"## Detection ({det['sentences']} synthetic sentences)", "",
            "| entity | support | ours P | ours R | ours F1 | ours masked "
            "| Presidio P | Presidio R | Presidio F1 | Presidio masked |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]  # fmt: skip
        for entity, ours in det["ours"].items():
            theirs = det["presidio_default"].get(entity, {})
            cells = [ours["precision"], ours["recall"], ours["f1"], ours["masked"]]
            cells += [theirs.get(k, "–") for k in ("precision", "recall", "f1", "masked")]
            lines.append(f"| {entity} | {ours['support']} | " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    if masking := result.get("masking"):
        lines += [f"## Masking ({cfg['items']} GSM8K items with PII woven in; no model runs)", "",
                  "| type | inserted | left in the text sent |", "|---|---:|---:|"]  # fmt: skip
        lines += [f"| {kind} | {c['inserted']} | {c['leaked']} |" for kind, c in masking.items()]
        lines.append("")
    if "leakage" in result:
        lines += [f"## Leakage vs utility ({cfg['items']} GSM8K items, max_tokens {cfg['max_tokens']})", "",
                  "| policy | accuracy | utility vs raw | leaked / inserted | leak rate | refused | cloud calls | s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in result["leakage"]:
            lines.append(f"| {r['policy']} | {r['accuracy']} | {r['utility']} | {r['leaked']} / {r['inserted']} | "
                         f"{r['leak_rate']} | {r['refused']} | {r['cloud_calls']} | {r['seconds']} |")  # fmt: skip
        lines.append("")
    if lat := result.get("latency"):
        lines += [f"## Latency (gatekeeper without the SLM detector, {lat['requests']} requests)", "",
                  f"Added p50: **{lat['added_p50_ms']} ms** "
                  f"(gated p50 {lat['gated_p50_ms']} ms, p95 {lat['gated_p95_ms']} ms; "
                  f"the instant cloud alone p50 {lat['direct_p50_ms']} ms).", ""]  # fmt: skip
    if world := result.get("world"):
        lines += world_markdown(world, cfg)
    return "\n".join(lines)
