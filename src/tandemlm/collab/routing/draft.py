"""A learned cascade rule: the edge's draft confidence signals and the prompt's features, combined by one model.

A cascade (collab/cascade.py) thresholds one signal of the edge's draft; `DraftSignalRouter` learns how
much each signal, and the prompt itself, says about whether the cloud is needed. It decides after the
edge has answered, so it is a cascade's deferral rule, not a `QueryRouter`'s: the edge's answer is paid
on every request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tandemlm.collab.routing.base import (
    Router,
    _not_fitted,
    _sigmoid,
    _targets,
    cheap_features,
    fit_logistic,
    threshold_for_share,
)
from tandemlm.errors import ValidationError

Signals = Mapping[str, Sequence[float] | np.ndarray]


class DraftSignalRouter(Router):
    """L2-regularised logistic regression over the draft's confidence signals (named as collab/confidence.py
    names them: logprob, min_logprob, verify, consistency, examples; each on the live signal's scale, higher =
    more confident) and the prompt's `cheap_features`, all standardised on the training prompts. The score is
    the predicted probability that the cloud is needed. `signals`: the names it reads, in order (default: those
    given to `fit`). Targets must lie in [0, 1]."""

    name = "signals"
    reads_draft = True

    def __init__(self, *, signals: Sequence[str] = (), l2: float = 1e-2) -> None:
        self.signals, self.l2 = tuple(signals), l2
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self._w: np.ndarray | None = None

    def _features(self, prompts: Sequence[str], signals: Signals | None) -> np.ndarray:
        if signals is None:
            raise ValidationError(
                f"{type(self).__name__} scores the edge's draft: pass signals={{name: values}} for "
                f"{', '.join(self.signals) or 'the draft signals'} (it decides after the edge answers, as a cascade)"
            )
        missing = [s for s in self.signals if s not in signals]
        if missing:
            raise ValidationError(
                f"missing draft signals {', '.join(missing)}; this router reads {', '.join(self.signals)}"
            )
        columns = [np.asarray(signals[s], dtype=np.float64) for s in self.signals]
        if any(c.shape != (len(prompts),) for c in columns):
            raise ValidationError(f"need one value of each signal per prompt ({len(prompts)} prompts)")
        if any(not np.all(np.isfinite(c)) for c in columns):
            raise ValidationError("draft signals must be finite numbers (a signal not measured cannot be read)")
        return np.column_stack([*columns, cheap_features(prompts)])

    def fit(
        self, prompts: Sequence[str], targets: Sequence[float] | np.ndarray, *, signals: Signals | None = None
    ) -> DraftSignalRouter:
        y = _targets(prompts, targets)
        if not self.signals and signals is not None:
            self.signals = tuple(signals)
        x = self._features(prompts, signals)
        self._mean = x.mean(axis=0)
        self._std = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        self._w = fit_logistic((x - self._mean) / self._std, y, l2=self.l2)
        return self

    def score(self, prompts: list[str], *, signals: Signals | None = None) -> np.ndarray:
        if self._w is None or self._mean is None or self._std is None:
            raise _not_fitted(self)
        x = (self._features(prompts, signals) - self._mean) / self._std
        return _sigmoid(x @ self._w[:-1] + self._w[-1])

    def calibrate(self, prompts: Sequence[str], cloud_share: float, *, signals: Signals | None = None) -> float:
        """The threshold that sends `cloud_share` of these drafts to the cloud (see `Router.calibrate`)."""
        if not 0.0 <= cloud_share <= 1.0:
            raise ValidationError(f"cloud_share must be in [0, 1], got {cloud_share}")
        if not prompts:
            raise ValidationError("calibrate needs at least one prompt")
        return threshold_for_share(self.score(list(prompts), signals=signals), cloud_share)

    def config(self) -> dict[str, Any]:
        return {"signals": list(self.signals), "l2": self.l2}

    def state(self) -> dict[str, np.ndarray]:
        if self._w is None or self._mean is None or self._std is None:
            raise _not_fitted(self)
        return {"mean": self._mean, "std": self._std, "w": self._w}

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._mean, self._std, self._w = arrays["mean"], arrays["std"], arrays["w"]
