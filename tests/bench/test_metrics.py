"""Cost–quality metrics against hand-computed examples (the arithmetic is in the comments)."""

from __future__ import annotations

import pytest

from tandemlm.bench.metrics import (
    aiq,
    apgr,
    auroc,
    cpt,
    nondecreasing_hull,
    oracle,
    pgr,
    random_curve,
    share_at_quality,
    sweep,
)
from tandemlm.errors import ValidationError

EDGE, CLOUD = 0.4, 0.8
# a router measured at two thresholds; anchored at (0, 0.4) and (1, 0.8)
CURVE = [(0.25, 0.6), (0.5, 0.7)]


def test_pgr() -> None:
    # (0.6 - 0.4) / (0.8 - 0.4) = 0.5
    assert pgr(0.6, EDGE, CLOUD) == pytest.approx(0.5)
    assert pgr(EDGE, EDGE, CLOUD) == 0.0
    assert pgr(CLOUD, EDGE, CLOUD) == pytest.approx(1.0)
    with pytest.raises(ValidationError):
        pgr(0.5, 0.5, 0.5)


def test_apgr_as_routellm_defines_it() -> None:
    # anchored curve (0, .4) (.25, .6) (.5, .7) (1, .8); PGR 0, .5, .75, 1
    # trapezoids: .25·(0 + .5)/2 = .0625; .25·(.5 + .75)/2 = .15625; .5·(.75 + 1)/2 = .4375 → .65625
    # RouteLLM's form: AUC = .125 + .1625 + .375 = .6625; (.6625 − .4) / (.8 − .4) = .65625
    assert apgr(CURVE, EDGE, CLOUD) == pytest.approx(0.65625)
    # the anchors already present are not added twice
    assert apgr([(0.0, EDGE), *CURVE, (1.0, CLOUD)], EDGE, CLOUD) == pytest.approx(0.65625)


def test_apgr_unanchored_uses_the_covered_width() -> None:
    # points (.25, .6) (.5, .7): AUC = .25·(.6 + .7)/2 = .1625, W = .25
    # (.1625 − .4·.25) / ((.8 − .4)·.25) = .0625 / .1 = .625 (the mean PGR over [.25, .5])
    assert apgr(CURVE, EDGE, CLOUD, anchored=False) == pytest.approx(0.625)


def test_random_router_has_apgr_one_half() -> None:
    # accuracy (1 − s)·edge + s·cloud is linear, so PGR(s) = s and ∫₀¹ s ds = 0.5
    curve = random_curve(EDGE, CLOUD)
    assert curve[0] == (0.0, EDGE)
    assert curve[5] == (0.5, pytest.approx(0.6))
    assert apgr(curve, EDGE, CLOUD) == pytest.approx(0.5)
    assert apgr(random_curve(0.25, 0.43, [0.3]), 0.25, 0.43) == pytest.approx(0.5)


def test_cpt_interpolates_like_routellm() -> None:
    # CPT(50%): target .4 + .5·.4 = .6, met exactly at share .25
    assert cpt(CURVE, EDGE, CLOUD, 0.5) == pytest.approx(0.25)
    # CPT(80%): target .72 between (.5, .7) and (1, .8): .5 + (.72 − .7)/(.8 − .7)·.5 = .6
    # (np.interp(.72, [.4, .6, .7, .8], [0, .25, .5, 1]) = .6 in RouteLLM)
    assert cpt(CURVE, EDGE, CLOUD, 0.8) == pytest.approx(0.6)
    # CPT(20%): target .48 between (0, .4) and (.25, .6): .08/.2·.25 = .1
    assert cpt(CURVE, EDGE, CLOUD, 0.2) == pytest.approx(0.1)


def test_cpt_none_when_unreachable() -> None:
    # without anchors the curve peaks at .7 = PGR .75: 80% is never reached
    assert cpt(CURVE, EDGE, CLOUD, 0.8, anchored=False) is None
    # with anchors the all-cloud point reaches PGR 1, but nothing reaches 1.2
    assert cpt(CURVE, EDGE, CLOUD, 1.2) is None


def test_cpt_takes_the_first_crossing_of_a_non_monotone_curve() -> None:
    # (0, .4) (.2, .7) (.4, .5) (1, .8): target .6 (PGR .5) first crossed between 0 and .2: .2/.3·.2 = .1333
    assert cpt([(0.2, 0.7), (0.4, 0.5)], EDGE, CLOUD, 0.5) == pytest.approx(0.2 / 0.3 * 0.2)


def test_share_at_quality() -> None:
    # 95% of always-cloud: .95·.8 = .76; measured points reaching it: only (1, .8)
    curve = [(0.0, EDGE), *CURVE, (1.0, CLOUD)]
    assert share_at_quality(curve, 0.95 * CLOUD) == 1.0
    # interpolated: .5 + (.76 − .7)/.1·.5 = .8
    assert share_at_quality(curve, 0.95 * CLOUD, interpolate=True) == pytest.approx(0.8)
    assert share_at_quality(curve, 0.7) == 0.5
    assert share_at_quality(CURVE, 0.9) is None


