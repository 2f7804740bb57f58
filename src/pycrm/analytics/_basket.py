"""Basket analysis: frequent itemsets (FP-growth), association rules and "customers who bought X also bought".

A *basket* is the set of distinct items (product ids, as text) of one order. Baskets come as

- an iterable of ``(basket_id, item)`` pairs (tuples), e.g. order lines streamed from a query in any order;
  lines of the same item in one basket count once (quantities do not matter);
- an iterable of item collections (``list``, ``set`` or ``frozenset``; one per basket, empty ones count
  as baskets);
- a mapping ``{basket_id: items}``.

Definitions (the reference semantics; they are mlxtend's, whose ``fpgrowth`` + ``association_rules`` give the
same itemsets and rules on the same baskets, see docs/basket.md):

- ``support(S)`` = baskets holding every item of ``S`` / all baskets (a float, ``count / n``);
- an itemset is *frequent* when ``support >= min_support``; for itemsets of two or more items the count
  must also reach ``ceil(min_support * n)``, unless the baskets reduced to their frequent items are nested
  (mlxtend prunes its conditional trees with that count, and its tree is then one path that it does not
  prune; so on the rare float edge where ``min_support * n`` rounds above a whole number, e.g.
  ``0.28 * 25``, a pair in exactly 7 of 25 baskets is not frequent while a single item is; with precomputed
  ``counts`` the count rule always applies). ``min_support`` may also be a whole number of baskets;
- a rule ``A -> C`` (disjoint, non-empty, ``A | C`` frequent): ``confidence = support(A|C) / support(A)``,
  ``lift = confidence / support(C)``, ``leverage = support(A|C) - support(A) * support(C)``,
  ``conviction = (1 - support(C)) / (1 - confidence)``, ``inf`` when the confidence is 1. The floats are
  computed in mlxtend's order of operations (``association_rules(..., num_itemsets=n)``).

Bounded work: ``max_len`` is at most ``MAX_ITEMSET_LEN``; mining stops with a ValidationError naming
``min_support`` once more than ``max_itemsets`` (default ``MAX_ITEMSETS``) itemsets are frequent, and
``association_rules`` refuses itemsets that would yield more than ``MAX_RULE_CANDIDATES`` candidate rules,
before doing the work. A threshold so low that every subset of a long basket is frequent (``2**k`` itemsets
for a basket of ``k`` items) therefore fails fast, saying which argument to raise.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, KeysView, Mapping
from operator import itemgetter
from typing import Any, Literal

import attrs

from pycrm.analytics._common import aware, check_range, entities_of, within
from pycrm.analytics._report import Report
from pycrm.domain import Order
from pycrm.errors import FieldError, ValidationError

__all__ = [
    "MAX_ITEMSETS",
    "MAX_ITEMSET_LEN",
    "MAX_RULE_CANDIDATES",
    "AlsoBoughtRow",
    "AssociationRule",
    "BasketCounts",
    "FrequentItemsets",
    "Itemset",
    "also_bought",
    "also_bought_report",
    "association_rules",
    "basket_counts",
    "check_also_bought",
    "check_mining",
    "check_rules",
    "frequent_itemsets",
    "min_basket_count",
    "order_baskets",
]

#: The longest itemset ``max_len`` may ask for.
MAX_ITEMSET_LEN = 20
#: The default cap on the number of frequent itemsets (``max_itemsets``).
MAX_ITEMSETS = 1_000_000
#: The most candidate rules (``2**k - 2`` per frequent itemset of ``k`` items) ``association_rules`` examines.
MAX_RULE_CANDIDATES = 10_000_000

Metric = Literal["support", "confidence", "lift", "leverage", "conviction"]
_METRICS = ("support", "confidence", "lift", "leverage", "conviction")


def _fail(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError([FieldError(field, code, message)])


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------


@attrs.frozen
class Itemset:
    """A frequent itemset: its items (sorted), the baskets holding all of them, and that share of all baskets."""

    items: tuple[str, ...]
    count: int
    support: float


class FrequentItemsets:
    """The frequent itemsets of some baskets (shortest first, then most baskets first, then by items).

    Iterate it for :class:`Itemset` rows; ``len()`` counts them; ``count(items)`` and ``support(items)`` look
    one up (``None`` when it is not frequent). ``n_baskets`` is the number of baskets; ``min_count`` the
    count a single item needed, ``min_count_multi`` the count a larger itemset needed.
    """

    __slots__ = ("_counts", "itemsets", "max_len", "min_count", "min_count_multi", "n_baskets")

    def __init__(
        self,
        n_baskets: int,
        counts: Mapping[Any, int],  # itemsets as tuples or frozensets of item ids
        *,
        min_count: int = 1,
        min_count_multi: int | None = None,
        max_len: int | None = None,
    ) -> None:
        if isinstance(n_baskets, bool) or not isinstance(n_baskets, int) or n_baskets < 0:
            raise _fail("n_baskets", f"expected a whole number >= 0, got {n_baskets!r}", "type")
        if not isinstance(counts, Mapping):
            raise _fail("counts", f"expected a mapping of itemsets to counts, got {type(counts).__name__}", "type")
        min_count_multi = min_count if min_count_multi is None else min_count_multi
        for name, value in (("min_count", min_count), ("min_count_multi", min_count_multi)):
            _check_limit(name, value)
        self.n_baskets = n_baskets
        self.min_count = min_count
        self.min_count_multi = min_count_multi
        self.max_len = _check_max_len(max_len)
        self._counts: dict[tuple[str, ...], int] = {}
        for key, c in counts.items():
            where = f"counts[{key!r}]"
            if not isinstance(key, (tuple, frozenset)) or not key or any(type(x) is not str or not x for x in key):
                raise _fail(where, "an itemset must be a non-empty tuple or frozenset of item ids", "type")
            if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= n_baskets:
                raise _fail(where, f"expected a count in 1..{n_baskets}, got {c!r}", "range")
            items = tuple(sorted(set(key)))
            if len(items) != len(key) or items in self._counts:
                raise _fail(where, "an item or an itemset given twice", "duplicate")
            self._counts[items] = c
        n = n_baskets
        ordered = sorted(self._counts.items(), key=lambda kv: (len(kv[0]), -kv[1], kv[0]))
        self.itemsets: tuple[Itemset, ...] = tuple(Itemset(k, c, c / n) for k, c in ordered)

    def __iter__(self) -> Iterator[Itemset]:
        return iter(self.itemsets)

    def __len__(self) -> int:
        return len(self.itemsets)

    def __repr__(self) -> str:
        return f"<FrequentItemsets: {len(self.itemsets)} of {self.n_baskets} baskets>"

    def count(self, items: Iterable[str]) -> int | None:
        """Baskets holding all of ``items``, or None when that itemset is not frequent."""
        return self._counts.get(tuple(sorted(set(items))))

    def support(self, items: Iterable[str]) -> float | None:
        """The support of ``items``, or None when that itemset is not frequent."""
        c = self.count(items)
        return None if c is None else c / self.n_baskets

    def as_dict(self) -> dict[frozenset[str], float]:
        """``{frozenset(items): support}``: the shape of mlxtend's ``fpgrowth`` result, for comparison."""
        return {frozenset(s.items): s.support for s in self.itemsets}


