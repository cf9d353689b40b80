# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Paired statistics over training seeds, and the verdict they support.

A baseline and a YOLOR run trained with the same seed form a pair; their
differences are what training noise leaves of YOLOR's effect. With two or
more pairs, a Student-t interval of the mean difference says whether the
effect is larger than that noise; one pair cannot say it.
"""
import math
import statistics
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from scipy import stats

from ..errors import InputError

CONFIDENCE = 0.95
# Beyond this many seeds, "seeds needed" is reported as "more than".
MAX_SEEDS_NEEDED = 1000

AHEAD = 'YOLOR ahead'
BEHIND = 'YOLOR behind'


@dataclass
class SeedDelta:
    """YOLOR minus baseline over paired seeds, for one metric, as mmdet
    logs it (0-1).

    Attributes:
        seeds (list): The seed of each pair (None where the runs set none
            and were paired in the order given).
        deltas (list[float]): The difference of each pair.
        mean (float): Their mean.
        std (float, optional): Their sample standard deviation (ddof=1);
            None with one pair.
        ci95 (list[float], optional): The Student-t 95 % interval of the
            mean; None with one pair.
    """
    seeds: List[Optional[int]]
    deltas: List[float]
    mean: float
    std: Optional[float]
    ci95: Optional[List[float]]

    @property
    def pairs(self) -> int:
        return len(self.deltas)


def seed_label(seed: Optional[int], index: int) -> str:
    """How a pair is named: its seed, or ``#n`` for the n-th pair (from
    ``index`` 0) of runs that set no seed and pair in the order given."""
    return f'#{index + 1}' if seed is None else str(seed)


def t_interval(deltas: Sequence[float],
               confidence: float = CONFIDENCE) -> Tuple[float, float]:
    """The Student-t interval of the mean of ``deltas``.

    Raises:
        InputError: With fewer than 2 values: one seed has no spread to
            measure.
    """
    if len(deltas) < 2:
        raise InputError(
            f'a seed interval needs at least 2 seeds of each variant, got '
            f'{len(deltas)}; train more seeds (randomness.seed) and pass '
            f'every work dir')
    mean = statistics.mean(deltas)
    half = _t_quantile(confidence,
                       len(deltas)) * statistics.stdev(deltas) / math.sqrt(
                           len(deltas))
    return mean - half, mean + half


def _t_quantile(confidence: float, pairs: int) -> float:
    """The two-sided ``confidence`` quantile of Student's t with ``pairs -
    1`` degrees of freedom."""
    return float(stats.t.ppf(0.5 + confidence / 2, pairs - 1))


def seed_delta(
        pairs: Sequence[Tuple[Optional[int], float, float]]) -> SeedDelta:
    """The paired differences of ``(seed, baseline, yolor)`` triples."""
    deltas = [yolor - baseline for _, baseline, yolor in pairs]
    ci95 = list(t_interval(deltas)) if len(deltas) > 1 else None
    return SeedDelta([seed for seed, _, _ in pairs], deltas,
                     statistics.mean(deltas),
                     statistics.stdev(deltas) if len(deltas) > 1 else None,
                     ci95)


def seeds_needed(mean: float,
                 std: float,
                 confidence: float = CONFIDENCE) -> Optional[int]:
    """Roughly how many seeds make a mean difference of ``mean`` with this
    seed-to-seed ``std`` detectable: the fewest n whose t interval,
    ``t(n - 1) * std / sqrt(n)`` on each side, excludes 0. None if no
    number up to :data:`MAX_SEEDS_NEEDED` does (or ``mean`` is 0)."""
    if std == 0:
        return None if mean == 0 else 2
    for pairs in range(2, MAX_SEEDS_NEEDED + 1):
        if _t_quantile(confidence, pairs) * std / math.sqrt(pairs) < abs(mean):
            return pairs
    return None


def interval_verdict(ci95: Sequence[float]) -> Optional[str]:
    """:data:`AHEAD` or :data:`BEHIND` if the interval excludes 0, else
    None."""
    if ci95[0] > 0:
        return AHEAD
    if ci95[1] < 0:
        return BEHIND
    return None
