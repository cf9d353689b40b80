# Copyright (c) mmdet_yolor contributors. All rights reserved.
import math

import pytest

from mmdet_yolor.analysis.seed_statistics import (AHEAD, BEHIND,
                                                  MAX_SEEDS_NEEDED,
                                                  interval_verdict, seed_delta,
                                                  seed_label, seeds_needed,
                                                  t_interval)
from mmdet_yolor.errors import InputError


def test_t_interval_of_known_values():
    # mean 2, sample std 1, n 4: half width t(0.975, 3) / 2 = 3.182 / 2
    low, high = t_interval([1.0, 2.0, 2.0, 3.0])
    std = math.sqrt(2 / 3)
    half = 3.182446305284263 * std / 2
    assert (low, high) == pytest.approx((2 - half, 2 + half), abs=1e-9)


def test_a_seed_interval_needs_two_seeds():
    with pytest.raises(InputError, match='needs at least 2 seeds'):
        t_interval([0.01])
    with pytest.raises(InputError, match='got 0'):
        t_interval([])


def test_seed_delta_pairs_differences():
    paired = seed_delta([(0, 0.30, 0.33), (1, 0.32, 0.33), (2, 0.31, 0.33)])
    assert paired.seeds == [0, 1, 2] and paired.pairs == 3
    assert paired.deltas == pytest.approx([0.03, 0.01, 0.02])
    assert paired.mean == pytest.approx(0.02)
    assert paired.std == pytest.approx(0.01)
    assert paired.ci95 == pytest.approx(
        list(t_interval(paired.deltas)), abs=1e-12)
    single = seed_delta([(0, 0.30, 0.35)])
    assert single.std is None and single.ci95 is None


def test_verdicts_of_intervals():
    assert interval_verdict([0.001, 0.02]) == AHEAD
    assert interval_verdict([-0.02, -0.001]) == BEHIND
    assert interval_verdict([-0.01, 0.02]) is None


def test_seeds_needed_is_the_fewest_that_exclude_zero():
    needed = seeds_needed(0.01, 0.02)
    assert needed is not None
    assert interval_verdict(
        t_interval([0.01 + 0.02 * s for s in _unit_spread(needed)])) == AHEAD
    assert interval_verdict(
        t_interval([0.01 + 0.02 * s
                    for s in _unit_spread(needed - 1)])) is None
    assert seeds_needed(0.0, 0.01) is None
    assert seeds_needed(0.01, 0.0) == 2
    assert seeds_needed(1e-6, 1.0) is None
    assert MAX_SEEDS_NEEDED >= 100


def _unit_spread(n):
    """n values of mean 0 and sample standard deviation 1."""
    values = [i - (n - 1) / 2 for i in range(n)]
    std = math.sqrt(sum(v * v for v in values) / (n - 1))
    return [v / std for v in values]


def test_pairs_are_named_by_seed_or_by_their_place():
    assert seed_label(3, 0) == '3'
    assert seed_label(None, 0) == '#1' and seed_label(None, 2) == '#3'