@attrs.frozen
class AssociationRule:
    """A rule ``antecedent -> consequent`` with mlxtend's measures (see the module for the definitions)."""

    antecedent: tuple[str, ...]
    consequent: tuple[str, ...]
    count: int
    support: float
    antecedent_support: float
    consequent_support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float


@attrs.frozen
class AlsoBoughtRow:
    """Of the baskets holding the product, ``count`` also hold ``item``: ``confidence`` = that share,
    ``lift`` = confidence / support of ``item``, ``support`` = count / all baskets."""

    item: str
    count: int
    support: float
    confidence: float
    lift: float


@attrs.frozen
class BasketCounts:
    """Precomputed counts (e.g. by a SQL query): all baskets, baskets per item and per pair of items.

    ``items`` must hold every frequent item and ``pairs`` (keys ``(a, b)``, either order) every frequent
    pair; less frequent entries may be there too (they are dropped). Given to :func:`frequent_itemsets` as
    ``counts=``, itemsets of one and two items come from here and only larger ones are mined from the
    baskets, which may then hold just the baskets with three or more frequent items.
    """

    n_baskets: int
    items: Mapping[str, int]
    pairs: Mapping[tuple[str, str], int]


# --------------------------------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------------------------------


def _min_counts(min_support: Any, n: int) -> tuple[int, int]:
    """The count a single item needs and the count a larger itemset needs (see the module)."""
    if isinstance(min_support, bool) or not isinstance(min_support, (int, float)):
        raise _fail("min_support", f"expected a share in (0, 1] or a whole number of baskets, got {min_support!r}", "type")
    if isinstance(min_support, int):
        if min_support < 1:
            raise _fail("min_support", f"a number of baskets must be at least 1, got {min_support}", "range")
        return min_support, min_support
    if not (math.isfinite(min_support) and 0.0 < min_support <= 1.0):
        raise _fail("min_support", f"a share must be in (0, 1], got {min_support!r}", "range")
    if n == 0:
        return 1, 1
    single = max(1, math.ceil(min_support * n))
    while single > 1 and (single - 1) / n >= min_support:
        single -= 1
    while single / n < min_support:
        single += 1
    return single, max(single, math.ceil(min_support * n))


