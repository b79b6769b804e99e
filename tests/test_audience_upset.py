"""plotting.upset: the bars are the brute-force counts of persons in exactly each combination."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from privdomain import plotting  # noqa: E402
from privdomain.audience import Segment, overlap  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upset_bars_equal_brute_force_counts(seed):
    rng = np.random.default_rng(seed)
    names = ["A", "B", "C", "D"][: 2 + seed]
    sets = {n: set(rng.choice(300, size=int(rng.integers(20, 150)), replace=False).tolist()) for n in names}
    segs = {n: Segment(np.array(sorted(s)), n, 300) for n, s in sets.items()}
    fig = plotting.upset(overlap(segs), top=None)
    ax_bar, ax_mat, ax_set = fig.axes
    heights = [p.get_height() for p in ax_bar.patches]
    # brute force: every non-empty combination, persons in exactly those sets
    union = set().union(*sets.values())
    expected = {}
    for r in range(1, len(names) + 1):
        for combo in itertools.combinations(names, r):
            n = sum(1 for p in union if all(p in sets[c] for c in combo)
                    and not any(p in sets[c] for c in names if c not in combo))
            if n:
                expected[combo] = n
    assert sorted(heights, reverse=True) == heights
    assert sorted(heights) == sorted(expected.values()) and sum(heights) == len(union)
    # the dots under each bar mark its combination: a combination's dots give back its count
    ys = {len(names) - 1 - i: n for i, n in enumerate(names)}
    for i, h in enumerate(heights):
        dark = [c for c in ax_mat.collections if tuple(np.round(c.get_facecolor()[0][:3], 2)) == (0.2, 0.2, 0.2)
                and c.get_offsets()[0][0] == i]
        combo = tuple(sorted((ys[int(round(y))] for c in dark for _, y in c.get_offsets()), key=names.index))
        assert expected[combo] == h
    widths = [p.get_width() for p in ax_set.patches]  # one bar per segment, in the given order
    assert widths == [len(sets[n]) for n in names]
    assert [t.get_text() for t in ax_set.texts] == [f"{len(sets[n]):,}" for n in names]
    labels = [t.get_text() for t in ax_bar.texts]
    assert labels == [f"{int(h):,}" for h in heights]  # every bar labelled with its n
    plt.close(fig)


def test_upset_keeps_the_top_combinations():
    a, b = Segment(np.arange(0, 50), "a", 100), Segment(np.arange(40, 60), "b", 100)
    fig = plotting.upset(overlap({"a": a, "b": b}), top=2)
    assert [p.get_height() for p in fig.axes[0].patches] == [40, 10]
    plt.close(fig)
