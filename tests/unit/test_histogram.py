"""The fixed log-scale duration histogram behind the statistics."""

from __future__ import annotations

import random

from chalicelib.domain.histogram import BINS, bin_of, bin_value, percentile


def test_bins_are_ordered_and_cover_every_duration() -> None:
    assert bin_of(0) == bin_of(0.99) == 0
    assert bin_of(1) == 1
    assert bin_of(10**12) == BINS - 1
    values = [0.5, 1, 1.5, 2, 30, 90, 600, 3600, 86400 * 30]
    assert [bin_of(v) for v in values] == sorted(bin_of(v) for v in values)


def test_a_bin_value_is_within_ten_percent_of_what_falls_in_it() -> None:
    for seconds in (1.0, 1.7, 9.9, 61, 599, 7200, 86400 * 7):
        assert abs(bin_value(bin_of(seconds)) - seconds) <= 0.1 * seconds


def test_percentiles_track_the_exact_ones() -> None:
    rng = random.Random(7)
    durations = [rng.lognormvariate(4, 1.2) + 1 for _ in range(5000)]
    counts: dict[int, int] = {}
    for d in durations:
        counts[bin_of(d)] = counts.get(bin_of(d), 0) + 1
    ordered = sorted(durations)
    for fraction in (0.5, 0.95):
        exact = ordered[int(fraction * len(ordered)) - 1]
        estimate = percentile(counts, fraction)
        assert estimate is not None and abs(estimate - exact) <= 0.1 * exact


def test_empty_histogram_has_no_percentile() -> None:
    assert percentile({}, 0.5) is None


def test_percentiles_are_exact_when_every_value_is_kept() -> None:
    values = [0.132, 0.4, 0.9, 2.5]
    counts = {0: 3, bin_of(2.5): 1}
    sums = {0: 0.132 + 0.4 + 0.9, bin_of(2.5): 2.5}
    assert percentile(counts, 0.5, sums, values) == 0.4
    assert percentile(counts, 0.95, sums, values) == 2.5
    assert percentile({0: 1}, 0.5, {0: 0.132}, [0.132]) == 0.132


def test_without_all_samples_a_percentile_is_the_mean_of_its_bin_never_an_edge() -> None:
    # two runs in bin 0 ([0, 1) s): the answer lies between them, not at the bin's 0.5
    counts, sums = {0: 2}, {0: 0.1 + 0.2}
    median = percentile(counts, 0.5, sums, samples=[0.1])  # one sample lost: histogram answers
    assert median is not None and 0.1 <= median <= 0.2
    assert percentile(counts, 0.5) == 0.5  # counters from before the sums existed: the bin's middle