def test_oracle_binary() -> None:
    # 10 items: the edge is right on 4 (acc .4), the cloud on 6 (acc .6), and it is right where the edge
    # is wrong on items 4, 5, 6, 7: the cloud fixes a share .4
    edge = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    cloud = [1, 1, 0, 0, 1, 1, 1, 1, 0, 0]
    # oracle: (0, .4) rising with slope 1 to (.4, .8), then flat to (1, .8)
    assert oracle(edge, cloud) == [(0.0, 0.4), (0.4, pytest.approx(0.8)), (1.0, pytest.approx(0.8))]
    # APGR against edge .4 and cloud .6: PGR (0, 0), (.4, 2), (1, 2): .4·2/2 + .6·2 = 1.6
    assert apgr(oracle(edge, cloud), 0.4, 0.6) == pytest.approx(1.6)
    # CPT(50%) target .5 → .1 of the calls
    assert cpt(oracle(edge, cloud), 0.4, 0.6, 0.5) == pytest.approx(0.1)


def test_auroc_counts_pairs_and_half_counts_ties() -> None:
    labels = [True, True, True, False]
    assert auroc(labels, [0.9, 0.8, 0.7, 0.2]) == 1.0
    assert auroc(labels, [0.1, 0.1, 0.1, 0.2]) == 0.0
    # positives .9, .5, .2 against negatives .5, .1: pairs won 2 + 1 + 1, tied 1, of 6
    assert auroc([True, True, True, False, False], [0.9, 0.5, 0.2, 0.5, 0.1]) == pytest.approx(4.5 / 6)
    assert auroc([True, True], [0.3, 0.4]) != auroc([True, True], [0.3, 0.4])  # NaN: no negatives


def test_oracle_graded() -> None:
    # gains max(cloud − edge, 0) = .5, 0, .25 → sorted .5, .25, 0; edge mean .5
    # acc at k = 0..3: .5, (1.5 + .5)/3, (1.5 + .75)/3, same → kinks at 0, 1/3, 2/3, then flat to 1
    points = oracle([0.5, 1.0, 0.0], [1.0, 0.5, 0.25])
    assert points == [
        (0.0, pytest.approx(0.5)),
        (pytest.approx(1 / 3), pytest.approx(2 / 3)),
        (pytest.approx(2 / 3), pytest.approx(0.75)),
        (1.0, pytest.approx(0.75)),
    ]


def test_aiq_ignores_a_dominated_point() -> None:
    # (0, .4) (.5, .5) (1, .8): (.5, .5) lies under the chord from (0, .4) to (1, .8) (.6 there)
    # hull = chord: area = 1·(.4 + .8)/2 = .6, range 1 → AIQ .6
    points = [(0.0, 0.4), (0.5, 0.5), (1.0, 0.8)]
    assert nondecreasing_hull(points) == [(0.0, 0.4), (1.0, 0.8)]
    assert aiq(points) == pytest.approx(0.6)
    assert aiq([(0.0, 0.4), (1.0, 0.8)]) == pytest.approx(0.6)


def test_aiq_hull_is_non_decreasing() -> None:
    # (0, .4) (.5, .9) (1, .7): past the best point the hull stays flat at .9
    # area = .5·(.4 + .9)/2 + .5·.9 = .325 + .45 = .775
    points = [(0.0, 0.4), (0.5, 0.9), (1.0, 0.7)]
    assert nondecreasing_hull(points) == [(0.0, 0.4), (0.5, 0.9)]
    assert aiq(points) == pytest.approx(0.775)


def test_aiq_with_dollar_costs_and_a_shared_range() -> None:
    # $ per query: (.001, .4) (.003, .8) over its own range [.001, .003]: (.4 + .8)/2 = .6
    assert aiq([(0.001, 0.4), (0.003, 0.8)]) == pytest.approx(0.6)
    # a shared range [.001, .005] extends the hull flat: (.002·.6 + .002·.8) / .004 = .7
    assert aiq([(0.001, 0.4), (0.003, 0.8)], cost_range=(0.001, 0.005)) == pytest.approx(0.7)
    with pytest.raises(ValidationError):
        aiq([(0.001, 0.4), (0.003, 0.8)], cost_range=(0.0, 0.003))


def test_sweep_every_threshold() -> None:
    # scores .9 .1 .5 .5; the edge right on items 1, 2; the cloud on 0, 2, 3
    # t = −∞: all cloud → 3/4; t = .1: items 0, 2, 3 to the cloud → 1, 1, 1 plus edge item 1 → 4/4
    # t = .5: item 0 only → cloud 1 + edge (1, 1, 0) → 3/4; t = .9: none → edge 2/4
    curve = sweep([0.9, 0.1, 0.5, 0.5], [0, 1, 1, 0], [1, 0, 1, 1])
    assert curve == [(0.0, 0.5), (0.25, 0.75), (0.75, 1.0), (1.0, 0.75)]


def test_sweep_with_cloud_cost_puts_the_mean_cost_on_the_first_axis() -> None:
    # scores 0.1 and 0.9; at t = 0.1 only the second item (cost 4) goes to the cloud: mean cost 4 / 2 = 2
    curve = sweep([0.1, 0.9], [1, 0], [0, 1], cloud_cost=[2.0, 4.0])
    assert curve == [(0.0, 0.5), (2.0, 1.0), (3.0, 0.5)]
