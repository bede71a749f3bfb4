"""`tandem bench route`: cascades and query routers evaluated offline on stored outcome tables.

For one dataset, the edge and cloud tables (bench/outcomes/DATASET/{edge,cloud}.jsonl) are joined by
item. Routers are fitted and every threshold or "best method" choice is made on the train split; all
reported numbers are on the test split only. A method is a score per item (higher → cloud); its
curve is the sweep over every threshold. Cascades pay the edge answer on every item and score it
with the edge model's own confidence (stored in the table); query routers decide from the prompt.

Each test number comes with a bootstrap 95% interval: the test items are resampled with replacement
(`RESAMPLES` times, seeded, the same resamples for every method) and the metric recomputed on each, the
method's scores and its train-fitted budget threshold held fixed; the interval is the 2.5–97.5
percentile range. It measures how much the number owes to which test items were drawn, not the
variance of fitting on another train split.
"""

from __future__ import annotations

import inspect
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tandemlm.bench import metrics
from tandemlm.bench.datasets import chat_prompt, load
from tandemlm.bench.outcomes import Outcome, read_table
from tandemlm.collab.routing import ROUTERS, MiniLM, Router, threshold_for_share
from tandemlm.collab.routing.embeddings import MAX_SEQ_LENGTH, Embedder
from tandemlm.collab.routing.neural import MlpRouter
from tandemlm.collab.routing.static import StaticMiniLM
from tandemlm.errors import ModelSourceError, missing_extra

RESAMPLES, SEED = 1000, 0  # bootstrap resamples of the test items for the 95% intervals, and their seed
BUDGET = 0.5  # the cloud share the budget-mode operating point is calibrated to, on train
# each cascade signal from the edge table, on the scale the live signal (collab/confidence.py) uses, so a budget
# threshold here is a `threshold:` for a cascade pipeline (None: not measured); `examples` counts an item
# without examples as passing, as the live signal does
CASCADE_SIGNALS: dict[str, Callable[[Outcome], float | None]] = {
    "cascade:logprob": lambda o: None if o.mean_logprob is None else math.exp(o.mean_logprob),
    "cascade:min_logprob": lambda o: None if o.min_logprob is None else math.exp(o.min_logprob),
    "cascade:verify": lambda o: o.p_yes,
    "cascade:consistency": lambda o: o.agreement,
    "cascade:examples": lambda o: 1.0 if o.examples is None else float(o.examples),
}
ROUTER_NAMES = ("length", "knn", "logistic", "mf", "mlp", "signals")
EMBEDDING_ROUTERS = ("knn", "logistic", "mf", "mlp")
EMBEDDERS = ("static", "minilm")  # the embedding routers read: MiniLM's distilled token table, or MiniLM itself


@dataclass(frozen=True)
class Split:
    prompts: list[str]
    edge: list[Outcome]
    cloud: list[Outcome]

    @property
    def edge_correct(self) -> np.ndarray:
        return np.array([o.correct for o in self.edge], dtype=np.float64)

    @property
    def cloud_correct(self) -> np.ndarray:
        return np.array([o.correct for o in self.cloud], dtype=np.float64)

    @property
    def cloud_cost(self) -> np.ndarray:
        return np.array([o.cost_usd for o in self.cloud], dtype=np.float64)


def load_splits(dataset: str, outcomes: Path, edge: str = "edge", cloud: str = "cloud") -> dict[str, Split]:
    """The items both tables cover, as train and test splits, in a fixed order."""
    tables = {m: {o.id: o for o in read_table(outcomes / dataset / f"{m}.jsonl")} for m in (edge, cloud)}
    if not tables[edge] or not tables[cloud]:
        raise ModelSourceError(
            f"no outcome tables for {dataset} under {outcomes}; build them with: "
            f"tandem bench outcomes --dataset {dataset} --model {edge} (and --model {cloud})"
        )
    items = {item.id: item for item in load(dataset)}
    ids = sorted(set(tables[edge]) & set(tables[cloud]))
    out = {}
    for split in ("train", "test"):
        chosen = [i for i in ids if tables[edge][i].split == split]
        out[split] = Split(
            [chat_prompt(items[i]) for i in chosen],
            [tables[edge][i] for i in chosen],
            [tables[cloud][i] for i in chosen],
        )
    return out


FOLDS = 5  # routers' train-split scores are out of fold, so the best-on-train pick does not reward overfitting


