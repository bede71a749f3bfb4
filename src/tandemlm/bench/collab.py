"""`tandem bench collab`: the performance collaborations on real items, against the single models' outcome tables.

Each method is a strategy over the config's edge and cloud models (the same classes the pipelines build). It answers
the test-split items both outcome tables cover, in the tables' seeded order, one JSONL row per item under
`bench/outcomes/collab/<dataset>/<method>.jsonl` (resumable: rows already there are kept and skipped). Per method:
accuracy with a bootstrap 95% interval, $ cost, cloud and edge tokens per item (from the trace's engine calls), p50
latency. Baselines edge alone and cloud alone come from the outcome tables on the same items; multiple choice is
scored by the generated letter everywhere (`correct_gen`), as the methods are.

    tandem bench collab --dataset mmlu --methods super-icl,llm-guided --limit 40
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from tandemlm.bench.datasets import Item, chat_prompt, load, sample
from tandemlm.bench.outcomes import MAX_TOKENS, Outcome, read_table
from tandemlm.bench.replay import REPLAYED, Replayed, table_requests
from tandemlm.bench.scoring import correct
from tandemlm.collab.ensemble import CrossVerify, Rank, Vote, VoteKey
from tandemlm.collab.guidance import GuidedCoT, LLMGuided, SuperICL
from tandemlm.collab.pipeline import PlanExecute
from tandemlm.collab.tts import fit_allocation
from tandemlm.errors import ValidationError, missing_extra
from tandemlm.models.base import LanguageModel
from tandemlm.types import Completion, Request

VOTE_KEYS: dict[str, VoteKey] = {"math": "number", "choice": "letter", "code": "code"}
Factory = Callable[[LanguageModel, LanguageModel, str, str, Path], LanguageModel]


def _key(kind: str) -> VoteKey:
    return VOTE_KEYS[kind]


def _text_key(kind: str) -> Literal["number", "letter", "text"]:
    """Cross-verification compares answers by key; code is compared as normalised text."""
    return "number" if kind == "math" else "letter" if kind == "choice" else "text"


#: method name -> strategy over (edge, cloud, dataset, item kind, guide cache directory)
METHODS: dict[str, Factory] = {
    "super-icl": lambda e, c, d, k, g: SuperICL(e, c, name="super-icl"),
    "guided-cot": lambda e, c, d, k, g: GuidedCoT(e, c, name="guided-cot"),
    "hinted": lambda e, c, d, k, g: GuidedCoT(c, e, style="hint", name="hinted"),
    "llm-guided": lambda e, c, d, k, g: LLMGuided(c, e, cache_dir=g, task=d, name="llm-guided"),
    "vote": lambda e, c, d, k, g: Vote([c, e], samples=2, key=_key(k), name="vote"),
    # each model's greedy answer once (its outcome-table row, replayed): the pick costs only the confidence passes
    "vote-greedy": lambda e, c, d, k, g: Vote([c, e], samples=1, key=_key(k), name="vote-greedy"),
    "cross-verify": lambda e, c, d, k, g: CrossVerify(e, c, rounds=1, key=_text_key(k), name="cross-verify"),
    "rank": lambda e, c, d, k, g: Rank([e, c], c, name="rank"),
    "plan-execute": lambda e, c, d, k, g: PlanExecute(c, e, c, name="plan-execute"),
    "cloud-sc3": lambda e, c, d, k, g: Vote([c], samples=3, key=_key(k), weighted=False, name="cloud-sc3"),
}
#: methods that are baselines, not collaborations (cloud self-consistency: three cloud answers, a plain majority)
BASELINE_METHODS = ("cloud-sc3",)


@dataclass(frozen=True)
class Row:
    """One method's answer to one item."""

    id: str
    answer: str
    correct: bool
    cost_usd: float
    cloud_tokens: int
    edge_tokens: int
    latency_s: float
    decision: str | None


def engine_usage(completion: Completion, engines: dict[str, str]) -> tuple[int, int]:
    """(cloud tokens, edge tokens) of the engine calls on a trace (strategies' own events are left out: they repeat
    their children's usage)."""
    cloud = edge = 0
    for e in completion.trace:
        if e.model in engines:
            if engines[e.model] == "cloud":
                cloud += e.usage.total_tokens
            else:
                edge += e.usage.total_tokens
    return cloud, edge