def min_basket_count(min_support: float | int, n_baskets: int) -> int:
    """The baskets an item must be in to be frequent at ``min_support`` among ``n_baskets`` baskets: what a
    SQL query's ``HAVING COUNT(*) >= ...`` uses for the item and pair counts it gives as ``counts=``.

    >>> min_basket_count(0.1, 30), min_basket_count(0.28, 25), min_basket_count(5, 30)
    (3, 7, 5)
    """
    if isinstance(n_baskets, bool) or not isinstance(n_baskets, int) or n_baskets < 0:
        raise _fail("n_baskets", f"expected a whole number >= 0, got {n_baskets!r}", "type")
    return _min_counts(min_support, n_baskets)[0]


def _check_max_len(max_len: Any) -> int | None:
    if max_len is None:
        return None
    if isinstance(max_len, bool) or not isinstance(max_len, int):
        raise _fail("max_len", f"expected a whole number or None, got {max_len!r}", "type")
    if not 1 <= max_len <= MAX_ITEMSET_LEN:
        raise _fail("max_len", f"must be in 1..{MAX_ITEMSET_LEN}, got {max_len}", "range")
    return max_len


def _check_limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(name, f"expected a whole number >= 1, got {value!r}", "type")
    return value


def _bad_item(where: str, item: Any) -> ValidationError:
    return _fail(where, f"an item must be a non-empty text (a product id), got {item!r}", "type")


_CHUNK = 1 << 16


