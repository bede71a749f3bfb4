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
(d) World (bench/privacy_world.py): the default detectors on multinational synthetic PII, the development,
    held-out and fresh templates scored apart.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

from tqdm import tqdm

from tandemlm.bench import pii_data
from tandemlm.bench.datasets import chat_prompt, load
from tandemlm.bench.privacy_world import covered, p95, world_bench, world_markdown
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
            c["masked"] += sum(covered(g, predicted) for g in golds)
    gold_types = {e for e, c in counts.items() if c["gold"]}
    total = {k: sum(counts[e][k] for e in gold_types) for k in ("tp_pred", "pred", "tp_gold", "gold", "masked")}
    return {e: _prf(c) for e, c in sorted({**{e: counts[e] for e in gold_types}, "all": total}.items())}


def _ignored(span: Span, sample: pii_data.Sample) -> bool:
    """Inside a region the benchmark does not score (an address, a job title ...) and touching no gold span."""
    inside = any(a <= span.start and span.end <= b for a, b in sample.ignore)
    return inside and not any(span.overlaps(g) for g in sample.gold)


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
            "gated_p95_ms": round(p95(gated), 2), "added_p50_ms": round(p50(gated) - p50(direct), 2)}  # fmt: skip


def _timings(model: LanguageModel, prompts: list[str], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        for prompt in prompts:
            t0 = time.perf_counter()
            model.generate(Request.of(prompt, max_tokens=256))
            out.append((time.perf_counter() - t0) * 1000)
    return out


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
