"""Utility of the privacy modes: GSM8K with PII woven in, answered raw and under pseudonymize, disclosure and
guardian; accuracy against raw, the share of requests that fell back (privacy/facts.py), and the values
found in the exact egress of every request (which must be none but raw's).

Items are GSM8K problems of one half of the fixed hash split (`datasets.split_of`): develop prompts on
`train`, report on `test`. Each (policy, item) row is appended to a JSONL file as soon as it is answered, and
a rerun skips the rows already there, so a run stopped at any point resumes. Policies run item by item, so
a run cut short still compares the policies on the same items (the report uses the items every policy has).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np

from tandemlm.bench.collab import bootstrap_ci
from tandemlm.bench.datasets import Item, chat_prompt, load, sample, split_of
from tandemlm.bench.privacy import woven
from tandemlm.bench.scoring import correct
from tandemlm.config import DEFAULT_DETECTORS, Runtime, TandemConfig
from tandemlm.models.base import LanguageModel
from tandemlm.privacy import PiiGatekeeper, build_detectors
from tandemlm.privacy.audit import find_leaks
from tandemlm.privacy.detectors import Detector
from tandemlm.privacy.facts import FALLBACK_ROLE, RETRY_ROLE
from tandemlm.privacy.gatekeeper import Mode
from tandemlm.trace import Recorder
from tandemlm.types import Request

UTILITY_POLICIES = ("none", "pseudonymize", "disclosure", "guardian")


def utility_items(n_items: int, split: str, seed: int) -> list[tuple[Item, list[str]]]:
    """`n_items` GSM8K items of one split half, in the seeded order of `datasets.sample`, with PII woven in."""
    items = [item for item in sample(load("gsm8k"), None, seed) if split_of(item.id) == split]
    return woven(items[:n_items], seed)


def policy_model(policy: str, edge: LanguageModel, cloud: LanguageModel, detector: Detector) -> LanguageModel:
    if policy == "none":
        return cloud
    return PiiGatekeeper(cloud, edge=edge, detectors=detector, mode=cast(Mode, policy), name=f"privacy-{policy}")


def answer_row(model: LanguageModel, policy: str, item: Item, values: list[str], max_tokens: int) -> dict[str, Any]:
    """One item under one policy: the answer, whether it is right, what left the device and what of it is PII."""
    started = time.perf_counter()
    with Recorder() as rec:
        answer = model.generate(Request.of(chat_prompt(item), max_tokens=max_tokens))
    egress = [e.egress for e in rec.events if e.egress is not None]
    leaked = sorted({values[leak.secret] for leak in find_leaks(_records(egress), values)})
    return {
        "policy": policy, "id": item.id, "split": split_of(item.id), "correct": correct(item, answer.text),
        "answer": answer.text, "egress": egress, "leaked": leaked,
        "retried": sum(e.role == RETRY_ROLE for e in rec.events),
        "fell_back": [e.decision for e in rec.events if e.role == FALLBACK_ROLE],
        "decision": answer.decision, "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


def _records(egress: list[str]) -> list[tuple[int, str, str]]:
    return [(i, "cloud", text) for i, text in enumerate(egress, 1)]


def run_utility(config: TandemConfig, edge: str, cloud: str, n_items: int, split: str, max_tokens: int,
                policies: Sequence[str], rows_path: Path, seed: int = 0,
                progress: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:  # fmt: skip
    """Answer every (policy, item) not yet in `rows_path`, appending each row as it finishes; all rows back."""
    rows = read_rows(rows_path)
    done = {(r["policy"], r["id"]) for r in rows}
    items = utility_items(n_items, split, seed)
    todo = [(p, item, values) for item, values in items for p in policies if (p, item.id) not in done]
    if not todo:
        return rows
    runtime = Runtime(config)
    try:
        edge_model, cloud_model = runtime.model(edge), runtime.model(cloud)
        detector = build_detectors(list(DEFAULT_DETECTORS))
        models = {p: policy_model(p, edge_model, cloud_model, detector) for p in policies}
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        for i, (policy, item, values) in enumerate(todo, 1):
            row = answer_row(models[policy], policy, item, values, max_tokens)
            with rows_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows.append(row)
            progress(f"[{i}/{len(todo)}] {policy} {item.id}: correct={row['correct']} {row['seconds']} s")
    finally:
        runtime.close()
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summarise(rows: Sequence[dict[str, Any]], policies: Sequence[str]) -> dict[str, Any]:
    """Per policy, on the items every policy answered: accuracy, utility vs raw, fell-back share, leaks."""
    by_policy = {p: {r["id"]: r for r in rows if r["policy"] == p} for p in policies}
    common = sorted(set.intersection(*(set(ids) for ids in by_policy.values()))) if by_policy else []
    out: list[dict[str, Any]] = []
    for p in policies:
        chosen = [by_policy[p][i] for i in common]
        n = max(len(chosen), 1)
        out.append({"policy": p, "items": len(chosen), "accuracy": round(sum(r["correct"] for r in chosen) / n, 3),
                    "fell_back": round(sum(bool(r["fell_back"]) for r in chosen) / n, 3),
                    "retried": round(sum(r["retried"] > 0 for r in chosen) / n, 3),
                    "leaked": sum(len(r["leaked"]) for r in chosen), "inserted": 4 * len(chosen),
                    "cloud_calls": sum(len(r["egress"]) for r in chosen),
                    "median_s": _median([r["seconds"] for r in chosen])})  # fmt: skip
    base = next((r["accuracy"] for r in out if r["policy"] == "none"), None)
    raw = np.array([float(by_policy["none"][i]["correct"]) for i in common]) if "none" in by_policy else None
    for r in out:
        r["utility"] = round(r["accuracy"] / base, 3) if base else None
        if raw is not None and len(common):
            # paired: resample the items, the same ones for the policy and for raw
            diff = np.array([float(by_policy[r["policy"]][i]["correct"]) for i in common]) - raw
            low, high = bootstrap_ci(diff)
            r["vs_raw"] = {"diff": round(float(diff.mean()), 3), "ci_low": round(low, 3), "ci_high": round(high, 3)}
    return {"items": len(common), "rows": out}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def settings(
    config: str, edge: str, cloud: str, n_items: int, split: str, max_tokens: int, seed: int
) -> dict[str, Any]:
    return {"config": config, "edge": edge, "cloud": cloud, "items_asked": n_items, "split": split,
            "max_tokens": max_tokens, "seed": seed, "detectors": ",".join(DEFAULT_DETECTORS),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}  # fmt: skip


def to_markdown(result: dict[str, Any], command: str) -> str:
    cfg, summary = result["settings"], result["summary"]
    lines = [
        "# Privacy modes: utility on GSM8K with PII woven in", "",
        f"Command: `{command}`  ",
        f"Date: {cfg['date']}; machine: {cfg['machine']}; load average at the end {cfg['load']}  ",
        f"Models: edge `{cfg['edge']}`, cloud `{cfg['cloud']}` from config `{cfg['config']}`; detectors "
        f"{cfg['detectors']}; GSM8K `{cfg['split']}` split, {summary['items']} items answered under every policy "
        f"(of {cfg['items_asked']} asked), max_tokens {cfg['max_tokens']}, seed {cfg['seed']}.", "",
        "`none` is raw: the cloud on the unmasked text, PII included. `fell back`: the share of requests whose "
        "rewrite did not keep every non-personal number, the question and its instructions (privacy/facts.py) "
        "after one retry, sent as `pseudonymize` instead (guardian: or whose composed answer lost the expert's "
        "result, answered with the expert's answer). `leaked`: inserted values (name, e-mail, phone, card) found "
        "in the exact egress.", "",
        "`accuracy − raw`: the paired difference, with a bootstrap 95% interval (2000 resamples of the items).", "",
        "| policy | items | accuracy | utility vs raw | accuracy − raw [95% CI] | retried | fell back "
        "| leaked / inserted | cloud calls | median s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in summary["rows"]:
        d = r.get("vs_raw")
        paired = f"{d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else "—"
        cells = [r["policy"], r["items"], r["accuracy"], r["utility"], paired, r["retried"], r["fell_back"],
                 f"{r['leaked']} / {r['inserted']}", r["cloud_calls"], r["median_s"]]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join([*lines, ""])
