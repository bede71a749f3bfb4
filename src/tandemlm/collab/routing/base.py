"""Query-level routers (RouteLLM, RouterBench): decide before generating whether a prompt needs the cloud.

A `Router` implements one method, `score(prompts)`: higher means the prompt needs the cloud more (a
router that `reads_draft` also takes the edge's draft signals, and is a cascade's deferral rule).
`fit` learns from one target per prompt (any float the caller chooses: 1 when only the cloud answers
right, a graded gain, ...), `calibrate` turns a cloud-call budget into a threshold, and `save`/`load`
keep a fitted router in one .npz file (arrays plus a JSON header; never pickle).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tandemlm.collab.routing.embeddings import Embedder, embedder_from_spec
from tandemlm.errors import ModelSourceError, ValidationError

FORMAT_VERSION = 1


class Router:
    """Scores prompts; a prompt whose score is above the threshold goes to the cloud."""

    name: ClassVar[str] = ""
    #: True for a router that scores the edge's draft (its confidence signals) as well as the prompt: it decides
    #: after the edge has answered, as a cascade does, so a `QueryRouter` (deciding before) cannot use it
    reads_draft: ClassVar[bool] = False

    def score(self, prompts: list[str]) -> np.ndarray:
        """One float per prompt, higher = needs the cloud more."""
        raise NotImplementedError

    def fit(self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> Router:
        """Learn from one target per prompt (e.g. 1 where the cloud is right and the edge wrong). Returns self."""
        return self

    def calibrate(self, prompts: Sequence[str], cloud_share: float) -> float:
        """The threshold that sends `cloud_share` of these prompts to the cloud (those scoring strictly above it).

        The share is met exactly when round(share · n) falls between two distinct scores; with tied scores at
        the boundary it is undershot (a budget is never exceeded).
        """
        if not 0.0 <= cloud_share <= 1.0:
            raise ValidationError(f"cloud_share must be in [0, 1], got {cloud_share}")
        if not prompts:
            raise ValidationError("calibrate needs at least one prompt")
        return threshold_for_share(self.score(list(prompts)), cloud_share)

    # ---- persistence ------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON values) that rebuild this router, fitted state aside."""
        return {}

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays."""
        return {}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the fitted arrays written by `state`."""

    def save(self, path: str | Path) -> Path:
        """Write the router to one .npz file (a JSON header and the fitted arrays); returns the path."""
        path = Path(path)
        header = {"format": FORMAT_VERSION, "router": self.name, "config": self.config()}
        arrays = self.state()
        if "header" in arrays:
            raise ValidationError("a router's state may not use the array name 'header'")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez(f, allow_pickle=False, header=np.array(json.dumps(header)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | None = None) -> Router:
        """Read a router written by `save`. `embedder` replaces the one named in the file (it must have the
        same spec); by default that one is built (MiniLM from the cache, never downloaded here)."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                arrays = {k: data[k] for k in data.files if k != "header"}
            name, config = str(header["router"]), dict(header["config"])
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
            raise ValidationError(f"{path} is not a saved router: {err}") from err
        if header.get("format") != FORMAT_VERSION:
            raise ValidationError(f"{path}: router format {header.get('format')!r}, expected {FORMAT_VERSION}")
        from tandemlm.collab.routing.registry import router_class  # the registry imports every router module

        kind = router_class(name)
        if cls is not Router and not issubclass(kind, cls):
            raise ValidationError(f"{path} holds a {kind.__name__}, not a {cls.__name__}")
        if "embedder" in config:
            spec = config.pop("embedder")
            if embedder is not None and embedder.spec != spec:
                raise ValidationError(f"{path} was fitted on {spec!r} embeddings, not {embedder.spec!r}")
            if embedder is None:
                try:
                    embedder = embedder_from_spec(spec, fetch=False)
                except ModelSourceError as err:
                    raise ModelSourceError(f"{path} needs the {spec} embedder: {err}") from err
            config["embedder"] = embedder
        router = kind(**config)
        router.set_state(arrays)
        return router


def threshold_for_share(scores: np.ndarray, cloud_share: float) -> float:
    """The threshold t such that round(share · n) of `scores` are > t (fewer when scores tie at the boundary)."""
    ranked = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    n = len(ranked)
    k = math.floor(cloud_share * n + 0.5)
    if k >= n:
        return float(np.nextafter(ranked[-1], -np.inf))
    return float(ranked[k])  # the k largest are > ranked[k] unless tied with it


def _targets(prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> np.ndarray:
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim != 1 or len(y) != len(prompts):
        raise ValidationError(f"need one target per prompt: {len(prompts)} prompts, targets of shape {y.shape}")
    if not len(y):
        raise ValidationError("fit needs at least one prompt")
    if not np.all(np.isfinite(y)):
        raise ValidationError("targets must be finite numbers")
    return y


def _not_fitted(router: Router) -> ValidationError:
    return ValidationError(f"{type(router).__name__} is not fitted: call fit(prompts, targets) or load a saved router")


# ---- logistic regression in numpy -----------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float, steps: int = 50, tol: float = 1e-8) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS). Minimises
    mean(cross-entropy(sigmoid(x·w + b), y)) + l2/2 · |w|² (bias not penalised); y may be soft, in [0, 1].
    Returns [w..., b]."""
    if np.any((y < 0) | (y > 1)):
        raise ValidationError("logistic targets must lie in [0, 1] (a probability that the cloud is needed)")
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 1e-8  # (almost) no penalty on the bias; the tiny ridge keeps the Hessian invertible
    w = np.zeros(d + 1)
    for _ in range(steps):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (p - y) / n + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb / n + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return w


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)))  # overflow-free form of 1 / (1 + e^-z)