class _Memo:
    """Caches embeddings by text while routers are fitted and cross-validated (`bypass` for timing)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.spec, self.bypass = inner, inner.spec, False
        self._seen: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.bypass:
            return self.inner.embed(texts)
        new = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if new:
            self._seen.update(zip(new, self.inner.embed(new), strict=True))
        return np.stack([self._seen[t] for t in texts])


def method_scores(
    train: Split, test: Split, routers: tuple[str, ...] = ROUTER_NAMES, embedder: Embedder | None = None
) -> dict[str, dict[str, Any]]:
    """Per method: scores on train and on test (higher → cloud), and for routers the fitted router. A router's
    train scores are out of fold (5-fold cross-validation on train); its test scores come from one fit on all
    of train. A router that reads the edge's draft is given the measured cascade signals and listed as a
    cascade (`cascade:NAME`): like a cascade, it pays the edge's answer on every item."""
    out: dict[str, dict[str, Any]] = {}
    signals: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
    for name, read in CASCADE_SIGNALS.items():
        values = [read(o) for o in train.edge + test.edge]
        if any(v is None for v in values) or len(set(values[: len(train.edge)])) == 1:
            continue  # not measured for this dataset (no samples taken, no code examples), or constant on train
        for split, rows in (("train", train.edge), ("test", test.edge)):
            signals[split][name.split(":")[1]] = np.array([read(o) for o in rows], dtype=np.float64)
        out[name] = {"train": -signals["train"][name.split(":")[1]], "test": -signals["test"][name.split(":")[1]]}
    for name in routers:
        cls = ROUTERS[name]
        target = _target(name, train)
        if cls.reads_draft and not signals["train"]:
            continue  # no draft signal measured for this dataset

        def build(cls: type[Router] = cls) -> Any:  # Any: a draft router's fit and score take signals
            factory: Any = cls  # embedding routers take the (memoised) embedder; the others take none
            takes_embedder = "embedder" in inspect.signature(cls).parameters
            return factory(embedder=embedder) if takes_embedder and embedder is not None else cls()

        def draft(split: str, rows: np.ndarray | slice = slice(None), cls: type[Router] = cls) -> dict[str, Any]:
            return {"signals": {k: v[rows] for k, v in signals[split].items()}} if cls.reads_draft else {}

        folds = np.arange(len(train.prompts)) % FOLDS
        oof = np.zeros(len(train.prompts))
        for k in range(FOLDS):
            held = folds == k
            fitted = build().fit(
                [p for p, h in zip(train.prompts, held, strict=True) if not h], target[~held], **draft("train", ~held)
            )
            oof[held] = fitted.score([p for p, h in zip(train.prompts, held, strict=True) if h], **draft("train", held))
        router = build().fit(train.prompts, target, **draft("train"))
        label = f"{'cascade' if cls.reads_draft else 'router'}:{name}"
        out[label] = {
            "train": oof,
            "test": router.score(test.prompts, **draft("test")),
            "router": router,
            "inputs": [draft("test", slice(i, i + 1)) for i in range(len(test.prompts))],
        }
    return out


def _target(router: str, split: Split) -> np.ndarray:
    """What a router learns: where the cloud fixes the edge (1 when the cloud is right and the edge wrong, else
    0); the MF router learns pairwise wins, as RouteLLM's does (1 the cloud won, 0 the edge won, ½ a tie)."""
    gain = split.cloud_correct - split.edge_correct
    return (gain + 1) / 2 if router == "mf" else np.clip(gain, 0.0, 1.0)


