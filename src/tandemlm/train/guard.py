"""Training of the guard heads (`tandem train guard`): numpy, full-batch Adam, a fixed seed.

A head learns P(unsafe) from MiniLM embeddings with class-balanced logistic loss (and, for items whose source
gives one, a softmax over hazard categories). Its threshold is chosen on a validation slice of the training
sources (a fifth, by a hash of the item id): the highest-F1 threshold whose validation FPR is at most 2%; the
test sources and the sensitive-but-benign set are never read. The `.npz` goes with a JSON card saying the data
(sources, wheel pins), the split, the validation metrics and the command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tandemlm.collab.routing.embeddings import Embedder
from tandemlm.guard import data
from tandemlm.guard.classifier import Head
from tandemlm.models.sources import tandem_home

#: (task, packaged head name) of the heads `tandem train guard` makes.
HEADS = {"classifier": "harm", "injection": "injection"}
VALIDATION_FPR = 0.02


@dataclass(frozen=True)
class TrainSettings:
    hidden: int = 0  # 0: logistic; else one ReLU layer of this width
    epochs: int = 400
    lr: float = 0.01
    l2: float = 1e-3
    seed: int = 0


def embed_cached(embedder: Embedder, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
    """Embeddings of `texts`, remembered under $TANDEM_HOME/guard/ by the embedder's spec and each text's SHA-256
    (the training sets are embedded once, not at every run)."""
    path = tandem_home() / "guard" / f"embeddings-{embedder.spec.replace(':', '_')}.npz"
    cache: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            cache = dict(zip((str(k) for k in z["keys"]), z["vectors"], strict=True))
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in cache))
    if missing:
        by_key = dict(zip(keys, texts, strict=True))
        batch = 64
        path.parent.mkdir(parents=True, exist_ok=True)
        starts = range(0, len(missing), batch)
        for n, start in enumerate(tqdm(starts, desc=f"embed {embedder.spec}", disable=not progress)):
            chunk = missing[start : start + batch]
            for k, v in zip(chunk, embedder.embed([by_key[k] for k in chunk]), strict=True):
                cache[k] = v
            if n % 10 == 9 or start == starts[-1]:  # saved as it goes: an interrupted run keeps what it embedded
                partial = path.with_name(path.name + ".partial.npz")
                np.savez(partial, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
                partial.replace(path)
    dim = next(iter(cache.values())).shape[0] if cache else 0
    return np.stack([cache[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    categories: Sequence[str | None] = (),
    settings: TrainSettings = TrainSettings(),
    *,
    embedder: str = "all-minilm-l6-v2",
    progress: bool = False,
) -> Head:
    """A head fitted to embeddings `x` [n, d] and labels `y` (1 unsafe), with threshold 0.5 (see `calibrate`)."""
    rng = np.random.default_rng(settings.seed)
    n, d = x.shape
    y = y.astype(np.float64)
    pos = max(float(y.sum()), 1.0)
    weight = np.where(y == 1, n / (2 * pos), n / (2 * max(n - pos, 1.0)))  # class-balanced
    params: dict[str, np.ndarray] = {"w2": np.zeros(settings.hidden or d), "b2": np.zeros(1)}
    if settings.hidden:
        params["w1"] = rng.normal(0, np.sqrt(2 / d), (d, settings.hidden))
        params["b1"] = np.zeros(settings.hidden)
        params["w2"] = rng.normal(0, np.sqrt(1 / settings.hidden), settings.hidden)
    names = sorted({c for c in categories if c})
    cat_rows = np.array([i for i, c in enumerate(categories) if c], dtype=np.int64)
    if names:
        params["wc"] = np.zeros((d, len(names)))
        params["bc"] = np.zeros(len(names))
        onehot = np.zeros((len(cat_rows), len(names)))
        onehot[np.arange(len(cat_rows)), [names.index(str(categories[i])) for i in cat_rows]] = 1
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    for step in tqdm(range(1, settings.epochs + 1), desc="fit head", disable=not progress):
        grads: dict[str, np.ndarray] = {}
        if settings.hidden:
            pre = x @ params["w1"] + params["b1"]
            h = np.maximum(pre, 0)
        else:
            h = x
        p = 1 / (1 + np.exp(-np.clip(h @ params["w2"] + params["b2"][0], -30, 30)))
        dz = weight * (p - y) / n
        grads["w2"] = h.T @ dz + settings.l2 * params["w2"]
        grads["b2"] = np.array([dz.sum()])
        if settings.hidden:
            dh = np.outer(dz, params["w2"]) * (pre > 0)
            grads["w1"] = x.T @ dh + settings.l2 * params["w1"]
            grads["b1"] = dh.sum(axis=0)
        if names:
            xc = x[cat_rows]
            logits = xc @ params["wc"] + params["bc"]
            logits -= logits.max(axis=1, keepdims=True)
            soft = np.exp(logits)
            soft /= soft.sum(axis=1, keepdims=True)
            dc = (soft - onehot) / len(cat_rows)
            grads["wc"] = xc.T @ dc + settings.l2 * params["wc"]
            grads["bc"] = dc.sum(axis=0)
        for k, g in grads.items():  # Adam
            m[k] = 0.9 * m[k] + 0.1 * g
            v2[k] = 0.999 * v2[k] + 0.001 * g * g
            params[k] -= settings.lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v2[k] / (1 - 0.999**step)) + 1e-8)
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    return Head(
        f32["w2"], float(f32["b2"][0]), w1=f32.get("w1"), b1=f32.get("b1"), wc=f32.get("wc"), bc=f32.get("bc"),
        categories=names, embedder=embedder,
    )  # fmt: skip


def calibrate(scores: np.ndarray, y: np.ndarray, max_fpr: float = VALIDATION_FPR) -> float:
    """The threshold of highest F1 among those with FPR <= max_fpr on (scores, y); 0.5 when none qualifies."""
    best, best_f1 = 0.5, -1.0
    negatives = max(int((y == 0).sum()), 1)
    for t in np.unique(np.clip(scores, 1e-4, 1 - 1e-4)):
        flagged = scores >= t
        fp = int((flagged & (y == 0)).sum())
        tp = int((flagged & (y == 1)).sum())
        if fp / negatives > max_fpr or tp == 0:
            continue
        f1 = 2 * tp / (2 * tp + fp + int((~flagged & (y == 1)).sum()))
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def validation_of(item: data.GuardItem) -> bool:
    return hashlib.sha256(f"tandem-guard-val-v1/{item.id}".encode()).digest()[0] < 52  # about a fifth


def train_head(
    items: list[data.GuardItem],
    embedder: Embedder,
    settings: TrainSettings = TrainSettings(),
    *,
    progress: bool = False,
) -> tuple[Head, dict[str, Any]]:
    """Fit on four fifths of `items`, set the threshold on the rest, then refit on all of them with that threshold.
    Returns the head and the validation metrics."""
    x = embed_cached(embedder, [i.text for i in items], progress=progress)
    y = np.array([i.label for i in items])
    cats = [i.category for i in items]
    val = np.array([validation_of(i) for i in items])
    first = fit_head(x[~val], y[~val], [c for c, v in zip(cats, val, strict=True) if not v], settings,
                     embedder=embedder.spec, progress=progress)  # fmt: skip
    val_scores = first.scores(x[val])
    threshold = calibrate(val_scores, y[val])
    flagged = val_scores >= threshold
    tp, fp = int((flagged & (y[val] == 1)).sum()), int((flagged & (y[val] == 0)).sum())
    fn = int((~flagged & (y[val] == 1)).sum())
    metrics = {
        "validation_items": int(val.sum()), "threshold": threshold,
        "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
        "fpr": fp / max(int((y[val] == 0).sum()), 1),
    }  # fmt: skip
    head = fit_head(x, y, cats, settings, embedder=embedder.spec, progress=progress)
    head.threshold = threshold
    return head, metrics


def train_guards(
    out_dir: Path,
    embedder: Embedder,
    settings: TrainSettings = TrainSettings(),
    *,
    command: str = "",
    which: Sequence[str] = tuple(HEADS),
    progress: Callable[[str], object] | None = None,
    bars: bool = False,
) -> dict[str, dict[str, Any]]:
    """Train the named heads on the training sources of the split by source; write NAME.npz and NAME.json."""
    cards: dict[str, dict[str, Any]] = {}
    for name in which:
        task = HEADS[name]
        if progress:
            progress(f"{name}: loading the {task} training sources")
        items, _ = data.splits(task, "source")  # type: ignore[arg-type]
        head, metrics = train_head(items, embedder, settings, progress=bars)
        card = {
            "head": name, "task": task, "embedder": embedder.spec, "settings": settings.__dict__,
            "train_sources": {s: sum(i.source == s for i in items) for s in data.TASK_SOURCES[task]["train"]},
            "held_out_sources": [*data.TASK_SOURCES[task]["test"], data.SENSITIVE],
            "items": len(items), "unsafe": sum(i.label for i in items), "categories": list(head.categories),
            "wheels": {w.dist: {"version": w.version, "sha256": w.members} for w in data.WHEELS.values()},
            "validation": metrics, "command": command,
        }  # fmt: skip
        head.meta = {"card": f"{name}.json"}
        head.save(out_dir / f"{name}.npz")
        (out_dir / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        cards[name] = card
        if progress:
            progress(f"{name}: {len(items)} items, threshold {metrics['threshold']:.3f}, validation "
                     f"P {metrics['precision']:.3f} R {metrics['recall']:.3f} FPR {metrics['fpr']:.3f}")  # fmt: skip
    return cards