# ---- routers --------------------------------------------------------------------------------------

_MATH = re.compile(r"[-+*/=^%<>]")
FEATURES: tuple[str, ...] = ("chars", "words", "digits", "lines", "operators", "mean_word_length")


def cheap_features(prompts: Sequence[str]) -> np.ndarray:
    """Hand features a router can compute in microseconds: log(1 + count) of characters, words, digits,
    lines and arithmetic operators, and the mean word length."""
    rows = []
    for p in prompts:
        words = p.split()
        rows.append(
            [
                math.log1p(len(p)),
                math.log1p(len(words)),
                math.log1p(sum(c.isdigit() for c in p)),
                math.log1p(p.count("\n")),
                math.log1p(len(_MATH.findall(p))),
                sum(map(len, words)) / len(words) if words else 0.0,
            ]
        )
    return np.array(rows, dtype=np.float64).reshape(len(prompts), len(FEATURES))


class LengthRouter(Router):
    """Logistic regression over `cheap_features` (length, digits, operators...): the cheapest learned router.
    Targets must lie in [0, 1]."""

    name = "length"

    def __init__(self, *, l2: float = 1e-2) -> None:
        self.l2 = l2
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self._w: np.ndarray | None = None

    def fit(self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> LengthRouter:
        y = _targets(prompts, targets)
        x = cheap_features(prompts)
        self._mean = x.mean(axis=0)
        self._std = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        self._w = fit_logistic((x - self._mean) / self._std, y, l2=self.l2)
        return self

    def score(self, prompts: list[str]) -> np.ndarray:
        if self._w is None or self._mean is None or self._std is None:
            raise _not_fitted(self)
        x = (cheap_features(prompts) - self._mean) / self._std
        return _sigmoid(x @ self._w[:-1] + self._w[-1])

    def config(self) -> dict[str, Any]:
        return {"l2": self.l2}

    def state(self) -> dict[str, np.ndarray]:
        if self._w is None or self._mean is None or self._std is None:
            raise _not_fitted(self)
        return {"mean": self._mean, "std": self._std, "w": self._w}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._mean, self._std, self._w = arrays["mean"], arrays["std"], arrays["w"]


class _EmbeddingRouter(Router):
    """A router over sentence embeddings; the embedder (MiniLM by default) is built on first use."""

    def __init__(self, *, embedder: Embedder | None = None) -> None:
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from tandemlm.collab.routing.embeddings import MiniLM

            self._embedder = MiniLM()
        return self._embedder

    def _embed(self, prompts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed(list(prompts)), dtype=np.float32)

    def config(self) -> dict[str, Any]:
        return {"embedder": self.embedder.spec}


class KnnRouter(_EmbeddingRouter):
    """Cosine k-nearest neighbours on sentence embeddings: a prompt's score is the mean target of the k most
    similar training prompts (ties in similarity go to the earlier training prompt)."""

    name = "knn"

    def __init__(self, *, k: int = 10, embedder: Embedder | None = None) -> None:
        super().__init__(embedder=embedder)
        if k < 1:
            raise ValidationError(f"k must be a positive integer, got {k}")
        self.k = k
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def fit(self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> KnnRouter:
        y = _targets(prompts, targets)
        self._x = _unit(self._embed(prompts))
        self._y = y
        return self

    def score(self, prompts: list[str]) -> np.ndarray:
        if self._x is None or self._y is None:
            raise _not_fitted(self)
        sims = _unit(self._embed(prompts)) @ self._x.T
        k = min(self.k, len(self._y))
        nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.asarray(self._y[nearest].mean(axis=1), dtype=np.float64)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "k": self.k}

    def state(self) -> dict[str, np.ndarray]:
        if self._x is None or self._y is None:
            raise _not_fitted(self)
        return {"embeddings": self._x, "targets": self._y}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._x, self._y = arrays["embeddings"], arrays["targets"]


class LogisticRouter(_EmbeddingRouter):
    """L2-regularised logistic regression on sentence embeddings (fitted by Newton's method in numpy); the
    score is the predicted probability that the prompt needs the cloud. Targets must lie in [0, 1]."""

    name = "logistic"

    def __init__(self, *, l2: float = 1e-3, embedder: Embedder | None = None) -> None:
        super().__init__(embedder=embedder)
        self.l2 = l2
        self._w: np.ndarray | None = None

    def fit(self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> LogisticRouter:
        y = _targets(prompts, targets)
        self._w = fit_logistic(self._embed(prompts).astype(np.float64), y, l2=self.l2)
        return self

    def score(self, prompts: list[str]) -> np.ndarray:
        if self._w is None:
            raise _not_fitted(self)
        return _sigmoid(self._embed(prompts).astype(np.float64) @ self._w[:-1] + self._w[-1])

    def config(self) -> dict[str, Any]:
        return {**super().config(), "l2": self.l2}

    def state(self) -> dict[str, np.ndarray]:
        if self._w is None:
            raise _not_fitted(self)
        return {"w": self._w}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._w = arrays["w"]


class RandomRouter(Router):
    """RouteLLM's random baseline, made reproducible: each prompt's score is a uniform number in [0, 1)
    drawn from a hash of the seed and the prompt, so the same prompt always gets the same score."""

    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def score(self, prompts: list[str]) -> np.ndarray:
        out = np.empty(len(prompts))
        for i, p in enumerate(prompts):
            digest = hashlib.blake2b(f"{self.seed}\0{p}".encode(), digest_size=8).digest()
            out[i] = int.from_bytes(digest, "little") / 2**64
        return out

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