def evaluate(
    dataset: str,
    outcomes: Path,
    routers: tuple[str, ...] = ROUTER_NAMES,
    save_routers: Path | None = None,
    resamples: int = RESAMPLES,
    embed_tokens: int = MAX_SEQ_LENGTH,
    embedder: str = "static",
) -> dict[str, Any]:
    """Every method's test curve and metrics on one dataset, with bootstrap 95% intervals. The embedding
    routers read `embedder`'s embeddings: "static" (MiniLM's distilled token table, the whole prompt) or
    "minilm" (the transformer, prompts cut to `embed_tokens` tokens)."""
    splits = load_splits(dataset, outcomes)
    train, test = splits["train"], splits["test"]
    memo = _Memo(make_embedder(embedder, embed_tokens)) if any(n in EMBEDDING_ROUTERS for n in routers) else None
    e_acc, c_acc = float(test.edge_correct.mean()), float(test.cloud_correct.mean())
    draws = np.random.default_rng(SEED).integers(0, len(test.prompts), size=(resamples, len(test.prompts)))
    fixes = test.cloud_correct > test.edge_correct  # the items a router gains on; the oracle sends these alone
    rows: dict[str, dict[str, Any]] = {}
    for name, scores in method_scores(train, test, routers, memo).items():
        curve = metrics.sweep(scores["test"], test.edge_correct, test.cloud_correct)
        rows[name] = _summary(curve, e_acc, c_acc)
        rows[name]["gain_auc"] = metrics.auroc(fixes, scores["test"])
        threshold = threshold_for_share(scores["train"], BUDGET)
        to_cloud = scores["test"] > threshold
        accuracy = float(np.where(to_cloud, test.cloud_correct, test.edge_correct).mean())
        rows[name]["budget"] = {
            # the threshold as the strategy's config takes it: a cascade's signal is −score
            "threshold": threshold if "router" in scores else -threshold,
            "share": float(to_cloud.mean()),
            "accuracy": accuracy,
            "of_cloud": accuracy / c_acc if c_acc > 0 else None,
            "cost_usd": float(test.cloud_cost[to_cloud].sum()),
        }
        rows[name]["ci"] = bootstrap(scores["test"], to_cloud, test.edge_correct, test.cloud_correct, draws)
        rows[name]["train_apgr"] = _safe_apgr(
            metrics.sweep(scores["train"], train.edge_correct, train.cloud_correct),
            float(train.edge_correct.mean()), float(train.cloud_correct.mean()),
        )  # fmt: skip
        # ($ per 1k requests, accuracy) with the cloud's measured cost per item
        rows[name]["cost_curve"] = metrics.sweep(
            scores["test"], test.edge_correct, test.cloud_correct, test.cloud_cost * 1000
        )
        if "router" in scores:
            if memo is not None:
                memo.bypass = True  # time the whole decision: embedding included
            rows[name]["decision_ms"] = _decision_ms(scores["router"], test.prompts, scores["inputs"])
            if save_routers is not None:
                rows[name]["saved"] = str(scores["router"].save(save_routers / f"{dataset}-{name.split(':')[1]}.npz"))
    rows["random"] = _summary(metrics.random_curve(e_acc, c_acc), e_acc, c_acc)
    rows["oracle"] = _summary(metrics.oracle(test.edge_correct, test.cloud_correct), e_acc, c_acc)
    rows["oracle"]["ci"] = bootstrap(None, None, test.edge_correct, test.cloud_correct, draws)
    candidates = [n for n in rows if n not in ("random", "oracle")]
    best = max(candidates, key=lambda n: -1e9 if rows[n]["train_apgr"] is None else rows[n]["train_apgr"], default=None)
    return {
        "dataset": dataset, "train_items": len(train.prompts), "test_items": len(test.prompts),
        "edge_accuracy": e_acc, "cloud_accuracy": c_acc, "cloud_cost_usd": float(test.cloud_cost.sum()),
        "cloud_fixes": int(fixes.sum()), "edge_only": int((test.edge_correct > test.cloud_correct).sum()),
        "resamples": resamples, "embedder": memo.spec if memo else None, "best_on_train": best, "methods": rows,
    }  # fmt: skip


def make_embedder(name: str, embed_tokens: int = MAX_SEQ_LENGTH) -> Embedder:
    """The embedder the bench's embedding routers read (see `EMBEDDERS`)."""
    if name == "static":
        return StaticMiniLM()
    if name == "minilm":
        return MiniLM(max_tokens=embed_tokens)
    raise ValueError(f"unknown embedder {name!r}; known: {', '.join(EMBEDDERS)}")


#: One routing decision's embedder, timed in the report: (label, embedder factory). The first row is the
#: MiniLM decision as it was (full 256-token cut, BLAS's own threads), the others what replaced it.
LATENCY_CONFIGS: tuple[tuple[str, Callable[[], Embedder]], ...] = (
    ("MiniLM, 256 tokens, BLAS default threads (before)", lambda: MiniLM(decision_threads=None)),
    ("MiniLM, 256 tokens, 1 BLAS thread", lambda: MiniLM()),
    ("MiniLM, 64 tokens, 1 BLAS thread", lambda: MiniLM(max_tokens=64)),
    ("MiniLM, 32 tokens, 1 BLAS thread", lambda: MiniLM(max_tokens=32)),
    ("static MiniLM table, whole prompt", StaticMiniLM),
)


