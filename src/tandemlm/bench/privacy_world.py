"""Privacy benchmark, part (d): the default detectors on multinational synthetic PII (bench/pii_world.py),
scored on the development, held-out and fresh templates apart: recall per kind and locale, precision, false
positives per 100 PII-free prompts, what `pseudonymize` lets out in its exact egress, and the added latency."""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tandemlm.bench import pii_world
from tandemlm.bench.datasets import load
from tandemlm.bench.datasets import sample as sample_items
from tandemlm.models.scripted import ScriptedModel
from tandemlm.privacy import (
    Detector,
    PiiGatekeeper,
    PrivacyPolicy,
)
from tandemlm.privacy.audit import audit_ledger
from tandemlm.privacy.spans import Span
from tandemlm.trace import Recorder
from tandemlm.types import Request


def covered(gold: Span, predicted: Sequence[Span]) -> bool:
    """Whether every letter and digit of `gold` is inside some predicted span, whatever its type."""
    chars = [i for i in range(gold.start, gold.end) if gold.text[i - gold.start].isalnum()]
    return all(any(p.start <= i < p.end for p in predicted) for i in chars)


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


# ---- (d) world: multinational PII, dev, held-out and fresh templates ------------------------------


SPLITS = ("dev", "held_out", "fresh")
JUDGED = ("held_out", "fresh")  # the splits the targets are judged on
TARGETS = {"structured_recall": 0.99, "name_recall": 0.95, "fp_per_100": 1.0, "added_p50_ms": 25.0}


def _typed(gold: pii_world.Gold, predicted: Sequence[Span]) -> bool:
    """Covered by spans that stand for one of the kind's types (a merged span counts for each of its types)."""
    accepted = set(pii_world.KINDS[gold.kind])
    return covered(gold.span, [p for p in predicted if accepted & set(p.entities)])


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
            hit = (1, int(covered(g.span, spans)), int(_typed(g, spans)))
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
    for (split, kind, where), (n, found, typed) in sorted(cells.items()):
        recall[split].setdefault(kind, {})[where] = {"n": n, "recall": _rate(found, n), "typed": _rate(typed, n)}
    by_detail: dict[str, dict[str, dict[str, Any]]] = {split: {} for split in SPLITS}
    for (split, kind, detail), (n, found, typed) in sorted(details.items()):
        by_detail[split][detail] = {"kind": kind, "n": n, "recall": _rate(found, n), "typed": _rate(typed, n)}
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
            "detect_p95_ms": round(p95(detect), 2), "added_p50_ms": round(statistics.median(added), 2),
            "added_p95_ms": round(p95(added), 2)}  # fmt: skip


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


class _Remembered(Detector):
    """A detector that answers a text it has seen from memory: the leakage pass masks the texts the detection
    pass scored, and an SLM detector costs seconds per text."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.seen: dict[str, list[Span]] = {}

    def detect(self, text: str) -> list[Span]:
        if text not in self.seen:
            self.seen[text] = self.inner.detect(text)
        return self.seen[text]


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
    remembered = _Remembered(detector)
    predicted = [remembered.detect(text) for text in tqdm(texts, desc="world detect", file=sys.stderr)]
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
    result["leakage"] = world_leakage(samples, remembered)
    n_latency = min(n_latency, 20) if with_slm else n_latency  # the SLM takes seconds a prompt
    timed = texts[:: max(1, len(texts) // n_latency)][:n_latency]
    progress(f"world latency on {len(timed)} prompts")
    result["latency"] = world_latency(timed, detector, repeats=1 if with_slm else 3)
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