def answer(method: LanguageModel, item: Item, engines: dict[str, str]) -> Row:
    """The method's answer to the item. Its latency counts a replayed member answer at the table's latency (summed:
    an upper bound where members answered at the same time)."""
    request = Request.of(chat_prompt(item), max_tokens=MAX_TOKENS[item.kind])
    start = time.perf_counter()
    completion = method.generate(request)
    latency = time.perf_counter() - start + sum(e.latency_s for e in completion.trace if e.role == REPLAYED)
    cloud, edge = engine_usage(completion, engines)
    return Row(item.id, completion.text, correct(item, completion.text), completion.cost_usd, cloud, edge,
               round(latency, 3), completion.decision)  # fmt: skip


def test_items(dataset: str, outcomes: Path, limit: int | None) -> tuple[list[Item], dict[str, dict[str, Outcome]]]:
    """The test-split items both outcome tables cover, in the tables' seeded order (`limit` first ones), and the
    tables' rows by model and item id."""
    tables = {m: {r.id: r for r in read_table(outcomes / dataset / f"{m}.jsonl")} for m in ("edge", "cloud")}
    if not tables["edge"] or not tables["cloud"]:
        raise ValidationError(f"no outcome tables for {dataset} under {outcomes} (tandem bench outcomes builds them)")
    both = {i for i in tables["edge"] if i in tables["cloud"] and tables["edge"][i].split == "test"}
    items = [item for item in sample(load(dataset), None) if item.id in both]
    return items[:limit] if limit is not None else items, tables