def _encode(baskets: Any, name: str = "baskets") -> list[set[str]]:
    """The baskets as sets of distinct items.

    Pairs ``(basket_id, item)`` are grouped by basket; collections are taken one basket each. Every item is
    checked (a non-empty ``str``), every basket id (hashable, not None); the error names the element
    (``baskets[3]``, ``baskets[3][1]``). Pairs are read in chunks: each chunk's checks run at C speed over
    the whole chunk, and only a chunk with a problem is searched element by element.
    """
    if isinstance(baskets, (str, bytes, bytearray)) or not isinstance(baskets, Iterable):
        what = "pairs (basket_id, item), item collections or a mapping"
        raise _fail(name, f"expected {what}, got {type(baskets).__name__}", "type")
    valid: set[str] = set()

    def check_items(items: set[Any], where: Callable[[Any], str]) -> None:
        new = items - valid
        for item in new:
            if type(item) is not str or not item:
                raise _bad_item(where(item), item)
        valid.update(new)

    if isinstance(baskets, Mapping):
        return [_collection(items, f"{name}[{bid!r}]", check_items) for bid, items in baskets.items()]
    it = iter(baskets)
    end = object()
    first = next(it, end)
    if first is end:
        return []
    it = itertools.chain((first,), it)
    if type(first) is not tuple:
        return [_collection(items, f"{name}[{i}]", check_items) for i, items in enumerate(it)]
    groups: defaultdict[Hashable, set[str]] = defaultdict(set)
    second = itemgetter(1)
    start = 0
    while chunk := tuple(itertools.islice(it, _CHUNK)):
        if set(map(type, chunk)) != {tuple} or set(map(len, chunk)) != {2}:
            i = next(i for i, p in enumerate(chunk) if type(p) is not tuple or len(p) != 2)
            raise _fail(f"{name}[{start + i}]", "expected a (basket_id, item) pair like the elements before it", "type")

        def where(item: Any, chunk: tuple[Any, ...] = chunk, start: int = start) -> str:
            i = next(i for i, p in enumerate(chunk) if p[1] is item or (type(p[1]) is type(item) and p[1] == item))
            return f"{name}[{start + i}][1]"

        try:
            items = set(map(second, chunk))
        except TypeError:  # an unhashable item
            i = next(i for i, p in enumerate(chunk) if not isinstance(p[1], Hashable))
            raise _bad_item(f"{name}[{start + i}][1]", chunk[i][1]) from None
        check_items(items, where)
        try:
            for bid, item in chunk:
                groups[bid].add(item)
        except TypeError:  # an unhashable basket id (the items are checked: texts)
            i = next(i for i, p in enumerate(chunk) if not isinstance(p[0], Hashable))
            raise _fail(f"{name}[{start + i}][0]", f"not a basket id: {chunk[i][0]!r}", "type") from None
        if None in groups:
            i = next(i for i, p in enumerate(chunk) if p[0] is None)
            raise _fail(f"{name}[{start + i}][0]", "not a basket id: None", "type")
        start += len(chunk)
    return list(groups.values())


def _collection(items: Any, where: str, check_items: Callable[[set[Any], Callable[[Any], str]], None]) -> set[str]:
    if not isinstance(items, (list, set, frozenset)):
        raise _fail(where, f"expected a basket (a list, set or frozenset of items), got {type(items).__name__}", "type")
    try:
        out = set(items)
    except TypeError:  # an unhashable item
        bad = next(x for x in items if not isinstance(x, Hashable))
        raise _bad_item(where, bad) from None
    check_items(out, lambda _item: where)
    return out


# --------------------------------------------------------------------------------------------------
# FP-growth on projected pattern bases
# --------------------------------------------------------------------------------------------------


class _TooMany(Exception):
    pass


def _grow(
    db: dict[tuple[int, ...], int],
    suffix: tuple[int, ...],
    min_count: int,
    max_len: int,
    out: dict[tuple[int, ...], int],
    limit: int,
    emit: bool,
) -> None:
    """Mine the conditional pattern base ``db`` of ``suffix``: ``{prefix: baskets}``, each prefix a tuple of
    item ranks in ascending order (ranks below every item of ``suffix``). Frequent items ``x`` of ``db``
    give the itemsets ``suffix + (x,)``; their own pattern bases are the prefixes before ``x``."""
    cnt: dict[int, int] = {}
    get = cnt.get
    for t, c in db.items():
        for x in t:
            cnt[x] = get(x, 0) + c
    freq = {x for x, n in cnt.items() if n >= min_count}
    if not freq:
        return
    if emit:
        for x in freq:
            out[(*suffix, x)] = cnt[x]
        if len(out) > limit:
            raise _TooMany
    if len(suffix) + 2 > max_len:
        return
    proj: dict[int, dict[tuple[int, ...], int]] = {}
    for t, c in db.items():
        if len(t) < 2:
            continue
        t = tuple(x for x in t if x in freq)
        for j in range(1, len(t)):
            x = t[j]
            d = proj.get(x)
            if d is None:
                d = proj[x] = {}
            p = t[:j]
            d[p] = d.get(p, 0) + c
    for x, d in proj.items():
        _grow(d, (*suffix, x), min_count, max_len, out, limit, True)


