"""Routers trained by gradient descent on sentence embeddings, in numpy: RouteLLM's matrix factorisation and a
small MLP. Both are seeded (the same data and seed give the same router) and save as .npz like the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tandemlm.collab.routing.base import _EmbeddingRouter, _not_fitted, _sigmoid, _targets
from tandemlm.collab.routing.embeddings import Embedder
from tandemlm.errors import ValidationError


class Adam:
    """Adam (Kingma & Ba 2015) over a dict of numpy arrays, updated in place; `weight_decay` adds an L2 term to
    each gradient, as torch.optim.Adam's does."""

    def __init__(
        self,
        params: dict[str, np.ndarray],
        *,
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        self.params, self.lr, self.weight_decay, self.betas = params, lr, weight_decay, betas
        self._m = {k: np.zeros_like(v) for k, v in params.items()}
        self._v = {k: np.zeros_like(v) for k, v in params.items()}
        self._t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self._t += 1
        b1, b2 = self.betas
        for k, p in self.params.items():
            g = grads[k] + self.weight_decay * p
            self._m[k] = b1 * self._m[k] + (1 - b1) * g
            self._v[k] = b2 * self._v[k] + (1 - b2) * g * g
            m_hat = self._m[k] / (1 - b1**self._t)
            v_hat = self._v[k] / (1 - b2**self._t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _uniform(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)  # torch.nn.Linear's default initialisation
    return rng.uniform(-bound, bound, size=shape)


class MatrixFactorizationRouter(_EmbeddingRouter):
    """RouteLLM's matrix-factorisation router (Ong et al. 2024, §4.1; routellm/routers/matrix_factorization): a
    model's quality on a prompt is the bilinear score δ(m, q) = w₂ᵀ(v̂_m ⊙ W₁q), with v̂_m the model's
    unit-length latent vector and W₁ a projection of the prompt embedding q; the score is
    P(cloud beats edge | q) = σ(δ(cloud, q) − δ(edge, q)).

    Trained, as RouteLLM trains it, on pairwise wins with binary cross-entropy by Adam, the prompt embedding
    jittered by Gaussian noise (`noise`) in training. Targets are win labels in [0, 1]: 1 where the cloud won
    (right where the edge was wrong), 0 where the edge won, ½ a tie, which is left out (RouteLLM drops ties)
    unless `ties`. With two models the score is a logistic function of a linear map of q (RouteLLM's own
    two-model case): what differs from `LogisticRouter` is the factorised, noise-regularised fit.
    """

    name = "mf"

    def __init__(
        self,
        *,
        dim: int = 32,
        steps: int = 300,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        noise: float = 0.05,
        ties: bool = False,
        seed: int = 0,
        embedder: Embedder | None = None,
    ) -> None:
        super().__init__(embedder=embedder)
        if dim < 1 or steps < 1:
            raise ValidationError(f"dim and steps must be positive, got dim={dim}, steps={steps}")
        self.dim, self.steps, self.lr, self.weight_decay = dim, steps, lr, weight_decay
        self.noise, self.ties, self.seed = noise, ties, seed
        self._p: dict[str, np.ndarray] | None = None

    def fit(self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> MatrixFactorizationRouter:
        y = _targets(prompts, targets)
        if np.any((y < 0) | (y > 1)):
            raise ValidationError("MF targets are win labels in [0, 1] (1: the cloud won, 0: the edge won, ½: a tie)")
        keep = np.ones(len(y), dtype=bool) if self.ties else y != 0.5
        if not keep.any():
            raise ValidationError("the MF router needs at least one prompt where one model won (all were ties)")
        q, y = self._embed(prompts).astype(np.float64)[keep], y[keep]
        rng = np.random.default_rng(self.seed)
        d = q.shape[1]
        params = {
            "models": rng.normal(size=(2, self.dim)),  # row 0: edge, row 1: cloud (torch.nn.Embedding's init)
            "proj": _uniform(rng, d, (self.dim, d)),
            "classifier": _uniform(rng, self.dim, (self.dim,)),
        }
        adam = Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.steps):
            adam.step(self._grads(params, q + self.noise * rng.normal(size=q.shape), y))
        self._p = params
        return self

    @staticmethod
    def _forward(
        params: dict[str, np.ndarray], q: np.ndarray
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        norms = np.linalg.norm(params["models"], axis=1)
        unit = params["models"] / norms[:, None]
        u = unit[1] - unit[0]
        h = q @ params["proj"].T
        return _sigmoid((h * u) @ params["classifier"]), (unit, norms, h, u)

    @classmethod
    def _grads(cls, params: dict[str, np.ndarray], q: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """The gradient of the mean cross-entropy with respect to each parameter."""
        p, (unit, norms, h, u) = cls._forward(params, q)
        g = (p - y) / len(y)  # d loss / d logit
        w2 = params["classifier"]
        du = (g[:, None] * h * w2).sum(axis=0)
        return {
            "classifier": (g[:, None] * h * u).sum(axis=0),
            "proj": (g[:, None] * (u * w2)[None, :]).T @ q,
            # through v̂ = v / |v|: ∂L/∂v = (I − v̂ v̂ᵀ) ∂L/∂v̂ / |v|; u = v̂_cloud − v̂_edge
            "models": np.stack(
                [-(du - unit[0] * (unit[0] @ du)) / norms[0], (du - unit[1] * (unit[1] @ du)) / norms[1]]
            ),
        }

    def score(self, prompts: list[str]) -> np.ndarray:
        if self._p is None:
            raise _not_fitted(self)
        return self._forward(self._p, self._embed(prompts).astype(np.float64))[0]

    def config(self) -> dict[str, Any]:
        return {
            **super().config(), "dim": self.dim, "steps": self.steps, "lr": self.lr,
            "weight_decay": self.weight_decay, "noise": self.noise, "ties": self.ties, "seed": self.seed,
        }  # fmt: skip

    def state(self) -> dict[str, np.ndarray]:
        if self._p is None:
            raise _not_fitted(self)
        return dict(self._p)

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._p = {k: arrays[k] for k in ("models", "proj", "classifier")}


class MlpRouter(_EmbeddingRouter):
    """A one-hidden-layer perceptron on standardised sentence embeddings (ReLU, then a sigmoid output): the
    probability that the prompt needs the cloud. Adam on binary cross-entropy with weight decay, in minibatches,
    seeded; early stopping on a held-out share of the training prompts (`holdout`): training stops when the
    held-out loss has not improved for `patience` epochs, and the weights of its best epoch are kept. Targets
    must lie in [0, 1]."""

    name = "mlp"

    def __init__(
        self,
        *,
        hidden: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        epochs: int = 300,
        patience: int = 20,
        holdout: float = 0.2,
        batch_size: int = 32,
        seed: int = 0,
        embedder: Embedder | None = None,
    ) -> None:
        super().__init__(embedder=embedder)
        if hidden < 1 or epochs < 1 or patience < 1 or batch_size < 1:
            raise ValidationError("hidden, epochs, patience and batch_size must be positive")
        if not 0.0 <= holdout < 1.0:
            raise ValidationError(f"holdout must be in [0, 1), got {holdout}")
        self.hidden, self.lr, self.weight_decay, self.epochs = hidden, lr, weight_decay, epochs
        self.patience, self.holdout, self.batch_size, self.seed = patience, holdout, batch_size, seed
        self._p: dict[str, np.ndarray] | None = None
        self.epochs_trained = 0  # the kept epoch of the last fit (for reports)

    def fit(self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray) -> MlpRouter:
        y = _targets(prompts, targets)
        if np.any((y < 0) | (y > 1)):
            raise ValidationError("MLP targets must lie in [0, 1] (a probability that the cloud is needed)")
        x = self._embed(prompts).astype(np.float64)
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        z = (x - mean) / std
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(y))
        n_held = round(self.holdout * len(y)) if len(y) >= 5 else 0
        held, train = order[:n_held], order[n_held:]
        d = z.shape[1]
        params = {
            "w1": _uniform(rng, d, (d, self.hidden)),
            "b1": _uniform(rng, d, (self.hidden,)),
            "w2": _uniform(rng, self.hidden, (self.hidden,)),
            "b2": np.zeros(1),
        }
        adam = Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        best, best_loss, since = {k: v.copy() for k, v in params.items()}, np.inf, 0
        self.epochs_trained = 0
        for epoch in range(1, self.epochs + 1):
            shuffled = rng.permutation(train)
            for start in range(0, len(shuffled), self.batch_size):
                rows = shuffled[start : start + self.batch_size]
                adam.step(self._grads(params, z[rows], y[rows]))
            if not n_held:
                best, self.epochs_trained = {k: v.copy() for k, v in params.items()}, epoch
                continue
            loss = _bce(self._forward(params, z[held])[0], y[held])
            if loss < best_loss - 1e-9:
                best, best_loss, since, self.epochs_trained = {k: v.copy() for k, v in params.items()}, loss, 0, epoch
            else:
                since += 1
                if since >= self.patience:
                    break
        self._p = {**best, "mean": mean, "std": std}
        return self

    @staticmethod
    def _forward(params: dict[str, np.ndarray], z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.maximum(z @ params["w1"] + params["b1"], 0.0)
        return _sigmoid(h @ params["w2"] + params["b2"][0]), h

    @classmethod
    def _grads(cls, params: dict[str, np.ndarray], z: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """The gradient of the mean cross-entropy with respect to each parameter."""
        p, h = cls._forward(params, z)
        g = (p - y) / len(y)
        dh = g[:, None] * params["w2"][None, :] * (h > 0)
        return {"w1": z.T @ dh, "b1": dh.sum(axis=0), "w2": h.T @ g, "b2": np.array([g.sum()])}

    def score(self, prompts: list[str]) -> np.ndarray:
        if self._p is None:
            raise _not_fitted(self)
        z = (self._embed(prompts).astype(np.float64) - self._p["mean"]) / self._p["std"]
        return self._forward(self._p, z)[0]

    def config(self) -> dict[str, Any]:
        return {
            **super().config(), "hidden": self.hidden, "lr": self.lr, "weight_decay": self.weight_decay,
            "epochs": self.epochs, "patience": self.patience, "holdout": self.holdout,
            "batch_size": self.batch_size, "seed": self.seed,
        }  # fmt: skip

    def state(self) -> dict[str, np.ndarray]:
        if self._p is None:
            raise _not_fitted(self)
        return dict(self._p)

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._p = {k: arrays[k] for k in ("w1", "b1", "w2", "b2", "mean", "std")}