def bootstrap_ci(values: np.ndarray, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean over `draws` resamples of the items."""
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_gain(after: Sequence[float], before: Sequence[float]) -> dict[str, Any]:
    """Mean per-item difference of two paired score lists, its bootstrap 95% interval (resampling the
    differences), and the items it won (after > before) and lost."""
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    if not len(diff):
        return {"gain": None, "ci_low": None, "ci_high": None, "won": 0, "lost": 0}
    low, high = bootstrap_ci(diff)
    return {"gain": round(float(diff.mean()), 4), "ci_low": round(low, 4), "ci_high": round(high, 4),
            "won": int((diff > 0).sum()), "lost": int((diff < 0).sum())}  # fmt: skip


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    right = np.array([float(r["correct"]) for r in rows])
    low, high = bootstrap_ci(right)
    return {
        "n": len(rows),
        "accuracy": float(right.mean()) if len(rows) else None,
        "ci_low": low,
        "ci_high": high,
        "cost_usd": float(np.mean([r["cost_usd"] for r in rows])) if rows else None,
        "cloud_tokens": float(np.mean([r["cloud_tokens"] for r in rows])) if rows else None,
        "edge_tokens": float(np.mean([r["edge_tokens"] for r in rows])) if rows else None,
        "p50_latency_s": float(np.median([r["latency_s"] for r in rows])) if rows else None,
        "total_latency_s": float(np.sum([r["latency_s"] for r in rows])) if rows else None,
    }


def baseline_rows(items: list[Item], table: dict[str, Outcome], location: str) -> list[dict[str, Any]]:
    out = []
    for item in items:
        o = table[item.id]
        right = o.correct_gen if item.kind == "choice" and o.correct_gen is not None else o.correct
        tokens = o.tokens_in + o.tokens_out
        out.append({"id": item.id, "correct": right, "cost_usd": o.cost_usd, "latency_s": o.latency_s,
                    "cloud_tokens": tokens if location == "cloud" else 0,
                    "edge_tokens": tokens if location == "edge" else 0})  # fmt: skip
    return out


def run_dataset(
    dataset: str,
    methods: list[str],
    pair: Callable[[], tuple[LanguageModel, LanguageModel]],
    *,
    outcomes: Path,
    limit: int | None,
    progress: bool = True,
    run: bool = True,
    tts_save: Path | None = None,
    replay: bool = True,
) -> dict[str, Any]:
    """Run (or resume) every method on the dataset's test items and summarise them with the baselines. `pair`
    gives the (edge, cloud) models, asked for only when some item is still to answer; their names are the
    config's `edge` and `cloud`. `run` False: only summarise the rows already there (an interrupted run).
    `replay`: a member asked exactly what the outcome table asked answers from the table (bench/replay.py)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValidationError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    items, tables = test_items(dataset, outcomes, limit)
    engines: dict[str, str] = {"edge": "edge", "cloud": "cloud"}
    out: dict[str, Any] = {"items": len(items), "methods": {}, "baselines": {}, "seconds": {}}
    per_item: dict[str, dict[str, dict[str, Any]]] = {}  # method or baseline -> item id -> row
    for location in ("edge", "cloud"):
        rows = baseline_rows(items, tables[location], location)
        out["baselines"][f"{location} alone"] = summarise(rows)
        per_item[f"{location} alone"] = {r["id"]: r for r in rows}
    if items and items[0].kind == "choice":  # the cloud's best letter by option likelihood (no decoding)
        rows = baseline_rows(items, tables["cloud"], "cloud")
        for row, item in zip(rows, items, strict=True):
            row["correct"] = tables["cloud"][item.id].correct
        out["baselines"]["cloud alone, by option likelihood"] = summarise(rows)
    root = outcomes / "collab" / dataset
    for name in methods:
        path = root / f"{name}.jsonl"
        done = {r["id"]: r for r in _read(path)}
        todo = [item for item in items if item.id not in done] if run else []
        replayed: dict[str, Replayed] = {}
        start = time.perf_counter()
        if todo:  # nothing to answer: no model is loaded and no empty row file is left behind
            edge, cloud = pair()
            if replay and todo[0].kind != "choice":
                replayed = {"edge": Replayed(edge, table_requests(todo, tables["edge"])),
                            "cloud": Replayed(cloud, table_requests(todo, tables["cloud"]))}  # fmt: skip
                edge, cloud = replayed["edge"], replayed["cloud"]
            strategy = METHODS[name](edge, cloud, dataset, todo[0].kind, root / "guides")
            start = time.perf_counter()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                for item in tqdm(todo, desc=f"{name} {dataset}", disable=not progress, unit="item"):
                    row = asdict(answer(strategy, item, engines))
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    done[item.id] = row
        rows = [done[item.id] for item in items if item.id in done]
        per_item[name] = {r["id"]: r for r in rows}
        kind = "baselines" if name in BASELINE_METHODS else "methods"
        out[kind][name] = summarise(rows)
        if len(rows) < len(items):  # an interrupted method: the cloud alone on the very items it answered
            answered = [item for item in items if item.id in done]
            cloud_same = summarise(baseline_rows(answered, tables["cloud"], "cloud"))
            out[kind][name]["cloud_on_same_items"] = {k: cloud_same[k] for k in ("accuracy", "ci_low", "ci_high")}
        out["seconds"][name] = {"new_items": len(todo), "wall_s": round(time.perf_counter() - start, 1)}
        if replayed:
            out["seconds"][name]["replayed"] = {where: m.replayed for where, m in replayed.items()}
    curve = {b: per_item[b] for b in COST_CURVE if per_item.get(b)}
    for name, summary in out["methods"].items():
        summary["matched_cost"] = matched_cost(per_item[name], curve)
    cloud_cost = out["baselines"]["cloud alone"]["cost_usd"]
    guided = out["methods"].get("llm-guided")
    if guided is not None and guided["n"] and cloud_cost:  # a dataset it has not run on has no cost
        guided["cloud_cost_of_cloud_alone"] = guided["cost_usd"] / cloud_cost
    out["tts"] = tts_offline(dataset, outcomes, save=tts_save)
    return out


#: the baselines' cost curve, cheapest first; a method is compared with the curve at its own cost
COST_CURVE = ("edge alone", "cloud alone", "cloud-sc3")


def matched_cost(
    method: dict[str, dict[str, Any]], curve: dict[str, dict[str, dict[str, Any]]], draws: int = 2000, seed: int = 0
) -> dict[str, Any] | None:
    """The baselines' cost curve at the method's cost, on the items the method and every curve baseline answered.
    The two neighbouring baselines whose mean costs on those items bracket the method's are mixed per item,
    (1 - share) * cheaper + share * dearer, with the share that puts the mix at the method's mean cost (so a
    method costing 2x the cloud, with cloud-sc3 at 3x, meets the cloud alone on half the items and cloud-sc3 on
    the other half, in expectation); beyond the curve's ends the end baseline is taken (`capped`). The gain is
    paired: the method's per-item correctness minus the mix's, with a bootstrap 95% interval over the items. None
    when the method or the curve has no common item."""
    ids = [i for i in method if all(i in rows for rows in curve.values())]
    if not ids or not curve:
        return None
    mine = np.array([float(method[i]["correct"]) for i in ids])
    cost = float(np.mean([method[i]["cost_usd"] for i in ids]))
    names = sorted(curve, key=lambda b: np.mean([curve[b][i]["cost_usd"] for i in ids]))
    costs = [float(np.mean([curve[b][i]["cost_usd"] for i in ids])) for b in names]
    right = {b: np.array([float(curve[b][i]["correct"]) for i in ids]) for b in names}
    upper = next((k for k, c in enumerate(costs) if c >= cost), None)
    if upper is None or upper == 0:  # dearer than the dearest baseline, or as cheap as the cheapest
        end = names[-1] if upper is None else names[0]
        pair, share, mix, capped = [end], 0.0, right[end], cost != costs[names.index(end)]
    else:
        lo, hi = names[upper - 1], names[upper]
        span = costs[upper] - costs[upper - 1]
        share = (cost - costs[upper - 1]) / span if span > 0 else 1.0
        pair, mix, capped = [lo, hi], (1 - share) * right[lo] + share * right[hi], False
    diff = mine - mix
    low, high = bootstrap_ci(diff, draws, seed)
    cloud = costs[names.index("cloud alone")] if "cloud alone" in names else None
    return {"n": len(ids), "cost_of_cloud": cost / cloud if cloud else None, "between": pair, "share": share,
            "capped": capped, "accuracy": float(mine.mean()), "baseline_accuracy": float(mix.mean()),
            "gain": float(diff.mean()), "gain_ci": [float(low), float(high)]}  # fmt: skip


def tts_offline(
    dataset: str, outcomes: Path, shares: Sequence[float] = (0.25, 0.5, 0.75), bins: int = 4, save: Path | None = None
) -> dict[str, Any]:
    """The TTS allocator on the outcome tables' two measured arms (small: the edge's answer, large: the cloud's),
    fitted on the train split at budgets of `shares` x the cloud-alone cost, applied to the test split, against
    uniform allocation (a fixed share of queries to the cloud, in expectation) at the same test cost. Both arms
    are priced from the tables; `save` writes each fitted allocation there (for a `tts` pipeline)."""
    tables = {m: {r.id: r for r in read_table(outcomes / dataset / f"{m}.jsonl")} for m in ("edge", "cloud")}
    ids = [i for i in tables["edge"] if i in tables["cloud"]]
    kind = "choice" if dataset == "mmlu" else "other"

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rows = [(tables["edge"][i], tables["cloud"][i]) for i in ids if tables["edge"][i].split == split]
        conf = np.array([np.exp(e.mean_logprob if e.mean_logprob is not None else -30.0) for e, _ in rows])
        small = np.array([float(_right(e, kind)) for e, _ in rows])
        large = np.array([float(_right(c, kind)) for _, c in rows])
        return conf, small, large, np.array([c.cost_usd for _, c in rows])

    train, test = arrays("train"), arrays("test")
    out: dict[str, Any] = {"train_items": len(train[0]), "test_items": len(test[0]), "budgets": []}
    if not len(train[0]) or not len(test[0]):
        return out
    cloud_cost = float(train[3].mean())
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(test[0]), size=(2000, len(test[0])))
    for share in shares:
        correct = {"small": train[1], "large": train[2]}
        cost = {"small": np.zeros(len(train[0])), "large": train[3]}
        fitted = fit_allocation(train[0], correct, cost, share * cloud_cost, bins=bins)
        to_large = np.array([fitted.arm(c) == "large" for c in test[0]])
        acc = np.where(to_large, test[2], test[1])
        spent = np.where(to_large, test[3], 0.0)
        p = float(spent.sum() / test[3].sum()) if test[3].sum() else 0.0  # uniform's share at the same test cost
        uniform = (1 - p) * test[1] + p * test[2]
        gains = acc[draws].mean(axis=1) - uniform[draws].mean(axis=1)
        low, high = np.percentile(gains, [2.5, 97.5])
        out["budgets"].append({
            "budget_share_of_cloud": share, "arms": list(fitted.arms), "edges": list(fitted.edges),
            "train_accuracy": fitted.train_accuracy, "test_accuracy": float(acc.mean()),
            "test_cost_usd": float(spent.mean()), "uniform_accuracy": float(uniform.mean()),
            "gain": float(acc.mean() - uniform.mean()), "gain_ci": [float(low), float(high)],
        })  # fmt: skip
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            fitted.save(save / f"tts_{dataset}_{int(share * 100)}.json")
    return out


