"""A fixed log-scale duration histogram: bins, and percentiles read back from bin counts.

Bin 0 holds durations under one second; bin ``i >= 1`` holds ``[2**((i-1)/4), 2**(i/4))``
seconds (a quarter octave, ~19% wide), up to ``2**26`` s (about two years), the last bin
taking everything longer. A percentile is answered with the geometric middle of the bin
holding its rank, so it is within about 9% of the exact value; better, with the seconds
summed per bin, with the mean of the values observed in that bin (so one 0.132 s run reads
0.132, not the bin's 0.5). With every value at hand (``samples``, kept for small counts)
the answer is exact. The bins are fixed so that counters can be added at write time
(DynamoDB ``ADD``) and summed across hours and days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

BINS_PER_OCTAVE = 4
BINS = 106


def bin_of(seconds: float) -> int:
    """The bin a duration falls in."""
    if seconds < 1:
        return 0
    return min(BINS - 1, 1 + math.floor(math.log2(seconds) * BINS_PER_OCTAVE))


def bin_value(index: int) -> float:
    """The value that stands for a bin: the geometric middle of its bounds (0.5 s for bin 0)."""
    if index <= 0:
        return 0.5
    low, high = 2 ** ((index - 1) / BINS_PER_OCTAVE), 2 ** (index / BINS_PER_OCTAVE)
    return math.sqrt(low * high)


def percentile(
    counts: Mapping[int, int], fraction: float, sums: Mapping[int, float] | None = None, samples: Sequence[float] = ()
) -> float | None:
    """The nearest-rank percentile (``fraction`` in (0, 1]) of a histogram; None when empty.

    Exact from ``samples`` when they are all the values counted; else the mean of the
    values in the bin holding the rank (from ``sums``), else that bin's middle.
    """
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    if len(samples) == total:
        return round(sorted(samples)[rank - 1], 3)
    seen = 0
    chosen = max(counts)
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            chosen = index
            break
    if sums and sums.get(chosen) and counts[chosen]:
        return round(sums[chosen] / counts[chosen], 3)
    return round(bin_value(chosen), 3)
