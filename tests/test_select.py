"""Real-image baselines: random, herding and k-center picks."""

import numpy as np
import pytest

from vlcp.select import select, select_herding, select_kcenter


def test_random_is_seeded_and_distinct():
    images = [f"{i}.png" for i in range(50)]
    a = select("random", images, 10, seed=3)
    assert a == select("random", images, 10, seed=3) != select("random", images, 10, seed=4)
    assert len(set(a)) == 10
    assert select("random", images[:4], 10, seed=0) == [0, 1, 2, 3]


def test_herding_first_pick_is_closest_to_the_mean():
    features = np.array([[0.0, 0.0], [10.0, 0.0], [4.0, 1.0], [6.0, -1.0]])
    # mean (5, 0): point 2 and 3 are equally close; the first in order wins; then 3 balances it exactly.
    assert select_herding(features, 2) == [2, 3]


def test_kcenter_picks_the_farthest_point_next():
    features = np.array([[0.0], [1.0], [2.0], [10.0]])
    picks = select_kcenter(features, 3, np.random.default_rng(0))
    assert len(set(picks)) == 3
    first = picks[0]
    distances = np.abs(features[:, 0] - features[first, 0])
    assert picks[1] == int(distances.argmax())


def test_methods_needing_features_say_so():
    with pytest.raises(ValueError, match="herding needs latents"):
        select("herding", ["a"], 1, 0)