def _right(o: Outcome, kind: str) -> bool:
    return o.correct_gen if kind == "choice" and o.correct_gen is not None else o.correct


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets on what was run: a collaboration whose 95% interval is above the cloud's accuracy
    (per dataset), and LLMGuided's amortised cloud cost under 10% of cloud-alone."""
    above: dict[str, list[str]] = {}
    guided: dict[str, float | None] = {}
    for dataset, r in result["datasets"].items():
        cloud_acc = r["baselines"]["cloud alone"]["accuracy"]
        above[dataset] = [
            m
            for m, s in r["methods"].items()
            if s["n"] and s["ci_low"] > s.get("cloud_on_same_items", {}).get("accuracy", cloud_acc)
        ]
        if r["methods"].get("llm-guided", {}).get("n"):  # run on this dataset
            guided[dataset] = r["methods"]["llm-guided"].get("cloud_cost_of_cloud_alone")
    matched = {d: [m for m, s in r["methods"].items() if (s.get("matched_cost") or {}).get("gain_ci", [0])[0] > 0]
               for d, r in result["datasets"].items()}  # fmt: skip
    return {
        "interval_above_cloud": above,
        "beats_cloud_on_two_datasets": sum(bool(v) for v in above.values()) >= 2,
        "gain_over_matched_cost_above_zero": matched,
        "llm_guided_cost_share": guided,
        "llm_guided_under_10pct": {d: v is not None and v < 0.10 for d, v in guided.items()},
    }


