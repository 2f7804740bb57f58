"""Basket analysis: frequent itemsets and association rules against mlxtend's fpgrowth + association_rules,
the precomputed-counts path against the plain one, also_bought against a count by hand, and bad input."""

from __future__ import annotations

import itertools
import math
import random
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycrm.analytics import (
    MAX_ITEMSET_LEN,
    BasketCounts,
    FrequentItemsets,
    also_bought,
    association_rules,
    basket_counts,
    frequent_itemsets,
    min_basket_count,
)
from pycrm.analytics import _basket as basket_module
from pycrm.errors import ValidationError

ITEMS = [f"p{i}" for i in range(12)]


def mlxtend_result(baskets, min_support, max_len=None, metric="confidence", min_threshold=0.8):
    """mlxtend's itemsets ``{frozenset: support}`` and rules ``{(A, C): (support, confidence, lift, leverage,
    conviction)}`` for the same baskets (one-hot encoded by its TransactionEncoder)."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("mlxtend")
    from mlxtend.frequent_patterns import association_rules as ml_rules
    from mlxtend.frequent_patterns import fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    rows = [sorted(b) for b in baskets]
    te = TransactionEncoder()
    df = pd.DataFrame(te.fit(rows).transform(rows), columns=te.columns_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fi = fpgrowth(df, min_support=min_support, use_colnames=True, max_len=max_len)
        itemsets = dict(zip(fi["itemsets"], fi["support"]))
        if not itemsets:
            return itemsets, {}
        r = ml_rules(fi, num_itemsets=len(df), metric=metric, min_threshold=min_threshold)
    rules = {
        (a, c): (s, conf, lift, lev, conv)
        for a, c, s, conf, lift, lev, conv in zip(
            r["antecedents"], r["consequents"], r["support"], r["confidence"], r["lift"], r["leverage"], r["conviction"]
        )
    }
    return itemsets, rules


def ours(baskets, min_support, max_len=None, metric="confidence", min_threshold=0.8, as_pairs=False):
    data = [(f"b{i}", x) for i, b in enumerate(baskets) for x in b] if as_pairs else [list(b) for b in baskets]
    fi = frequent_itemsets(data, min_support=min_support, max_len=max_len)
    rules = association_rules(fi, metric=metric, min_threshold=min_threshold)
    return fi, {
        (frozenset(r.antecedent), frozenset(r.consequent)): (r.support, r.confidence, r.lift, r.leverage, r.conviction)
        for r in rules
    }


def assert_same(baskets, min_support, max_len=None, metric="confidence", min_threshold=0.8, as_pairs=False):
    ml_sets, ml_rules = mlxtend_result(baskets, min_support, max_len, metric, min_threshold)
    fi, rules = ours(baskets, min_support, max_len, metric, min_threshold, as_pairs)
    got = fi.as_dict()
    assert got.keys() == ml_sets.keys()
    for k, v in got.items():
        assert v == pytest.approx(ml_sets[k], rel=1e-12, abs=1e-15)
    assert rules.keys() == ml_rules.keys()
    for k, v in rules.items():
        for a, b in zip(v, ml_rules[k]):
            if math.isinf(b):
                assert a == b  # conviction: inf when the confidence is 1, as mlxtend gives it
            else:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return fi, rules


def random_baskets(rng: random.Random, n: int, n_items: int = 12, bundles: int = 3):
    """Skewed baskets with a few bundles, so that there are long itemsets and rules."""
    weights = [1 / (i + 1) for i in range(n_items)]
    groups = [rng.sample(ITEMS[:n_items], rng.randint(2, 4)) for _ in range(bundles)]
    out = []
    for _ in range(n):
        b = set(rng.choices(ITEMS[:n_items], weights, k=rng.randint(0, 4)))
        for g in groups:
            if rng.random() < 0.3:
                b.update(g)
        out.append(b)
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("min_support", [0.05, 0.1, 0.15, 0.3, 0.7])
def test_rules_equal_mlxtend_on_seeded_baskets(seed, min_support):
    rng = random.Random(seed)
    baskets = random_baskets(rng, rng.choice([20, 30, 57, 200]), n_items=rng.choice([5, 8, 12]))
    fi, rules = assert_same(baskets, min_support, min_threshold=0.5)
    if seed == 0 and min_support == 0.05:
        assert any(len(s.items) >= 3 for s in fi) and rules  # the case has substance


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    baskets=st.lists(st.sets(st.sampled_from(ITEMS[:7]), max_size=6), max_size=40),
    min_support=st.sampled_from([0.01, 0.1, 0.2, 0.25, 1 / 3, 0.3, 0.5, 0.6, 1.0]),
    max_len=st.sampled_from([None, 1, 2, 3]),
    rule=st.sampled_from(
        [
            ("confidence", 0.0),
            ("confidence", 0.5),
            ("confidence", 1.0),
            ("lift", 1.0),
            ("lift", 1.2),
            ("leverage", 0.0),
            ("support", 0.2),
            ("conviction", 1.1),
        ]
    ),
    as_pairs=st.booleans(),
)
def test_rules_equal_mlxtend_property(baskets, min_support, max_len, rule, as_pairs):
    if as_pairs:
        baskets = [b for b in baskets if b]  # a basket without lines has no (basket_id, item) pair
    assert_same(baskets, min_support, max_len, rule[0], rule[1], as_pairs)


def test_edge_cases_against_mlxtend():
    assert_same([["a"]], 0.5)
    assert_same([["a", "b", "c"]] * 5, 0.5, min_threshold=0.0)  # all identical: every subset, confidence 1
    assert_same([["a"], []], 0.5)  # an empty basket counts as a basket
    _, rules = assert_same([["a", "b"], ["a", "b"], ["a"], ["c"]], 0.25, min_threshold=0.0)
    assert rules[(frozenset("b"), frozenset("a"))][4] == math.inf  # confidence 1 -> conviction inf
    # 0.28 * 25 rounds to 7.000000000000001: mlxtend keeps single items seen in 7 baskets, not pairs...
    baskets = [["x", "y"]] * 7 + [["z"]] * 18
    fi, _ = assert_same(baskets, 0.28, min_threshold=0.0)
    assert fi.count(["x"]) == 7 and fi.count(["x", "y"]) is None
    assert_same(baskets, 0.28, min_threshold=0.0, as_pairs=True)
    assert_same([*baskets, ["x", "z"]], 0.28, min_threshold=0.0)
    # ...unless its tree is one path (nested baskets), which it does not prune
    fi, _ = assert_same([["x", "y"]] * 7 + [["x"]] * 2 + [[]] * 16, 0.28, min_threshold=0.0)
    assert fi.count(["x", "y"]) == 7


def test_empty_input():
    fi = frequent_itemsets([], min_support=0.5)
    assert len(fi) == 0 and fi.n_baskets == 0 and fi.support(["a"]) is None
    assert list(association_rules(fi)) == []  # mlxtend raises on no itemsets; an empty list here
    assert list(also_bought([], "a")) == []
    fi = frequent_itemsets([[], []], min_support=1)
    assert fi.n_baskets == 2 and len(fi) == 0


@pytest.mark.parametrize("chunk", [7, 1 << 16])
def test_pairs_mapping_and_collections_agree(chunk, monkeypatch):
    monkeypatch.setattr(basket_module, "_CHUNK", chunk)  # baskets whose lines span chunks
    rng = random.Random(5)
    baskets = random_baskets(rng, 120)
    baskets = [b for b in baskets if b]
    lines = [(i, x) for i, b in enumerate(baskets) for x in sorted(b)]
    lines += lines[::7]  # a product twice in one order counts once
    rng.shuffle(lines)  # any order
    a = frequent_itemsets(lines, min_support=0.1)
    b = frequent_itemsets([sorted(x) for x in baskets], min_support=0.1)
    c = frequent_itemsets({f"o{i}": x for i, x in enumerate(baskets)}, min_support=12)
    d = frequent_itemsets(iter([((i % 3, i), x) for i, b in enumerate(baskets) for x in b]), min_support=0.1)
    assert a.as_dict() == b.as_dict() == c.as_dict() == d.as_dict()
    assert list(a) == list(b) and len(a) > 10


def brute_force(baskets, min_count, max_len):
    """Every itemset counted by enumeration (no FP-growth)."""
    out = {}
    items = sorted(set().union(*baskets)) if baskets else []
    for k in range(1, (max_len or len(items)) + 1):
        for combo in itertools.combinations(items, k):
            n = sum(1 for b in baskets if set(combo) <= b)
            if n >= min_count:
                out[combo] = n
    return out


@settings(max_examples=60, deadline=None)
@given(
    baskets=st.lists(st.sets(st.sampled_from(ITEMS[:6]), max_size=6), max_size=30),
    min_count=st.integers(1, 6),
    max_len=st.sampled_from([None, 2, 3, 4]),
)
def test_counts_path_equals_plain_path_and_brute_force(baskets, min_count, max_len):
    plain = frequent_itemsets([list(b) for b in baskets], min_support=min_count, max_len=max_len)
    assert {s.items: s.count for s in plain} == brute_force(baskets, min_count, max_len)
    counts = basket_counts([list(b) for b in baskets], min_support=min_count)
    frequent = set(counts.items)
    # what a SQL query would send back: only baskets with three or more frequent items, reduced to those
    reduced = [sorted(b & frequent) for b in baskets if len(b & frequent) >= 3]
    pushed = frequent_itemsets(reduced, min_support=min_count, max_len=max_len, counts=counts)
    assert pushed.as_dict() == plain.as_dict()
    assert pushed.n_baskets == len(baskets)
    # the counts may also hold infrequent entries, and the baskets be the full ones
    noisy = BasketCounts(
        counts.n_baskets,
        {**{x: 0 for x in ITEMS[6:8]}, **counts.items},
        {**counts.pairs, ("p6", "p7"): 0},
    )
    full = frequent_itemsets([list(b) for b in baskets], min_support=min_count, max_len=max_len, counts=noisy)
    assert full.as_dict() == plain.as_dict()
    # a database collation may sort a pair's ids otherwise than Python: either order is read the same
    flipped = BasketCounts(counts.n_baskets, counts.items, {(b, a): k for (a, b), k in counts.pairs.items()})
    assert frequent_itemsets(reduced, min_support=min_count, max_len=max_len, counts=flipped).as_dict() == plain.as_dict()


def test_also_bought_is_the_rule_from_the_product():
    rng = random.Random(11)
    baskets = random_baskets(rng, 300)
    rows = also_bought([sorted(b) for b in baskets], "p0", top=None)
    with_p0 = [b for b in baskets if "p0" in b]
    n = len(baskets)
    expected = {x: sum(1 for b in with_p0 if x in b) for x in ITEMS if x != "p0"}
    assert {r.item: r.count for r in rows} == {x: k for x, k in expected.items() if k}
    fi = frequent_itemsets([sorted(b) for b in baskets], min_support=1, max_len=2)
    rules = {r.consequent[0]: r for r in association_rules(fi, min_threshold=0.0) if r.antecedent == ("p0",)}
    for r in rows:
        rule = rules[r.item]
        assert (r.count, r.support, r.confidence, r.lift) == (rule.count, rule.support, rule.confidence, rule.lift)
        assert r.support == r.count / n
    keys = [(-r.confidence, -r.lift, r.item) for r in rows]
    assert keys == sorted(keys)
    top3 = also_bought([sorted(b) for b in baskets], "p0", top=3)
    assert list(top3) == list(rows[:3])
    assert [r.item for r in also_bought([sorted(b) for b in baskets], "p0", min_count=50, top=None)] == [
        r.item for r in rows if r.count >= 50
    ]
    assert list(also_bought([["a"]], "zzz")) == []


def test_rule_filters_and_order():
    rng = random.Random(3)
    baskets = [sorted(b) for b in random_baskets(rng, 200)]
    fi = frequent_itemsets(baskets, min_support=0.05)
    every = association_rules(fi, min_threshold=0.0)
    some = association_rules(fi, min_threshold=0.0, min_confidence=0.5, min_lift=1.5)
    assert list(some) == [r for r in every if r.confidence >= 0.5 and r.lift >= 1.5]
    by_lift = association_rules(fi, metric="lift", min_threshold=1.5)
    assert {(r.antecedent, r.consequent) for r in by_lift} == {(r.antecedent, r.consequent) for r in every if r.lift >= 1.5}
    keys = [(-r.confidence, -r.lift, r.antecedent, r.consequent) for r in every]
    assert keys == sorted(keys)
    for r in every:
        assert r.leverage == pytest.approx(r.support - r.antecedent_support * r.consequent_support)
        assert r.count == fi.count(r.antecedent + r.consequent)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_support": 0}, "min_support"),
        ({"min_support": 0.0}, "min_support"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_support": -0.1}, "min_support"),
        ({"min_support": float("nan")}, "min_support"),
        ({"min_support": True}, "min_support"),
        ({"min_support": "0.1"}, "min_support"),
        ({"min_support": 0.1, "max_len": 0}, "max_len"),
        ({"min_support": 0.1, "max_len": MAX_ITEMSET_LEN + 1}, "max_len"),
        ({"min_support": 0.1, "max_len": 2.0}, "max_len"),
        ({"min_support": 0.1, "max_itemsets": 0}, "max_itemsets"),
        ({"min_support": 0.1, "counts": {"a": 1}}, "counts"),
    ],
)
def test_bad_arguments_are_named(kwargs, field):
    with pytest.raises(ValidationError) as e:
        frequent_itemsets([["a", "b"]], **kwargs)
    assert e.value.fields == [field]


@pytest.mark.parametrize(
    ("baskets", "field"),
    [
        ("ab", "baskets"),
        (None, "baskets"),
        ([["a", ""]], "baskets[0]"),
        ([["a"], ["b", 3]], "baskets[1]"),
        ([["a"], "b"], "baskets[1]"),
        ([("o1", "a"), ("o1", None)], "baskets[1][1]"),
        ([("o1", "a"), ("o1", "b", "c")], "baskets[1]"),
        ([("o1", "a"), ["b"]], "baskets[1]"),
        ([(None, "a")], "baskets[0][0]"),
        ([["a", ["b"]]], "baskets[0]"),
        ([None, ["a"]], "baskets[0]"),
        ([("o1", "a"), ("o1", {"b": 1})], "baskets[1][1]"),
        ([(["o1"], "a")], "baskets[0][0]"),
        ([("o1", "a"), ("o2", "b"), (None, "b")], "baskets[2][0]"),
        ([("o1", "a")] * 70_000 + [("o2", 5)], "baskets[70000][1]"),
        ([("o1", "a")] * 70_000 + [("o2", "b", "c")], "baskets[70000]"),
        ([("o1", "a")] * 70_000 + [({}, "b")], "baskets[70000][0]"),
    ],
)
def test_bad_baskets_are_named(baskets, field):
    with pytest.raises(ValidationError) as e:
        frequent_itemsets(baskets, min_support=1)
    assert e.value.fields == [field]


def test_bad_counts_are_named():
    ok = {"a": 2, "b": 1}
    for counts, field in [
        (BasketCounts(-1, ok, {}), "counts.n_baskets"),
        (BasketCounts(1, ok, {}), "counts.items['a']"),
        (BasketCounts(2, ok, {("a", "a"): 1}), "counts.pairs[('a', 'a')]"),
        (BasketCounts(2, ok, {("a", "b"): 1, ("b", "a"): 1}), "counts.pairs[('b', 'a')]"),
        (BasketCounts(2, ok, {("a", ""): 1}), "counts.pairs[('a', '')]"),
        (BasketCounts(2, ok, {("a", "b"): 2}), "counts.pairs[('a', 'b')]"),
    ]:
        with pytest.raises(ValidationError) as e:
            frequent_itemsets([], min_support=1, counts=counts)
        assert e.value.fields == [field]
    with pytest.raises(ValidationError) as e:  # more baskets given than counted
        frequent_itemsets([["a"]] * 3, min_support=1, counts=BasketCounts(2, ok, {}))
    assert e.value.fields == ["counts.n_baskets"]


def test_bad_rule_and_also_bought_arguments():
    fi = frequent_itemsets([["a", "b"]] * 2, min_support=1)
    for kwargs, field in [
        ({"metric": "zhang"}, "metric"),
        ({"min_threshold": 1.5}, "min_threshold"),
        ({"min_threshold": float("inf")}, "min_threshold"),
        ({"metric": "lift", "min_threshold": -1}, "min_threshold"),
        ({"min_confidence": 2}, "min_confidence"),
        ({"min_lift": "x"}, "min_lift"),
    ]:
        with pytest.raises(ValidationError) as e:
            association_rules(fi, **kwargs)
        assert e.value.fields == [field]
    with pytest.raises(ValidationError) as e:
        association_rules([("a",)])  # type: ignore[arg-type]
    assert e.value.fields == ["itemsets"]
    for args, kwargs, field in [
        ((""), {}, "product"),
        ((None), {}, "product"),
        (("a"), {"top": 0}, "top"),
        (("a"), {"min_count": 0}, "min_count"),
    ]:
        with pytest.raises(ValidationError) as e:
            also_bought([["a"]], args, **kwargs)
        assert e.value.fields == [field]


def test_explosion_is_refused_before_the_work():
    long_basket = [f"i{k:02d}" for k in range(MAX_ITEMSET_LEN + 5)]  # 2**25 subsets, all frequent
    with pytest.raises(ValidationError) as e:
        frequent_itemsets([long_basket] * 3, min_support=0.5)
    assert e.value.fields == ["min_support"] and "raise min_support" in str(e.value)
    with pytest.raises(ValidationError) as e:
        frequent_itemsets([long_basket[:8]] * 3, min_support=0.5, max_itemsets=100)  # 255 itemsets
    assert e.value.fields == ["min_support"]
    fi = frequent_itemsets([long_basket[:8]] * 3, min_support=0.5, max_len=2)
    assert len(fi) == 8 + 28
    # no basket frequent by itself: the cap stops the mining itself
    twelve = long_basket[:12]
    leave_one_out = [[x for x in twelve if x != y] for y in twelve]
    assert len(frequent_itemsets(leave_one_out, min_support=2, max_len=3)) == 12 + 66 + 220
    with pytest.raises(ValidationError) as e:
        frequent_itemsets(leave_one_out, min_support=2, max_itemsets=1000)
    assert e.value.fields == ["min_support"]


def test_rule_candidates_are_capped(monkeypatch):
    fi = frequent_itemsets([["a", "b", "c", "d"]] * 2, min_support=1)  # 11 itemsets of 2+ items: 50 candidates
    assert len(association_rules(fi, min_threshold=0.0)) == 50
    monkeypatch.setattr(basket_module, "MAX_RULE_CANDIDATES", 49)
    with pytest.raises(ValidationError) as e:
        association_rules(fi)
    assert e.value.fields == ["itemsets"]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 500), share=st.floats(0.0001, 1.0))
def test_min_basket_count_is_the_smallest_count_with_that_support(n, share):
    k = min_basket_count(share, n)
    fi = frequent_itemsets([["a"]] * k + [[]] * (n - k), min_support=share)
    if n:
        assert k / n >= share and (k == 1 or (k - 1) / n < share)
        assert fi.count(["a"]) == k
    with pytest.raises(ValidationError) as e:
        min_basket_count(share, -1)
    assert e.value.fields == ["n_baskets"]


SQL_FREQUENT = """
    SELECT product_id FROM order_lines GROUP BY product_id HAVING COUNT(DISTINCT order_id) >= :min_count"""
SQL_LINES = f"""
    SELECT DISTINCT order_id, product_id FROM order_lines WHERE product_id IN ({SQL_FREQUENT})"""
SQL_ITEMS = """
    SELECT product_id, COUNT(DISTINCT order_id) FROM order_lines
    GROUP BY product_id HAVING COUNT(DISTINCT order_id) >= :min_count"""
SQL_PAIRS = f"""
    WITH b AS ({SQL_LINES})
    SELECT x.product_id, y.product_id, COUNT(*) FROM b x JOIN b y
      ON x.order_id = y.order_id AND x.product_id < y.product_id
    GROUP BY x.product_id, y.product_id HAVING COUNT(*) >= :min_count"""
SQL_REST = f"""
    WITH b AS ({SQL_LINES}),
         big AS (SELECT order_id FROM b GROUP BY order_id HAVING COUNT(*) >= 3)
    SELECT b.order_id, b.product_id FROM b JOIN big ON big.order_id = b.order_id ORDER BY b.order_id"""


@pytest.mark.parametrize("min_support", [0.02, 0.05, 0.28, 4])
def test_pair_counts_pushed_into_sql_give_the_same_itemsets(min_support):
    """The recipe of docs/basket.md ("Pair counts from SQL") on SQLite: item and pair counts and the baskets
    with three or more frequent items come from SQL; frequent_itemsets(counts=...) mines the rest."""
    import sqlite3

    rng = random.Random(17)
    baskets = [b or {"p0"} for b in random_baskets(rng, 400)]  # 400 orders with lines
    lines = [(f"SO-{i}", x) for i, b in enumerate(baskets) for x in sorted(b)]
    lines += lines[::5]  # a product on two lines of one order
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE order_lines (order_id TEXT, product_id TEXT)")
    db.executemany("INSERT INTO order_lines VALUES (?, ?)", lines)
    (n,) = db.execute("SELECT COUNT(DISTINCT order_id) FROM order_lines").fetchone()
    p = {"min_count": min_basket_count(min_support, n)}
    counts = BasketCounts(
        n,
        {a: k for a, k in db.execute(SQL_ITEMS, p)},
        {(a, b): k for a, b, k in db.execute(SQL_PAIRS, p)},
    )
    pushed = frequent_itemsets(db.execute(SQL_REST, p), min_support=min_support, counts=counts)
    plain = frequent_itemsets(lines, min_support=min_support)
    assert pushed.as_dict() == plain.as_dict()
    ref = basket_counts(lines, min_support=min_support)  # the reference of the two queries
    assert counts.n_baskets == ref.n_baskets and dict(counts.items) == dict(ref.items)
    # HAVING uses the single-item count; pairs then also need mlxtend's ceil count (0.28 * 400 = 112.00000000000001)
    assert {k: v for k, v in counts.pairs.items() if v >= plain.min_count_multi} == dict(ref.pairs)
    assert (plain.min_count_multi > plain.min_count) == (min_support == 0.28)
    assert any(len(s.items) >= 3 for s in plain)


def test_frequent_itemsets_built_by_hand():
    fi = FrequentItemsets(4, {("a",): 3, frozenset({"b"}): 2, ("b", "a"): 2})
    assert fi.count(["a", "b"]) == 2 and fi.support(["b"]) == 0.5
    assert [(r.antecedent, r.consequent) for r in association_rules(fi)] == [(("b",), ("a",))]
    for args, kwargs, field in [
        ((-1, {}), {}, "n_baskets"),
        ((4, [("a", 1)]), {}, "counts"),
        ((4, {("a",): 5}), {}, "counts[('a',)]"),
        ((4, {("a", "a"): 1}), {}, "counts[('a', 'a')]"),
        ((4, {(): 1}), {}, "counts[()]"),
        ((4, {("a",): 1, frozenset({"a"}): 1}), {}, "counts[frozenset({'a'})]"),
        ((4, {}), {"min_count": 0}, "min_count"),
        ((4, {}), {"max_len": 99}, "max_len"),
    ]:
        with pytest.raises(ValidationError) as e:
            FrequentItemsets(*args, **kwargs)
        assert e.value.fields == [field]
    with pytest.raises(ValidationError) as e:  # a subset missing
        association_rules(FrequentItemsets(4, {("a",): 3, ("a", "b"): 2}))
    assert e.value.fields == ["itemsets"] and "('b',) is missing" in str(e.value)
