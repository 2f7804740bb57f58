"""``s.analytics``: reports computed where the data lives.

A transaction that offers a pushdown (the SQL adapter) computes inside the database; otherwise the pure
functions of :mod:`pycrm.analytics` run over a stream of entities. Both give identical results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pycrm.analytics import DEFAULT_SEGMENTS, RFMScore, SegmentRule, rfm, segment_of
from pycrm.analytics._rfm import _cutoff
from pycrm.domain import Order
from pycrm.errors import FieldError, ValidationError

if TYPE_CHECKING:
    from pycrm.storage._repository import Session


class SessionAnalytics:
    """Analytics over the session's store: ``s.analytics.rfm(as_of=...)``."""

    def __init__(self, session: Session):
        self._s = session

    def rfm(
        self,
        *,
        as_of: dt.date | dt.datetime | str,
        bins: int = 5,
        segments: Sequence[SegmentRule] = DEFAULT_SEGMENTS,
    ) -> list[RFMScore]:
        """RFM scores of every customer with orders on or before ``as_of`` (same rules as ``pycrm.analytics.rfm``)."""
        self._s._check_open()
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValidationError([FieldError("bins", "type", f"expected a whole number >= 1, got {bins!r}")])
        cutoff, ref_date = _cutoff(as_of)
        tx: Any = self._s._transaction()
        pushdown = getattr(tx, "rfm", None)
        if pushdown is None:
            return rfm(tx.iter(Order, [], 5000), as_of=as_of, bins=bins, segments=segments)
        currencies = tx.order_currencies(cutoff)
        if len(currencies) > 1:
            mixed = ", ".join(sorted(currencies))
            problem = FieldError("orders.amount.currency", "currency_mismatch", f"orders mix {mixed}; convert first")
            raise ValidationError([problem])
        return [
            RFMScore(cid, rec, freq, mon, r, f, m, segment_of(r, f, segments))
            for cid, rec, freq, mon, r, f, m in pushdown(cutoff, ref_date, bins)
        ]