def frequent_itemsets(
    baskets: Any,
    *,
    min_support: float | int,
    max_len: int | None = None,
    counts: BasketCounts | None = None,
    max_itemsets: int = MAX_ITEMSETS,
) -> FrequentItemsets:
    """The frequent itemsets of ``baskets`` by FP-growth (see the module for the input and the definitions).

    ``min_support``: a share of the baskets in (0, 1] (a float), or a whole number of baskets (an int:
    ``1`` is one basket, ``1.0`` all of them). ``max_len``: the
    longest itemset (1..``MAX_ITEMSET_LEN``; None: no limit but ``max_itemsets``). ``counts``: precomputed
    item and pair counts (:class:`BasketCounts`), then ``baskets`` are only mined for itemsets of three or
    more items.

    >>> fi = frequent_itemsets([["tea", "milk"], ["tea", "milk", "sugar"], ["tea"], ["coffee", "milk"]],
    ...                        min_support=0.5)
    >>> [(s.items, s.count, s.support) for s in fi]
    [(('milk',), 3, 0.75), (('tea',), 3, 0.75), (('milk', 'tea'), 2, 0.5)]
    >>> frequent_itemsets([("o1", "tea"), ("o1", "milk"), ("o2", "tea")], min_support=2).count(["tea"])
    2
    """
    max_len = _check_max_len(max_len)
    limit = _check_limit("max_itemsets", max_itemsets)
    if counts is not None and not isinstance(counts, BasketCounts):
        raise _fail("counts", f"expected BasketCounts or None, got {type(counts).__name__}", "type")
    sets = _encode(baskets)
    n = len(sets) if counts is None else _check_counts(counts, len(sets))
    single, multi = _min_counts(min_support, n)
    cap = max_len if max_len is not None else MAX_ITEMSET_LEN * 1000
    found: dict[tuple[str, ...], int] = {}
    item_count: Mapping[str, int] = Counter(itertools.chain.from_iterable(sets)) if counts is None else counts.items
    frequent = sorted((x for x, k in item_count.items() if k >= single), key=lambda x: (-item_count[x], x))
    for x in frequent:
        found[(x,)] = item_count[x]
    if counts is not None and cap >= 2:
        for (a, b), k in counts.pairs.items():
            if k >= multi and (a,) in found and (b,) in found:
                found[(a, b) if a < b else (b, a)] = k  # a SQL collation may order them otherwise
    if len(found) > limit:
        raise _too_many(limit)
    if cap >= 2 and len(frequent) >= 2:
        rank = {x: r for r, x in enumerate(frequent)}
        if counts is None and multi != single and _nested(sets, rank.keys()):
            multi = single  # mlxtend's tree is one path then: it checks the float support alone
        shortest = 2 if counts is None else 3
        get_rank = rank.__getitem__
        keys = rank.keys()
        db: Counter[tuple[int, ...]] = Counter(
            tuple(sorted(map(get_rank, t))) for t in (s & keys for s in sets if len(s) >= shortest) if len(t) >= shortest
        )
        # a basket that alone is frequent makes all its subsets frequent: refuse before mining them
        longest = max((len(t) for t, c in db.items() if c >= multi), default=0)
        if sum(math.comb(longest, k) for k in range(1, min(longest, cap) + 1)) > limit:
            raise _too_many(limit)
        mined: dict[tuple[int, ...], int] = {}
        try:
            _grow_top(db, multi, cap, mined, limit - len(found), counts is None)
        except _TooMany:
            raise _too_many(limit) from None
        for key, k in mined.items():
            found[tuple(sorted([frequent[r] for r in key]))] = k
        if len(found) > limit:
            raise _too_many(limit)
    return FrequentItemsets(n, found, min_count=single, min_count_multi=multi, max_len=max_len)


def _nested(sets: list[set[str]], frequent: KeysView[str]) -> bool:
    """Whether the baskets, reduced to frequent items, are nested (each non-empty one inside the next)."""
    distinct = sorted({frozenset(s & frequent) for s in sets} - {frozenset()}, key=len)
    return all(a <= b for a, b in itertools.pairwise(distinct))