def plot(dataset: str, r: dict[str, Any], path: Path) -> None:
    """Accuracy (with its interval) against $ cost per item, one point per method and baseline."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise missing_extra("matplotlib", "bench") from err
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for group, marker in (("baselines", "s"), ("methods", "o")):
        for name, s in r[group].items():
            if not s["n"]:
                continue
            acc, cost = s["accuracy"], s["cost_usd"] * 1000
            ax.errorbar([cost], [acc], yerr=[[acc - s["ci_low"]], [s["ci_high"] - acc]], fmt=marker, capsize=3)
            ax.annotate(name, (cost, acc), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(xlabel="$ per 1k requests", ylabel="accuracy (test split)",
           title=f"{dataset}: accuracy vs cost ({r['items']} test items, 95% bootstrap intervals)")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        "# Performance collaborations (`tandem bench collab`)",
        "",
        f"Command: `{command}`",
        "",
        f"Models: {result.get('models', 'the config edge and cloud')}; prices from the config. Test-split items both "
        "outcome tables cover; per-item means; 95% bootstrap intervals (2000 resamples). Baselines edge/cloud alone "
        "are the outcome tables' rows on the same items (multiple choice scored by the generated letter).",
        "",
    ]
    for dataset, r in result["datasets"].items():
        lines += [f"## {dataset} ({r['items']} test items)", "",
                  "| method | n | accuracy | 95% CI | $ / 1k req | cloud tok | edge tok | p50 latency s |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for group in ("baselines", "methods"):
            for name, s in r[group].items():
                if not s["n"]:
                    continue
                label = f"*{name}*" if group == "baselines" else name
                same = s.get("cloud_on_same_items")
                note = f" (cloud alone on these {s['n']}: {same['accuracy']:.3f})" if same else ""
                lines.append(
                    f"| {label} | {s['n']} | {s['accuracy']:.3f}{note} | [{s['ci_low']:.3f}, {s['ci_high']:.3f}] | "
                    f"{s['cost_usd'] * 1000:.4f} | {s['cloud_tokens']:.0f} | {s['edge_tokens']:.0f} | "
                    f"{s['p50_latency_s']:.2f} |"
                )
        matched = [(name, s["matched_cost"]) for name, s in r["methods"].items() if s.get("matched_cost")]
        if matched:
            lines += ["", "Against the baselines' cost curve (edge alone, cloud alone, cloud-sc3 where it ran) at each "
                      "method's own cost: per item, the two baselines whose costs bracket the method's, mixed in the "
                      "share that matches its cost; gain paired over the items both cover:", "",
                      "| method | n | cost (x cloud) | baseline at that cost | baseline accuracy | method accuracy "
                      "| gain [95% CI] |",
                      "|---|---|---|---|---|---|---|"]  # fmt: skip
            for name, m in matched:
                if len(m["between"]) == 2:
                    mix = f"{1 - m['share']:.2f} {m['between'][0]} + {m['share']:.2f} {m['between'][1]}"
                else:
                    mix = m["between"][0] + (" (the method costs more)" if m["capped"] else "")
                times = f"{m['cost_of_cloud']:.2f}" if m["cost_of_cloud"] is not None else "—"
                low, high = m["gain_ci"]
                lines.append(f"| {name} | {m['n']} | {times} | {mix} | {m['baseline_accuracy']:.3f} | "
                             f"{m['accuracy']:.3f} | {m['gain']:+.3f} [{low:+.3f}, {high:+.3f}] |")  # fmt: skip
        tts = r.get("tts", {})
        if tts.get("budgets"):
            lines += ["", f"TTS allocator on the outcome tables' arms (edge answer / cloud answer; fitted on "
                      f"{tts['train_items']} train items, applied to {tts['test_items']} test items), against "
                      "uniform allocation at the same test cost:", "",
                      "| budget (x cloud cost) | arms by confidence bin | test accuracy | $ / 1k req | uniform "
                      "| gain [95% CI] |",
                      "|---|---|---|---|---|---|"]  # fmt: skip
            for b in tts["budgets"]:
                lines.append(
                    f"| {b['budget_share_of_cloud']:.2f} | {', '.join(b['arms'])} | {b['test_accuracy']:.3f} | "
                    f"{b['test_cost_usd'] * 1000:.4f} | {b['uniform_accuracy']:.3f} | {b['gain']:+.3f} "
                    f"[{b['gain_ci'][0]:+.3f}, {b['gain_ci'][1]:+.3f}] |"
                )
        times = ", ".join(
            f"{m} {t['new_items']} new items in {t['wall_s']:.0f} s"
            + (
                f" ({t['replayed']['edge']} edge and {t['replayed']['cloud']} cloud answers replayed from the outcome "
                "tables, at their table latency)"
                if t.get("replayed")
                else ""
            )
            for m, t in r["seconds"].items()
        )
        spent = ", ".join(
            f"{m} {s['total_latency_s']:.0f} s" for m, s in r["methods"].items() if s.get("total_latency_s")
        )
        lines += ["", f"Wall time of this run: {times or 'nothing new'}. Answering time of the stored rows (sum of "
                  f"per-item latencies, on the shared CPU): {spent or 'none'}.", ""]  # fmt: skip
    t = result.get("targets", {})
    lines += ["## Targets", "", f"- interval above the cloud's accuracy: {t.get('interval_above_cloud')}",
              f"- beats the cloud on two datasets: {t.get('beats_cloud_on_two_datasets')}",
              "- gain over the baselines at matched cost, interval above 0: "
              f"{t.get('gain_over_matched_cost_above_zero')}",
              f"- LLMGuided's amortised cloud cost / cloud-alone: {t.get('llm_guided_cost_share')} "
              f"(target < 0.10: {t.get('llm_guided_under_10pct')})", ""]  # fmt: skip
    return "\n".join(lines)
