"""Product sales: revenue, quantity, lines and orders of the order lines, by product, product category,
customer region or owner.

Definitions (the reference semantics, which the SQL pushdown matches):

- Only order **lines** count (an order without lines is one amount with no product: it is in
  ``purchase_summary``, not here). A line's revenue is its total, ``quantity x unit_price - discount``.
- Orders are taken from ``start`` to ``end`` (inclusive UTC days of ``occurred_at``).
- ``by="product"``: the line's ``product_id``; ``"category"``: its product's category (``categories`` maps
  product ids to category paths), cut to its first ``level`` parts (``level=1``: ``Tea/Green`` -> ``Tea``;
  ``None``: the whole path); ``"region"``: the order's customer's ``country`` (``regions``: customer id ->
  country); ``"owner"``: the customer's ``owner_id`` (``owners``: customer id -> owner). A product or
  customer missing from the mapping (or without a category, country or owner) is the ``None`` group.
- Each row is one group in one currency: ``orders`` (distinct orders with a line in the group), ``lines``,
  ``quantity`` and ``revenue`` (exact, in the currency); rows are sorted by currency, then revenue (highest
  first), then group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from pycrm.analytics._common import aware, check_range, entities_of, sort_key, within
from pycrm.analytics._report import Report
from pycrm.domain import Order
from pycrm.errors import FieldError, ValidationError

__all__ = [
    "PRODUCT_SALES_GROUPS",
    "ProductSalesRow",
    "category_prefix",
    "check_product_sales",
    "product_sales",
    "revenue_of",
    "sales_report",
]

#: What :func:`product_sales` groups by.
PRODUCT_SALES_GROUPS = ("product", "category", "region", "owner")
#: The deepest category level a report rolls up to.
MAX_LEVEL = 20


@attrs.frozen
class ProductSalesRow:
    """The lines of one group (a product id, a category path, a country or an owner id; ``None``: none
    known) in one currency."""

    group: str | None
    currency: str
    orders: int
    lines: int
    quantity: int
    revenue: Decimal


def category_prefix(category: str | None, level: int | None) -> str | None:
    """The first ``level`` parts of a category path (all of it for ``None``).

    >>> category_prefix("Tea/Green/Sencha", 2), category_prefix("Tea", 3), category_prefix(None, 1)
    ('Tea/Green', 'Tea', None)
    """
    if category is None or level is None:
        return category
    return "/".join(category.split("/")[:level])


def check_product_sales(by: Any, level: Any) -> tuple[str, int | None]:
    """The checked ``by`` and ``level`` of :func:`product_sales`."""
    errors = []
    if by not in PRODUCT_SALES_GROUPS:
        errors.append(FieldError("by", "invalid_choice", f"{by!r} is not one of {', '.join(PRODUCT_SALES_GROUPS)}"))
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
            errors.append(FieldError("level", "out_of_range", f"expected a whole number from 1 to {MAX_LEVEL}, got {level!r}"))
        elif by != "category":
            errors.append(FieldError("level", "invalid", "a level rolls categories up: it needs by='category'"))
    if errors:
        raise ValidationError(errors)
    return str(by), level


#: One group's tally: (order ids, lines, quantity, revenue in 1/10,000 units).
Tally = tuple[set[str], int, int, int]

_CENT = Decimal("0.01")


def revenue_of(e4: int) -> Decimal:
    """An amount in 1/10,000 units as a Decimal with 2 places, or 4 where they are needed (``12.5`` ->
    ``12.50``, ``0.0001`` stays): one form for the pure function and the pushdown."""
    d = Decimal(e4).scaleb(-4)
    q = d.quantize(_CENT)
    return q if q == d else d


def sales_report(tallies: Mapping[tuple[str | None, str], tuple[int, int, int, int]], by: str) -> Report[ProductSalesRow]:
    """The rows of :func:`product_sales` from each (group, currency)'s (orders, lines, quantity, revenue in
    1/10,000 units): shared with the SQL pushdown, so both give the same rows in the same order."""
    rows = [ProductSalesRow(g, cur, n_orders, n, q, revenue_of(e4)) for (g, cur), (n_orders, n, q, e4) in tallies.items()]
    rows.sort(key=lambda r: (r.currency, -r.revenue, sort_key(r.group)))
    return Report(ProductSalesRow, rows, title=f"Product sales by {by}", x="group", y="revenue")


def product_sales(
    orders: Iterable[Any],
    *,
    by: str = "product",
    start: dt.date | dt.datetime | str | None = None,
    end: dt.date | dt.datetime | str | None = None,
    level: int | None = None,
    categories: Mapping[str, str | None] | None = None,
    regions: Mapping[str, str | None] | None = None,
    owners: Mapping[str, str | None] | None = None,
) -> Report[ProductSalesRow]:
    """Revenue, quantity, lines and orders of the order lines per product, category, region or owner (see
    the module docstring).

    >>> from pycrm.domain import Money, OrderLine
    >>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    >>> orders = [
    ...     Order.from_lines("c1", at, [OrderLine("tea", 2, Money("5", "EUR")), OrderLine("cup", 1, Money("8", "EUR"))]),
    ...     Order.from_lines("c2", at, [OrderLine("tea", 1, Money("5", "EUR"), discount="1")]),
    ... ]
    >>> [(r.group, r.orders, r.quantity, r.revenue) for r in product_sales(orders)]
    [('tea', 2, 3, Decimal('14.00')), ('cup', 1, 1, Decimal('8.00'))]
    >>> cats = {"tea": "Drinks/Tea", "cup": "Kitchen"}
    >>> [(r.group, r.revenue) for r in product_sales(orders, by="category", level=1, categories=cats)]
    [('Drinks', Decimal('14.00')), ('Kitchen', Decimal('8.00'))]
    """
    by, level = check_product_sales(by, level)
    lo, hi = check_range(start, end)
    needs = {"category": ("categories", categories), "region": ("regions", regions), "owner": ("owners", owners)}
    if by in needs and not isinstance(needs[by][1], Mapping):
        name = needs[by][0]
        raise ValidationError([FieldError(name, "required", f"grouping by {by} needs {name}: a mapping of ids to values")])
    tallies: dict[tuple[str | None, str], Tally] = {}
    for i, o in enumerate(entities_of(orders, "orders", Order)):
        if not o.lines:
            continue
        if not within(aware(o.occurred_at, f"orders[{i}].occurred_at").date(), lo, hi):
            continue
        for line in o.lines:
            if by == "product":
                group: str | None = line.product_id
            elif by == "category":
                group = category_prefix((categories or {}).get(line.product_id), level)
            elif by == "region":
                group = (regions or {}).get(o.customer_id)
            else:
                group = (owners or {}).get(o.customer_id)
            key = (group, line.currency)
            ids, n, quantity, revenue = tallies.get(key) or (set(), 0, 0, 0)
            ids.add(str(o.id) if o.id is not None else f"#{i}")  # an order not stored yet: one by position
            tallies[key] = (ids, n + 1, quantity + line.quantity, revenue + int(line.total.amount.scaleb(4)))
    return sales_report({k: (len(ids), n, q, r) for k, (ids, n, q, r) in tallies.items()}, by)