def _grow_top(
    db: Counter[tuple[int, ...]],
    min_count: int,
    max_len: int,
    out: dict[tuple[int, ...], int],
    limit: int,
    emit: bool,
) -> None:
    """The top level of FP-growth: single items are known; project every transaction once."""
    proj: dict[int, dict[tuple[int, ...], int]] = {}
    for t, c in db.items():
        for j in range(1, len(t)):
            x = t[j]
            d = proj.get(x)
            if d is None:
                d = proj[x] = {}
            p = t[:j]
            d[p] = d.get(p, 0) + c
    del db
    # with counts given (emit False), the pairs are known: mine their pattern bases for larger itemsets only
    for x, d in proj.items():
        # with counts given, the depth-1 counts of the (possibly reduced) baskets are not the pairs'
        # counts: they only prune, and larger itemsets grow from them
        _grow(d, (x,), min_count, max_len, out, limit, emit)


def _too_many(limit: int) -> ValidationError:
    return _fail(
        "min_support",
        f"more than {limit:,} itemsets are frequent at this support: raise min_support, lower max_len or raise max_itemsets",
        "too_many",
    )


def _check_counts(counts: BasketCounts, n_given: int) -> int:
    n = counts.n_baskets
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise _fail("counts.n_baskets", f"expected a whole number >= 0, got {n!r}", "type")
    if n_given > n:
        raise _fail("counts.n_baskets", f"{n} baskets counted but {n_given} given", "range")
    if not isinstance(counts.items, Mapping) or not isinstance(counts.pairs, Mapping):
        raise _fail("counts", "items and pairs must be mappings", "type")
    for s, k in counts.items.items():
        if type(s) is not str or not s:
            raise _bad_item(f"counts.items[{s!r}]", s)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
            raise _fail(f"counts.items[{s!r}]", f"expected a count in 0..{n}, got {k!r}", "range")
    seen: set[tuple[str, str]] = set()
    for key, k in counts.pairs.items():
        where = f"counts.pairs[{key!r}]"
        if not (isinstance(key, tuple) and len(key) == 2 and all(type(x) is str and x for x in key) and key[0] != key[1]):
            raise _fail(where, "a key must be a pair of two different item ids", "type")
        pair = (key[0], key[1]) if key[0] < key[1] else (key[1], key[0])
        if pair in seen:
            raise _fail(where, "the same pair is counted twice (in both orders)", "duplicate")
        seen.add(pair)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise _fail(where, f"expected a count >= 0, got {k!r}", "range")
        if k > min(counts.items.get(key[0], n), counts.items.get(key[1], n)):
            raise _fail(where, f"{k} baskets hold the pair but fewer hold one of its items", "range")
    return n


def basket_counts(baskets: Any, *, min_support: float | int) -> BasketCounts:
    """The counts a SQL query would give :func:`frequent_itemsets` as ``counts=``: every frequent item and
    frequent pair with its baskets (the reference for that query).

    >>> c = basket_counts([["tea", "milk"], ["tea", "milk"], ["tea"]], min_support=2)
    >>> c.n_baskets, dict(c.items), dict(c.pairs)
    (3, {'tea': 3, 'milk': 2}, {('milk', 'tea'): 2})
    """
    fi = frequent_itemsets(baskets, min_support=min_support, max_len=2)
    items = {s.items[0]: s.count for s in fi if len(s.items) == 1}
    pairs = {(s.items[0], s.items[1]): s.count for s in fi if len(s.items) == 2}
    return BasketCounts(fi.n_baskets, items, pairs)


# --------------------------------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------------------------------


