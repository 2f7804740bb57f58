"""Clusters hold together as a whole: a chain of weak links does not pull unrelated records into one group."""

from __future__ import annotations

import numpy as np

from pycrm.dedup import _cluster


def scorer(prob: dict[tuple[int, int], float]):
    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([prob.get((min(x, y), max(x, y)), 0.01) for x, y in zip(a.tolist(), b.tolist())])

    return score


def test_a_chain_of_neighbours_is_not_one_cluster() -> None:
    # 0-1-2-3-4-5-6-7: each record looks like the next one only
    n = 8
    links = {(i, i + 1): 0.9 for i in range(n - 1)}
    a = np.array([p[0] for p in links], dtype=np.int64)
    b = np.array([p[1] for p in links], dtype=np.int64)
    groups = _cluster.group(n, a, b, np.array(list(links.values())), 0.5, scorer(links))
    assert groups, "neighbours still pair up"
    assert all(len(g) <= 2 for g in groups)
    assert not any(0 in g and 7 in g for g in groups)


def test_two_groups_joined_by_one_bridge_stay_two_groups() -> None:
    # {0,1,2} all alike, {3,4,5} all alike, and 2 looks like 3
    prob = {(x, y): 0.99 for grp in ([0, 1, 2], [3, 4, 5]) for x in grp for y in grp if x < y}
    prob[(2, 3)] = 0.8
    a = np.array([p[0] for p in prob], dtype=np.int64)
    b = np.array([p[1] for p in prob], dtype=np.int64)
    groups = _cluster.group(6, a, b, np.array(list(prob.values())), 0.5, scorer(prob))
    assert sorted(sorted(g.tolist()) for g in groups) == [[0, 1, 2], [3, 4, 5]]


def test_a_coherent_group_is_kept_whole() -> None:
    prob = {(x, y): 0.97 for x in range(5) for y in range(5) if x < y}
    a = np.array([p[0] for p in prob], dtype=np.int64)
    b = np.array([p[1] for p in prob], dtype=np.int64)
    groups = _cluster.group(5, a, b, np.array(list(prob.values())), 0.5, scorer(prob))
    assert [sorted(g.tolist()) for g in groups] == [[0, 1, 2, 3, 4]]


def test_components_labels_connected_records_alike() -> None:
    labels = _cluster.components(7, np.array([0, 1, 4], dtype=np.int64), np.array([1, 2, 5], dtype=np.int64))
    assert labels[0] == labels[1] == labels[2]
    assert labels[4] == labels[5]
    assert len({labels[0], labels[3], labels[4], labels[6]}) == 4
