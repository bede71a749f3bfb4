"""Cost–quality metrics for routers and cascades, as pure functions over a curve.

A curve is a sequence of points (cloud_share, accuracy): the fraction of requests sent to the cloud
model (in [0, 1]) and the accuracy reached with it, one point per threshold. AIQ also accepts a $ cost
in place of the share. Definitions follow RouteLLM (Ong et al. 2024, arXiv 2406.18665: PGR, APGR,
CPT) and RouterBench (Hu et al. 2024, arXiv 2403.12031: AIQ); each function says what it assumes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tandemlm.errors import ValidationError

Point = tuple[float, float]
Curve = Sequence[tuple[float, float]]


def pgr(acc: float, edge_acc: float, cloud_acc: float) -> float:
    """Performance gap recovered (RouteLLM §2): (acc − edge) / (cloud − edge); 0 = the edge alone, 1 = the
    cloud alone."""
    gap = cloud_acc - edge_acc
    if gap == 0:
        raise ValidationError("PGR is undefined when the edge and cloud accuracies are equal")
    return (acc - edge_acc) / gap


def apgr(points: Curve, edge_acc: float, cloud_acc: float, *, anchored: bool = True) -> float:
    """Average performance gap recovered (RouteLLM §2): the area under PGR against the share of calls to
    the strong (cloud) model over [0, 1], by the trapezoid rule over the measured points.

    Computed as RouteLLM's evaluation code does (routellm/evals/evaluate.py, `apgr_metric`): with AUC the
    trapezoid area under accuracy over the points sorted by share, APGR = (AUC − edge·W) / ((cloud − edge)·W)
    where W is the width of the shares covered. Assumed, as RouteLLM's threshold sweep produces: the curve
    runs from all-edge to all-cloud, so `anchored` adds (0, edge_acc) and (1, cloud_acc) where no point
    has share 0 or 1 (W is then 1). Points sharing a share are ordered by accuracy. Random routing gives 0.5.
    """
    curve = _prepare(points, edge_acc, cloud_acc, anchored)
    x = np.array([p[0] for p in curve])
    y = np.array([p[1] for p in curve])
    width = x[-1] - x[0]
    if width <= 0:
        raise ValidationError("APGR needs points at two or more different cloud shares")
    pgr(0.0, edge_acc, cloud_acc)  # same error as PGR when the gap is zero
    auc = _trapezoid(x, y)
    return float((auc - edge_acc * width) / ((cloud_acc - edge_acc) * width))


def cpt(points: Curve, edge_acc: float, cloud_acc: float, target_pgr: float, *, anchored: bool = True) -> float | None:
    """Call-performance threshold (RouteLLM §2): the least cloud-call share at which the router reaches
    PGR `target_pgr` (0.5 for CPT(50%), 0.8 for CPT(80%)); a fraction, not a percentage.

    Interpolated linearly between measured points, as RouteLLM's `pct_call_metric` does with `np.interp`
    (accuracy → share). Where accuracy is not increasing in share (np.interp's result is then undefined),
    this takes the first crossing of the target along the curve sorted by share. None when no point reaches
    the target (np.interp would clamp to 100%); with `anchored` (see `apgr`), only a target PGR above 1 or
    above the curve's best can be out of reach.
    """
    target = edge_acc + target_pgr * (cloud_acc - edge_acc)
    return _first_crossing(_prepare(points, edge_acc, cloud_acc, anchored), target, interpolate=True)


def share_at_quality(points: Curve, target_acc: float, *, interpolate: bool = False) -> float | None:
    """The least cloud share whose accuracy is at least `target_acc` (e.g. 0.95 × always-cloud accuracy), or
    None. By default a measured operating point (no interpolation between thresholds); with `interpolate`,
    the first crossing of the piecewise-linear curve, as in `cpt`."""
    return _first_crossing(_sorted(points), target_acc, interpolate=interpolate)


def aiq(points: Curve, *, cost_range: tuple[float, float] | None = None) -> float:
    """Average improvement in quality (RouterBench §4): the area under the router's non-decreasing convex
    hull in the (cost, quality) plane, divided by the cost range: 1/(c_max − c_min) ∫ R̃(c) dc.

    The first coordinate of each point is any cost axis: $ per query, or the cloud share. The hull is the
    upper convex hull of the points (mixing two thresholds reaches any point between them) made
    non-decreasing: points costlier and no better than an earlier one are ignored, and past the best point
    the hull stays flat. `cost_range` defaults to this curve's cheapest and costliest points; to compare
    routers, give them one shared range (RouterBench extends each hull flat to the largest cost among them).
    The range may not start below the curve's cheapest point, where the router has no operating point.
    """
    hull = nondecreasing_hull(points)
    lo, hi = cost_range if cost_range is not None else (hull[0][0], max(p[0] for p in points))
    if hi <= lo:
        raise ValidationError(f"AIQ needs a cost range of positive width, got [{lo}, {hi}]")
    if lo < hull[0][0]:
        raise ValidationError(f"the cost range starts at {lo}, below the curve's cheapest point {hull[0][0]}")
    hx = np.array([p[0] for p in hull] + [max(hi, hull[-1][0])])
    hy = np.array([p[1] for p in hull] + [hull[-1][1]])
    x = np.unique(np.concatenate([[lo, hi], hx[(hx > lo) & (hx < hi)]]))
    return float(_trapezoid(x, np.interp(x, hx, hy)) / (hi - lo))


def nondecreasing_hull(points: Curve) -> list[Point]:
    """The vertices of the non-decreasing upper convex hull of (cost, quality) points, cheapest first (RouterBench)."""
    if not points:
        raise ValidationError("need at least one point")
    best: dict[float, float] = {}
    for c, q in points:
        best[float(c)] = max(float(q), best.get(float(c), -np.inf))
    hull: list[Point] = []
    for p in sorted(best.items()):
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:  # not a clockwise turn: inside the hull
            hull.pop()
        hull.append(p)
    top = max(range(len(hull)), key=lambda i: (hull[i][1], -i))  # the cheapest point of best quality
    return hull[: top + 1]


def oracle(edge_correct: Sequence[float] | np.ndarray, cloud_correct: Sequence[float] | np.ndarray) -> list[Point]:
    """The oracle router's curve: it sends to the cloud first the items where the cloud gains most over the
    edge (for 0/1 correctness: the edge wrong and the cloud right), and never one where it gains nothing.

    As RouteLLM's `get_optimal_accuracy`: accuracy(s) = edge + min(s, share of items the cloud fixes),
    linear in between (fractional calls allowed). Returns the curve's vertices from share 0 to 1; scores
    may be graded in [0, 1] as well as 0/1.
    """
    edge, cloud = _pair(edge_correct, cloud_correct)
    n = len(edge)
    gains = np.sort(np.maximum(cloud - edge, 0.0))[::-1]
    acc = (edge.sum() + np.concatenate([[0.0], np.cumsum(gains)])) / n
    # keep only the kinks: item k's point stays where the slope changes after it
    keep = [0, *(k for k in range(1, n) if gains[k - 1] != gains[k]), n]
    return [(k / n, float(acc[k])) for k in keep]


def auroc(labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """The probability that a random positive scores above a random negative, ties counting one half (the
    area under the ROC curve; NaN without positives or negatives)."""
    flags, values = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    pos, neg = values[flags], values[~flags]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def random_curve(edge_acc: float, cloud_acc: float, shares: Sequence[float] | None = None) -> list[Point]:
    """The expected curve of random routing: at share s, (1 − s)·edge + s·cloud (default shares 0, 0.1, …, 1)."""
    grid = [i / 10 for i in range(11)] if shares is None else [float(s) for s in shares]
    return [(s, (1 - s) * edge_acc + s * cloud_acc) for s in grid]


def sweep(
    scores: Sequence[float] | np.ndarray,
    edge_correct: Sequence[float] | np.ndarray,
    cloud_correct: Sequence[float] | np.ndarray,
    cloud_cost: Sequence[float] | np.ndarray | None = None,
) -> list[Point]:
    """A router's curve on an outcome table: for every threshold t that changes the split (−∞ and each
    distinct score), items scoring above t take the cloud's result, the rest the edge's. The first
    coordinate is the cloud share, or with `cloud_cost` (one per item) the mean cloud cost per item."""
    edge, cloud = _pair(edge_correct, cloud_correct)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != edge.shape:
        raise ValidationError(f"need one score per item: {len(edge)} items, scores of shape {s.shape}")
    cost = np.ones_like(s) if cloud_cost is None else np.asarray(cloud_cost, dtype=np.float64)
    out: list[Point] = []
    for t in [-np.inf, *np.unique(s)]:
        to_cloud = s > t
        out.append((float(np.where(to_cloud, cost, 0.0).mean()), float(np.where(to_cloud, cloud, edge).mean())))
    return sorted(out)


def _pair(
    edge_correct: Sequence[float] | np.ndarray, cloud_correct: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    edge = np.asarray(edge_correct, dtype=np.float64)
    cloud = np.asarray(cloud_correct, dtype=np.float64)
    if edge.ndim != 1 or edge.shape != cloud.shape or not len(edge):
        raise ValidationError(f"need one edge and one cloud result per item, got shapes {edge.shape}, {cloud.shape}")
    return edge, cloud


def _sorted(points: Curve) -> list[Point]:
    curve = sorted((float(s), float(a)) for s, a in points)
    if not curve:
        raise ValidationError("a curve needs at least one point")
    if curve[0][0] < 0 or curve[-1][0] > 1:
        raise ValidationError("cloud shares must lie in [0, 1]")
    return curve


def _prepare(points: Curve, edge_acc: float, cloud_acc: float, anchored: bool) -> list[Point]:
    curve = list(points)
    if anchored:
        shares = {float(s) for s, _ in curve}
        curve += [p for p in ((0.0, edge_acc), (1.0, cloud_acc)) if p[0] not in shares]
    return _sorted(curve)


def _first_crossing(curve: list[Point], target: float, *, interpolate: bool) -> float | None:
    for i, (share, acc) in enumerate(curve):
        if acc >= target:
            if not interpolate or i == 0:
                return share
            s0, a0 = curve[i - 1]
            return s0 + (target - a0) / (acc - a0) * (share - s0)
    return None


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