def _check_threshold(name: str, value: Any, metric: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(name, f"expected a finite number, got {value!r}", "type")
    lo, hi = {"support": (0, 1), "confidence": (0, 1), "leverage": (-1, 1)}.get(metric, (0, math.inf))
    if not lo <= value <= hi:
        raise _fail(name, f"a {metric} threshold must be in [{lo}, {hi}], got {value!r}", "range")
    return float(value)


def association_rules(
    itemsets: FrequentItemsets,
    *,
    metric: Metric = "confidence",
    min_threshold: float = 0.8,
    min_confidence: float | None = None,
    min_lift: float | None = None,
) -> Report[AssociationRule]:
    """Association rules ``A -> C`` from frequent itemsets: those whose ``metric`` is at least
    ``min_threshold`` (mlxtend's arguments and defaults), and, when given, ``confidence >= min_confidence``
    and ``lift >= min_lift``. Sorted by confidence, then lift (highest first), then the items.

    >>> fi = frequent_itemsets([["tea", "milk"], ["tea", "milk", "sugar"], ["tea"], ["coffee", "milk"]],
    ...                        min_support=0.5)
    >>> for r in association_rules(fi, min_threshold=0.6):
    ...     print(r.antecedent, "->", r.consequent, r.count, f"{r.confidence:.3f} {r.lift:.3f} {r.conviction:.3f}")
    ('milk',) -> ('tea',) 2 0.667 0.889 0.750
    ('tea',) -> ('milk',) 2 0.667 0.889 0.750
    """
    if not isinstance(itemsets, FrequentItemsets):
        raise _fail("itemsets", f"expected the result of frequent_itemsets(), got {type(itemsets).__name__}", "type")
    if metric not in _METRICS:
        raise _fail("metric", f"expected one of {', '.join(_METRICS)}, got {metric!r}")
    threshold = _check_threshold("min_threshold", min_threshold, metric)
    min_conf = None if min_confidence is None else _check_threshold("min_confidence", min_confidence, "confidence")
    min_lift_ = None if min_lift is None else _check_threshold("min_lift", min_lift, "lift")
    counts = itemsets._counts
    candidates = sum((1 << len(k)) - 2 for k in counts if len(k) > 1)
    if candidates > MAX_RULE_CANDIDATES:
        raise _fail(
            "itemsets",
            f"{candidates:,} candidate rules (more than {MAX_RULE_CANDIDATES:,}): mine with a higher min_support "
            "or a lower max_len",
            "too_many",
        )
    n = itemsets.n_baskets
    inf = math.inf
    rules: list[AssociationRule] = []
    for k, c_ac in counts.items():
        size = len(k)
        if size < 2:
            continue
        s_ac = c_ac / n
        for r in range(size - 1, 0, -1):
            for ante in itertools.combinations(k, r):
                cons = tuple(x for x in k if x not in ante)
                c_a, c_c = counts.get(ante), counts.get(cons)
                if c_a is None or c_c is None:
                    missing = ante if c_a is None else cons
                    raise _fail("itemsets", f"{missing} is missing, a subset of the frequent itemset {k}", "missing")
                s_a = c_a / n
                s_c = c_c / n
                # mlxtend's arithmetic, operation for operation (association_rules(..., num_itemsets=n))
                conf = (s_ac * n) / (s_a * n)
                if metric == "confidence":
                    score = conf
                elif metric == "lift":
                    score = conf / s_c
                elif metric == "support":
                    score = s_ac
                elif metric == "leverage":
                    score = s_ac - s_a * s_c
                else:
                    score = inf if conf >= 1.0 else (1.0 - s_c) / (1.0 - conf)
                if score < threshold:
                    continue
                lift = conf / s_c
                if (min_conf is not None and conf < min_conf) or (min_lift_ is not None and lift < min_lift_):
                    continue
                rules.append(
                    AssociationRule(
                        ante,
                        cons,
                        c_ac,
                        s_ac,
                        s_a,
                        s_c,
                        conf,
                        lift,
                        s_ac - s_a * s_c,
                        inf if conf >= 1.0 else (1.0 - s_c) / (1.0 - conf),
                    )
                )
    rules.sort(key=lambda r: (-r.confidence, -r.lift, r.antecedent, r.consequent))
    return Report(AssociationRule, rules, title="Association rules")


def also_bought(
    baskets: Any,
    product: str,
    *,
    top: int | None = 10,
    min_count: int = 1,
) -> Report[AlsoBoughtRow]:
    """ "Customers who bought ``product`` also bought": the other items of the baskets holding it, ranked by
    confidence (the share of those baskets holding the item), then lift, then item; at most ``top`` rows
    (None: all), items in at least ``min_count`` of those baskets. The figures are those of the rule
    ``product -> item``.

    >>> rows = also_bought([["tea", "milk"], ["tea", "milk", "sugar"], ["tea"], ["coffee", "milk"]], "tea")
    >>> [(r.item, r.count, round(r.confidence, 3), round(r.lift, 3)) for r in rows]
    [('milk', 2, 0.667, 0.889), ('sugar', 1, 0.333, 1.333)]
    """
    check_also_bought(product, top, min_count)
    sets = _encode(baskets)
    n = len(sets)
    with_it = [s for s in sets if product in s]
    if not with_it:
        return also_bought_report(product, n, 0, {}, {}, top)
    co = Counter(itertools.chain.from_iterable(with_it))
    del co[product]
    keep = {x for x, k in co.items() if k >= min_count}
    item_count = Counter(x for s in sets for x in s & keep) if keep else Counter()
    return also_bought_report(product, n, len(with_it), {x: co[x] for x in keep}, item_count, top)


def check_also_bought(product: Any, top: Any, min_count: Any, name: str = "product") -> None:
    """The checked arguments of :func:`also_bought` (``name``: what the product argument is called)."""
    if type(product) is not str or not product:
        raise _bad_item(name, product)
    if top is not None:
        _check_limit("top", top)
    _check_limit("min_count", min_count)


def also_bought_report(
    product: str, n: int, n_with: int, co: Mapping[str, int], item_count: Mapping[str, int], top: int | None
) -> Report[AlsoBoughtRow]:
    """The rows of :func:`also_bought` from counts (e.g. by a SQL query): ``n`` baskets, ``n_with`` of them
    holding ``product``, ``co`` the items (at least ``min_count`` of those baskets) with their baskets among
    them, ``item_count`` their baskets among all."""
    rows = []
    if n_with:
        s_a = n_with / n
        for x, k in co.items():
            s_ac, s_c = k / n, item_count[x] / n
            conf = (s_ac * n) / (s_a * n)
            rows.append(AlsoBoughtRow(x, k, s_ac, conf, conf / s_c))
    rows.sort(key=lambda r: (-r.confidence, -r.lift, r.item))
    return Report(AlsoBoughtRow, rows[:top] if top is not None else rows, title=f"Also bought with {product}")


def check_mining(min_support: Any, max_len: Any, max_itemsets: Any) -> None:
    """The checked arguments of :func:`frequent_itemsets`, before any basket is read."""
    _min_counts(min_support, 0)
    _check_max_len(max_len)
    _check_limit("max_itemsets", max_itemsets)


def check_rules(metric: Any, min_threshold: Any, min_confidence: Any, min_lift: Any) -> None:
    """The checked arguments of :func:`association_rules`, before any itemset is mined."""
    if metric not in _METRICS:
        raise _fail("metric", f"expected one of {', '.join(_METRICS)}, got {metric!r}")
    _check_threshold("min_threshold", min_threshold, metric)
    if min_confidence is not None:
        _check_threshold("min_confidence", min_confidence, "confidence")
    if min_lift is not None:
        _check_threshold("min_lift", min_lift, "lift")


def order_baskets(orders: Iterable[Any], *, start: Any = None, end: Any = None) -> Iterator[tuple[str, str]]:
    """The baskets of orders (``pycrm.Order`` entities) as ``(order_id, product_id)`` pairs: one per line of
    the orders with lines whose ``occurred_at`` falls from ``start`` to ``end`` (inclusive UTC days), what
    ``s.analytics.frequent_itemsets``, ``basket_rules`` and ``also_bought`` mine. An order without lines is
    no basket.

    >>> import datetime as dt
    >>> from pycrm.domain import Money, Order, OrderLine
    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> o = Order.from_lines("c1", at, [OrderLine("tea", 2, Money("5")), OrderLine("cup", 1, Money("8"))], id="o1")
    >>> list(order_baskets([o, Order("c2", at, Money("3"))]))
    [('o1', 'tea'), ('o1', 'cup')]
    """
    lo, hi = check_range(start, end)
    for i, o in enumerate(entities_of(orders, "orders", Order)):
        if not o.lines:
            continue
        if (lo is not None or hi is not None) and not within(aware(o.occurred_at, f"orders[{i}].occurred_at").date(), lo, hi):
            continue
        key = str(o.id) if o.id is not None else f"#{i}"
        for line in o.lines:
            yield key, str(line.product_id)