def decision_latency(
    prompts: list[str], configs: Sequence[tuple[str, Callable[[], Embedder]]] = LATENCY_CONFIGS, rounds: int = 1
) -> list[dict[str, Any]]:
    """p50/p90 wall and p50 CPU milliseconds of one routing decision (tokenize, embed, MLP score) per embedder
    config, over `prompts` one at a time. The configs take turns prompt by prompt, so a change in the machine's
    load falls on all of them alike; the MLP's weights are random (the cost does not depend on them)."""
    rng = np.random.default_rng(SEED)
    routers = []
    for _, factory in configs:
        router = MlpRouter(embedder=factory())
        d, hidden = router.embedder.embed(["warm up"]).shape[1], router.hidden
        router.set_state({
            "w1": rng.normal(size=(d, hidden)), "b1": np.zeros(hidden), "w2": rng.normal(size=hidden),
            "b2": np.zeros(1), "mean": np.zeros(d), "std": np.ones(d),
        })  # fmt: skip
        routers.append(router)
    wall: list[list[float]] = [[] for _ in configs]
    cpu: list[list[float]] = [[] for _ in configs]
    for _ in range(rounds):
        for prompt in prompts:
            for i, router in enumerate(routers):
                start, start_cpu = time.perf_counter(), time.process_time()
                router.score([prompt])
                wall[i].append((time.perf_counter() - start) * 1000)
                cpu[i].append((time.process_time() - start_cpu) * 1000)
    return [
        {
            "config": label,
            "spec": router.embedder.spec,
            "decisions": len(w),
            "p50_ms": float(np.percentile(w, 50)),
            "p90_ms": float(np.percentile(w, 90)),
            "cpu_p50_ms": float(np.percentile(c, 50)),
        }
        for (label, _), router, w, c in zip(configs, routers, wall, cpu, strict=True)
    ]


def curve_arrays(scores: np.ndarray, edge: np.ndarray, cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`metrics.sweep`'s points as (shares, accuracies), cheapest first, in one sort: the items ranked by score,
    the curve has a point after each group of tied scores (and at share 0)."""
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    gains = np.concatenate([[0.0], np.cumsum(cloud[order] - edge[order])])
    cuts = np.concatenate([[0], np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, [n]])
    return cuts / n, (edge.sum() + gains[cuts]) / n


def bootstrap(
    scores: np.ndarray | None,
    to_cloud: np.ndarray | None,
    edge: np.ndarray,
    cloud: np.ndarray,
    draws: np.ndarray,
) -> dict[str, Any]:
    """95% percentile intervals of APGR, CPT(50%), and (with `to_cloud`, the train-fitted budget decisions)
    the budget point's accuracy and its ratio to always-cloud, over `draws` (one row of item indices per
    resample). `scores` None: the oracle's curve. APGR and CPT exist only where the cloud is ahead of the edge:
    on no resample when it is not ahead on the whole test split; otherwise a resample where it is not is left
    out of those two (`defined` counts the rest)."""
    apgrs, cpts, accs, ratios = [], [], [], []
    gap = cloud.mean() > edge.mean()
    for rows in draws:
        e, c = edge[rows], cloud[rows]
        e_acc, c_acc = float(e.mean()), float(c.mean())
        if to_cloud is not None:
            acc = float(np.where(to_cloud[rows], c, e).mean())
            accs.append(acc)
            if c_acc > 0:
                ratios.append(acc / c_acc)
        if not gap or c_acc <= e_acc:
            continue
        if scores is None:
            curve = metrics.oracle(e, c)
            x, y = np.array([p[0] for p in curve]), np.array([p[1] for p in curve])
        else:
            x, y = curve_arrays(scores[rows], e, c)
        apgrs.append((float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)) - e_acc) / (c_acc - e_acc))
        target = e_acc + 0.5 * (c_acc - e_acc)
        i = int(np.argmax(y >= target))  # the anchor at share 1 always reaches it
        cpts.append(
            float(x[0]) if i == 0 else float(x[i - 1] + (target - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1]))
        )
    out: dict[str, Any] = {"defined": len(apgrs), "apgr": _interval(apgrs), "cpt50": _interval(cpts)}
    if to_cloud is not None:
        out |= {"budget_accuracy": _interval(accs), "budget_of_cloud": _interval(ratios)}
    return out


def _embedder_spec(result: dict[str, Any]) -> str:
    specs = {d.get("embedder") for d in result["datasets"]} - {None}
    return ", ".join(sorted(specs)) or "no"


def _latency_markdown(timed: dict[str, Any] | None) -> list[str]:
    if not timed:
        return []
    lines = [
        "## One routing decision", "",
        f"Tokenize, embed and score one prompt with the MLP router, for {timed['rows'][0]['decisions']} test "
        f"prompts (the first {LATENCY_PROMPTS} of each dataset's test split) one at a time, the configs taking "
        "turns prompt by prompt; "
        f"1-minute load average {timed['load_average'][0]:.2f}, {timed['load_average'][1]:.2f} (start, end). "
        "Wall time is what a request waits and grows with the load others put on the 2 CPUs; CPU time is this "
        "process's own (of all its threads).", "",
        "| embedder | spec | p50 ms | p90 ms | CPU p50 ms |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for row in timed["rows"]:
        times = f"{row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['cpu_p50_ms']:.2f}"
        lines.append(f"| {row['config']} | `{row['spec']}` | {times} |")
    return [*lines, ""]


def _load(result: dict[str, Any]) -> str:
    load = result.get("load_average")
    return "not recorded" if not load else f"{load[0]:.2f}, {load[1]:.2f}"


def _interval(values: list[float]) -> list[float] | None:
    return [float(v) for v in np.percentile(values, [2.5, 97.5])] if values else None


def _summary(curve: list[tuple[float, float]], e_acc: float, c_acc: float) -> dict[str, Any]:
    gap = c_acc > e_acc  # PGR and its area mean nothing unless the cloud is the stronger model
    return {
        "curve": curve,
        "apgr": metrics.apgr(curve, e_acc, c_acc) if gap else None,
        "cpt50": metrics.cpt(curve, e_acc, c_acc, 0.5) if gap else None,
        "cpt80": metrics.cpt(curve, e_acc, c_acc, 0.8) if gap else None,
        "aiq": metrics.aiq(curve, cost_range=(0.0, 1.0)),
        "share_at_95": metrics.share_at_quality(curve, 0.95 * c_acc),
    }


def _safe_apgr(curve: list[tuple[float, float]], e_acc: float, c_acc: float) -> float | None:
    return metrics.apgr(curve, e_acc, c_acc) if c_acc > e_acc else None


def _decision_ms(router: Any, prompts: list[str], inputs: list[dict[str, Any]]) -> float:
    """Median time to score one request, one at a time, as a gateway would (a draft router: given the draft's
    signals, whose own cost is the edge model's)."""
    times = []
    for prompt, extra in zip(prompts[:50], inputs, strict=False):
        start = time.perf_counter()
        router.score([prompt], **extra)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def run_route_bench(
    datasets: list[str],
    outcomes: Path,
    plots: Path | None,
    save_routers: Path | None = None,
    embed_tokens: int = MAX_SEQ_LENGTH,
    embedder: str = "static",
    latency: bool = True,
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # decision times are wall-clock times on a machine others may share
    results = [
        evaluate(d, outcomes, save_routers=save_routers, embed_tokens=embed_tokens, embedder=embedder) for d in datasets
    ]
    if plots is not None:
        for result in results:
            plot(result, plots / f"route_{result['dataset']}.png")
    timed: dict[str, Any] | None = None
    if latency:
        prompts = [p for d in datasets for p in load_splits(d, outcomes)["test"].prompts[:LATENCY_PROMPTS]]
        load_latency = os.getloadavg()[0]
        rows = decision_latency(prompts)
        timed = {"load_average": [round(load_latency, 2), round(os.getloadavg()[0], 2)], "rows": rows}
    return {
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} CPUs",
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "budget_share": BUDGET,
        "datasets": results,
        "decision_latency": timed,
    }


LATENCY_PROMPTS = 20  # test prompts per dataset timed in the decision-latency table


def plot(result: dict[str, Any], path: Path) -> None:
    """Quality vs cloud share and vs $ cost, every method on one pair of axes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise missing_extra("matplotlib", "bench") from err
    fig, (by_share, by_cost) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, row in result["methods"].items():
        style = {"random": ":", "oracle": "--"}.get(name, "-")
        xs, ys = zip(*row["curve"], strict=True)
        by_share.plot(xs, ys, style, label=name, drawstyle="default")
        if "cost_curve" in row:
            cx, cy = zip(*row["cost_curve"], strict=True)
            by_cost.plot(cx, cy, style, label=name)
    by_share.set(xlabel="share of requests sent to the cloud", ylabel="accuracy (test split)")
    by_cost.set(xlabel="cloud $ per 1k requests", ylabel="accuracy (test split)")
    by_share.set_title(f"{result['dataset']}: quality vs cloud share ({result['test_items']} test items)")
    by_cost.set_title(f"{result['dataset']}: quality vs cost")
    by_share.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_markdown(result: dict[str, Any], command: str) -> str:
    def fmt(v: float | None, digits: int = 3) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    def ci(v: float | None, interval: list[float] | None, digits: int = 3) -> str:
        return (
            fmt(v, digits)
            if v is None or interval is None
            else f"{fmt(v, digits)} [{interval[0]:.2f}, {interval[1]:.2f}]"
        )

    lines = [
        "# Cascades and query routers (offline, from outcome tables)", "",
        f"Command: `{command}`", "",
        f"Machine: {result['machine']}; 1-minute load average {_load(result)} (start, end of the run). Thresholds, "
        "router fits and the 'best' pick use the train split; every "
        f"number below is on the test split. Budget point: the threshold that sends {result['budget_share']:.0%} "
        "of train items to the cloud, applied to test. `[lo, hi]`: bootstrap 95% interval over the test items "
        f"({result['datasets'][0]['resamples'] if result['datasets'] else RESAMPLES} resamples, seed {SEED}; the "
        "scores and the train-fitted threshold held fixed). Gain AUC: the chance that the method's score ranks a "
        "test item where the cloud fixes the edge above one where it does not (0.5: no better than random). Train "
        "CV APGR: the 5-fold out-of-fold APGR on train that picks the best method. `cascade:*` rows pay the edge's "
        "answer on every item; `router:*` rows decide from the prompt alone. Embedding routers (knn, logistic, mf, "
        f"mlp) read `{_embedder_spec(result)}` embeddings of the prompt; "
        "decision ms: the median wall time of one-prompt decisions on this machine, embedding included (for "
        "`cascade:signals`, given the draft's signals, whose own cost is the edge model's).", "",
    ]  # fmt: skip
    lines += _latency_markdown(result.get("decision_latency"))
    for d in result["datasets"]:
        lines += [
            f"## {d['dataset']}", "",
            f"{d['train_items']} train / {d['test_items']} test items. Always-edge accuracy {d['edge_accuracy']:.3f}, "
            f"always-cloud {d['cloud_accuracy']:.3f} (${d['cloud_cost_usd']:.5f} for the test split). "
            f"The cloud is right where the edge is wrong on {d['cloud_fixes']} test items, the edge right where "
            f"the cloud is wrong on {d['edge_only']}. "
            f"Best method on train: `{d['best_on_train']}`. Plot: `route_{d['dataset']}.png`.", "",
            "| method | APGR | CPT(50%) | CPT(80%) | AIQ | cloud share at 95% of cloud acc. | gain AUC | train CV APGR "
            "| budget: share | budget: accuracy | budget: acc. / cloud acc. | decision ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for name, m in d["methods"].items():
            budget, intervals = m.get("budget", {}), m.get("ci", {})
            label = f"**{name}**" if name == d["best_on_train"] else name
            lines.append(
                f"| {label} | {ci(m['apgr'], intervals.get('apgr'))} | {ci(m['cpt50'], intervals.get('cpt50'))} "
                f"| {fmt(m['cpt80'])} | {fmt(m['aiq'])} | {fmt(m['share_at_95'])} | {fmt(m.get('gain_auc'))} "
                f"| {fmt(m.get('train_apgr'))} "
                f"| {fmt(budget.get('share'))} | {ci(budget.get('accuracy'), intervals.get('budget_accuracy'))} "
                f"| {ci(budget.get('of_cloud'), intervals.get('budget_of_cloud'))} | {fmt(m.get('decision_ms'), 2)} |"
            )
        lines.append("")
    return "\n".join(lines)
