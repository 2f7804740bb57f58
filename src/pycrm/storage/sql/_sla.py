"""SLA compliance inside the database (``s.analytics.sla`` on the SQL adapter): equal to
:func:`pycrm.service.sla_compliance` on the same stored tickets.

How it follows the reference semantics (``pycrm/service/_report.py`` and ``_sla.py``):

* **Business time.** Each calendar of the policy is compiled (its cached UTC working intervals, see
  ``automation/_calendar.py``) into a temporary table of UTC days for the span the tickets need (the first
  ``created_at`` to ``as_of``): per day the working time before it (``c0``) and its working pieces
  (``lo1, hi1, ... loK, hiK``, epoch microseconds). The working time up to an instant ``t`` is then
  ``C(t) = c0 + sum(max(min(t, hi) - lo, 0))`` from one equi-join on (calendar, day), and the business time
  between ``a`` and ``b`` is ``C(b) - C(a)``, exactly as ``BusinessCalendar.business_time``.
* **Segments.** The status history (JSON text) is expanded with the dialect's JSON table function (SQLite
  ``json_each``, PostgreSQL ``jsonb_array_elements WITH ORDINALITY``, MariaDB ``JSON_TABLE``) into one row per
  change, plus the creation (status ``history[0].from`` or ``new``); a ticket without history gets the changes
  ``ticket_segments`` derives from ``first_response_at`` / ``resolved_at`` / ``closed_at`` / ``status``.
  ``LEAD`` over (time, position) gives each change's end; changes after ``as_of`` are cut and the last
  segment runs to ``as_of``.
* **Clocks.** The resolution clock's elapsed time is the business time of the running segments (neither
  paused nor resolved/closed); it is stopped when the status at ``as_of`` is resolved/closed. The
  first-response clock is cut at ``first_response_at`` when that is at or before ``as_of`` (stopped), else
  it equals the resolution clock (stopped with it). met / breached / running follow ``SlaPolicy._clock``.
* **Targets.** A ``CASE`` over the policy's rules in order (priority, ticket category and channel when the
  columns exist); rules on the customer (category, tags, country) are not compiled: the report returns None
  and the session computes the pure function.
* **Medians.** ``ROW_NUMBER`` / ``COUNT`` over each group pick the one or two middle stopped clocks; they
  are rounded from whole microseconds as ``mean_median_us`` does.

Data the pure function refuses or could not judge the same way (a history out of time order, a change time
not stored as UTC ISO text, a segment longer than a calendar answers for, a due time beyond the calendar's
range) makes the report return None: the session then streams the tickets into the pure function, which
raises or computes. Every value is a bound parameter; the SQL's own constants are literals.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pycrm.analytics._common import HOUR_US, exact_mean_median, period_label, period_start, ratio, sort_key
from pycrm.analytics._report import Report
from pycrm.domain import Ticket
from pycrm.errors import ValidationError
from pycrm.storage._where import Condition
from pycrm.storage.sql._reports import _dialect, _filter
from pycrm.storage.sql.tables import tickets, users

if TYPE_CHECKING:
    from pycrm.service._report import SlaRow
    from pycrm.service._sla import SlaPolicy
    from pycrm.storage.sql.store import SQLTransaction

__all__ = ["MAX_DAYS", "sla"]

#: The most UTC days (about 110 years) the calendar table of one report holds; beyond, the pure function.
MAX_DAYS = 40_000
#: The most working pieces of one UTC day the table holds per calendar.
MAX_PIECES = 48
_DAY_US = 86_400_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_TABLE = "pycrm_sla_days"
_DONE = ("resolved", "closed")
_LONG_US = (3660 + 1) * _DAY_US  # BusinessCalendar.business_time refuses a longer span (MAX_BUSINESS_SPAN)


def _us(at: dt.datetime) -> int:
    return (at - _EPOCH) // _US


class _Sql:
    """The dialect's pieces of SQL text (constants of the SQL only; values are bound by name)."""

    def __init__(self, d: str):
        self.d = d

    def div(self, a: str, b: str) -> str:
        return f"(({a}) DIV ({b}))" if self.d == "mysql" else f"(({a}) / ({b}))"

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})" if self.d == "sqlite" else f"LEAST({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})" if self.d == "sqlite" else f"GREATEST({a}, {b})"

    def col_us(self, col: str) -> str:
        """Epoch microseconds of a stored naive UTC date-time column (NULL stays NULL)."""
        if self.d == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff'
            return f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + CAST(substr({col}, 21, 6) AS INTEGER))"
        if self.d == "postgresql":
            return f"CAST(EXTRACT(EPOCH FROM {col}) * 1000000 AS BIGINT)"
        return f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {col})"

    def odd(self, at: str) -> str:
        """Whether a stored change time is not ISO text in UTC ('YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00')."""
        tail = f"substr({at}, -6)" if self.d == "sqlite" else f"RIGHT({at}, 6)"
        return f"({at} IS NULL OR LENGTH({at}) NOT IN (25, 32) OR {tail} <> :utc_tail)"

    def at_us(self, at: str) -> str:
        """Epoch microseconds of a change time stored as UTC ISO text (NULL for any other text)."""
        if self.d == "sqlite":
            us = (
                f"(CAST(strftime('%s', {at}) AS INTEGER) * 1000000"
                f" + CASE WHEN LENGTH({at}) = 32 THEN CAST(substr({at}, 21, 6) AS INTEGER) ELSE 0 END)"
            )
        elif self.d == "postgresql":
            us = f"CAST(EXTRACT(EPOCH FROM CAST({at} AS TIMESTAMPTZ)) * 1000000 AS BIGINT)"
        else:
            naive = f"CAST(REPLACE(LEFT({at}, LENGTH({at}) - 6), 'T', ' ') AS DATETIME(6))"
            us = f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {naive})"
        return f"CASE WHEN {self.odd(at)} THEN NULL ELSE {us} END"

    def changes(self, hist: str) -> tuple[str, str, str, str]:
        """(FROM item expanding the history, position 1.., change time text, status text)."""
        if self.d == "sqlite":
            return f"json_each({hist}) AS je", "(je.key + 1)", "json_extract(je.value, '$.at')", "json_extract(je.value, '$.to')"
        if self.d == "postgresql":
            return (
                f"jsonb_array_elements({hist}) WITH ORDINALITY AS je(v, ord)",
                "je.ord",
                "(je.v ->> 'at')",
                "(je.v ->> 'to')",
            )
        cols = "ord FOR ORDINALITY, at_s VARCHAR(64) PATH '$.at', to_s VARCHAR(64) PATH '$.to'"
        return f"JSON_TABLE({hist}, '$[*]' COLUMNS ({cols})) AS je", "je.ord", "je.at_s", "je.to_s"

    def history(self, col: str) -> str:
        """The stored history as the JSON functions read it (parsed once, to ``jsonb``, on PostgreSQL)."""
        return f"CAST({col} AS JSONB)" if self.d == "postgresql" else col

    def text(self, col: str) -> str:
        """The stored history as text (PostgreSQL stores it as ``json``)."""
        return f"CAST({col} AS TEXT)" if self.d == "postgresql" else col

    def first_status(self, hist: str) -> str:
        """The status before the first change (``history[0].from``), NULL when none."""
        if self.d == "sqlite":
            return f"json_extract({hist}, '$[0].from')"
        if self.d == "postgresql":
            return f"({hist} -> 0 ->> 'from')"
        return f"NULLIF(JSON_UNQUOTE(JSON_EXTRACT({hist}, '$[0].from')), 'null')"


def _compile(clauses: Sequence[Any], conn: Any) -> list[str]:
    """The condition clauses as SQL text with ``:name`` binds (the names ``_filter`` chose)."""
    dialect = type(conn.dialect)(paramstyle="named")
    return [str(c.compile(dialect=dialect)) for c in clauses]


def _calendar_days(policy: SlaPolicy, lo_us: int, hi_us: int, now_us: int, period: str | None) -> Any:
    """(calendars in use by target index, table rows, pieces per day, C(as_of) per calendar) or None."""
    cals: list[Any] = []
    of_target: list[int] = []
    for t in policy.targets:
        cal = policy.calendar_of(t)
        k = next((i for i, c in enumerate(cals) if c is cal), None)
        if k is None:
            k = len(cals)
            cals.append(cal)
        of_target.append(k)
    first, last = lo_us // _DAY_US, hi_us // _DAY_US
    if last - first + 1 > MAX_DAYS:
        return None
    per: dict[int, int] = {}
    for day in range(first, last + 1):
        d = (_EPOCH + dt.timedelta(days=day)).date()
        per[day] = period_start(d, period).toordinal() if period is not None else 0
    rows: list[list[int]] = []
    at_now: list[int] = []
    width = 1
    for k, cal in enumerate(cals):
        try:
            span = cal._span(first * _DAY_US, (last + 1) * _DAY_US)
        except ValidationError:
            return None
        starts, ends = span.starts, span.ends
        i = max(bisect_right(starts, first * _DAY_US) - 1, 0)
        for day in range(first, last + 1):
            ds, de = day * _DAY_US, (day + 1) * _DAY_US
            pieces: list[int] = []
            while i < len(starts) and ends[i] <= ds:
                i += 1
            j = i
            while j < len(starts) and starts[j] < de:
                a, b = max(starts[j], ds), min(ends[j], de)
                if b > a:
                    pieces += [a, b]
                j += 1
            if len(pieces) // 2 > MAX_PIECES:
                return None
            width = max(width, len(pieces) // 2)
            rows.append([k, day - first, per[day], span.worked(ds), *pieces])
        at_now.append(span.worked(now_us))
    for r in rows:  # pad with empty pieces at the day's start (they add nothing)
        ds = (r[1] + first) * _DAY_US
        r += [ds, ds] * (width - (len(r) - 4) // 2)
    return cals, of_target, rows, width, at_now, first


def _rule(i: int, target: Any, params: dict[str, Any], d: _Sql) -> str | None:
    """The SQL condition of one target (None: a criterion the SQL does not express)."""
    if target.reads_customer:
        return None
    parts: list[str] = []

    def choices(key: str, values: Any) -> str:
        names = []
        for j, v in enumerate(sorted(values)):
            name = f"r{i}_{key}{j}"
            params[name] = v
            names.append(f":{name}")
        return ", ".join(names)

    if target.priority is not None:
        parts.append(f"tickets.priority IN ({choices('p', target.priority)})")
    if target.channel is not None:
        if "channel" not in tickets.c:
            return "1 = 0"  # no channel stored: the criterion never holds (as getattr(ticket, 'channel', None))
        parts.append(f"tickets.channel IN ({choices('ch', target.channel)})")
    if target.category is not None:
        if "category" not in tickets.c:
            return "1 = 0"
        subs = []
        for j, root in enumerate(sorted(target.category)):
            params[f"r{i}_c{j}"], params[f"r{i}_cs{j}"], params[f"r{i}_cn{j}"] = root, root + "/", len(root) + 1
            prefix = f"substr(tickets.category, 1, :r{i}_cn{j})" if d.d == "sqlite" else f"LEFT(tickets.category, :r{i}_cn{j})"
            subs.append(f"tickets.category = :r{i}_c{j} OR {prefix} = :r{i}_cs{j}")
        parts.append("(" + " OR ".join(subs) + ")")
    return " AND ".join(parts) or "1 = 1"


def _case(values: Sequence[Any], params: dict[str, Any], name: str, null: str) -> str:
    """``CASE tg WHEN 0 THEN :name0 ... END`` (NULL for an unmatched ticket or a value None)."""
    whens = []
    for i, v in enumerate(values):
        if v is not None:
            params[f"{name}{i}"] = v
            whens.append(f"WHEN {i} THEN :{name}{i}")
    return f"CASE tg {' '.join(whens)} END" if whens else null


def _days_table(width: int) -> sa.Table:
    cols = [
        sa.Column("cal", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("day", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("per", sa.BigInteger, nullable=False),
        sa.Column("c0", sa.BigInteger, nullable=False),
    ]
    for k in range(1, width + 1):
        cols += [sa.Column(f"lo{k}", sa.BigInteger, nullable=False), sa.Column(f"hi{k}", sa.BigInteger, nullable=False)]
    return sa.Table(_TABLE, sa.MetaData(), *cols, prefixes=["TEMPORARY"])


def sla(
    tx: SQLTransaction,
    *,
    conditions: Sequence[Condition],
    policy: SlaPolicy,
    period: str | None,
    groups: tuple[str, ...],
    lo: dt.date | None,
    hi: dt.date | None,
    now: dt.datetime,
    team_scope: Sequence[Condition] | None = None,
) -> Report[SlaRow] | None:
    """The SLA compliance report (``pycrm.service.sla_compliance``) computed in the database, or None when the
    pure function must judge (see the module docstring)."""
    from pycrm.service._report import SlaRow

    if team_scope:
        return None  # the teams of only the users this actor reads: the pure function over the streamed users
    d = _Sql(_dialect(tx))
    params: dict[str, Any] = {}
    rules = []
    for i, target in enumerate(policy.targets):
        rule = _rule(i, target, params, d)
        if rule is None:
            return None
        rules.append(f"WHEN {rule} THEN {i}")
    for target in policy.targets:  # the due times the pure function projects must lie within the calendar
        cal = policy.calendar_of(target)
        for amount in (target.first_response, target.resolution):
            if amount is not None:
                try:
                    cal.add_business_time(now, amount)
                except ValidationError:
                    return None
    t = tickets
    where, wparams = _filter(tx, Ticket, conditions)
    params.update(wparams)
    range_where = []
    if lo is not None:
        params["lo_day"] = dt.datetime.combine(lo, dt.time.min)
        range_where.append(t.c.created_at >= sa.bindparam("lo_day"))
    if hi is not None and hi < dt.date.max:
        params["hi_day"] = dt.datetime.combine(hi + dt.timedelta(days=1), dt.time.min)
        range_where.append(t.c.created_at < sa.bindparam("hi_day"))
    if d.d == "sqlite":
        for k in ("lo_day", "hi_day"):
            if k in params:
                params[k] = params[k].strftime("%Y-%m-%d %H:%M:%S.%f")
    for c in range_where:
        c.right.type = sa.types.NullType()  # bound as given (text on SQLite)
    title: dict[str, Any] = {
        "title": "SLA compliance",
        "x": "period",
        "y": ("resolution_compliance", "first_response_compliance"),
    }
    span_stmt = sa.select(sa.func.min(t.c.created_at), sa.func.max(t.c.created_at)).where(*where, *range_where)
    first_at, last_at = tx._core(lambda conn: conn.execute(span_stmt, params).one())
    if first_at is None:
        return Report(SlaRow, [], **title)
    first_dt = first_at if isinstance(first_at, dt.datetime) else dt.datetime.fromisoformat(str(first_at))
    last_dt = last_at if isinstance(last_at, dt.datetime) else dt.datetime.fromisoformat(str(last_at))
    now_us = _us(now)
    lo_us = _us(first_dt.replace(tzinfo=dt.UTC))
    hi_us = max(now_us, _us(last_dt.replace(tzinfo=dt.UTC)))
    built = _calendar_days(policy, lo_us, hi_us, now_us, period)
    if built is None:
        return None
    cals, of_target, rows, width, at_now, base_day = built
    params.update(
        now_us=now_us,
        base_us=base_day * _DAY_US,
        day_us=_DAY_US,
        long_us=_LONG_US,
        utc_tail="+00:00",
        empty="[]",
        s_new="new",
        s_open="open",
        s_resolved="resolved",
        s_closed="closed",
    )
    pause = sorted(policy.pause_statuses)
    for j, s in enumerate(pause):
        params[f"pause{j}"] = s
    stopped_in = ", ".join([*(f":pause{j}" for j in range(len(pause))), ":s_resolved", ":s_closed"])
    null = {"postgresql": "CAST(NULL AS BIGINT)", "mysql": "CAST(NULL AS SIGNED)"}.get(d.d, "NULL")
    cal_case = _case(of_target, params, "cal", null)
    t_fr = _case([None if x.first_response is None else x.first_response // _US for x in policy.targets], params, "tfr", null)
    t_res = _case([None if x.resolution is None else x.resolution // _US for x in policy.targets], params, "tres", null)
    for n, v in enumerate(at_now):
        params[f"cnow{n}"] = v
    at_now_case = "CASE cal " + " ".join(f"WHEN {k} THEN :cnow{k}" for k in range(len(cals))) + " END"
    g = {
        "priority": "tickets.priority",
        "category": "tickets.category" if "category" in t.c else "NULL",
        "channel": "tickets.channel" if "channel" in t.c else "NULL",
        "agent": "tickets.assignee_id",
        "team": "u.team_id",
    }
    gk = [g[k] if k in groups else "NULL" for k in ("priority", "category", "channel")]
    gk += [g[k] if k in groups else "NULL" for k in ("agent", "team")]
    join_users = f" LEFT JOIN {users.name} u ON u.id = tickets.assignee_id" if "team" in groups else ""
    cu, fu, rsu, clu = (d.col_us(f"tickets.{c}") for c in ("created_at", "first_response_at", "resolved_at", "closed_at"))
    from_item, pos, at_text, to_text = d.changes("tk.hist")

    def day_of(us: str) -> str:
        return d.div(f"{us} - :base_us", ":day_us")

    def c_at(tab: str, at: str) -> str:
        pieces = (d.greatest(f"{d.least(at, f'{tab}.hi{k}')} - {tab}.lo{k}", "0") for k in range(1, width + 1))
        return " + ".join([f"{tab}.c0", *pieces])

    where_sql = " AND ".join(f"({w})" for w in tx._core(lambda conn: _compile([*where, *range_where], conn))) or "1 = 1"
    run = f"s NOT IN ({stopped_in})"
    ru = "CASE WHEN tk.fu <= :now_us THEN tk.fu END"
    ks = ", ".join(f"k{i}" for i in range(7))
    active = [0, *(i + 1 for i, k in enumerate(("priority", "category", "channel", "target", "agent", "team")) if k in groups)]
    part = ", ".join(f"k{i}" for i in active)  # the keys grouped by (the others are NULL)
    out = ", ".join(f"k{i}" if i in active else "NULL" for i in range(7))
    # one ordering per clock: the row numbers and the partition's size over the same sort
    fw = f"PARTITION BY {part}, CASE WHEN fr_med IS NULL THEN 1 ELSE 0 END ORDER BY fr_med"
    rw = f"PARTITION BY {part}, CASE WHEN res_med IS NULL THEN 1 ELSE 0 END ORDER BY res_med"
    every = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
    sql = f"""
WITH base AS (
  SELECT tickets.id AS id, {cu} AS cu, {fu} AS fu, {rsu} AS rsu, {clu} AS clu, tickets.status AS st,
    {d.history("tickets.status_history")} AS hist,
    CASE WHEN {d.text("tickets.status_history")} = :empty THEN 1 ELSE 0 END AS noh, CASE {" ".join(rules)} END AS tg,
    {gk[0]} AS k1, {gk[1]} AS k2, {gk[2]} AS k3, {gk[3]} AS k5, {gk[4]} AS k6
  FROM tickets{join_users} WHERE {where_sql}
),
tk AS (
  SELECT base.*, {cal_case} AS cal, {t_fr} AS tfr, {t_res} AS tres FROM base
),
el0 AS (
  SELECT tk.id, tk.cal, 0 AS ord, tk.cu AS t, COALESCE({d.first_status("tk.hist")}, :s_new) AS s, 0 AS odd, 1 AS hh,
    {ru} AS ru
  FROM tk WHERE tk.tg IS NOT NULL AND tk.noh = 0
  UNION ALL
  SELECT tk.id, tk.cal, {pos}, {d.at_us(at_text)}, {to_text}, CASE WHEN {d.odd(at_text)} THEN 1 ELSE 0 END, 1, {ru}
  FROM tk, {from_item} WHERE tk.tg IS NOT NULL AND tk.noh = 0
  UNION ALL
  SELECT tk.id, tk.cal, 0, tk.cu, :s_new, 0, 0, {ru}
  FROM tk WHERE tk.tg IS NOT NULL AND tk.noh = 1
  UNION ALL
  SELECT tk.id, tk.cal, 1, {d.greatest("tk.fu", "tk.cu")}, :s_open, 0, 0, {ru}
  FROM tk WHERE tk.tg IS NOT NULL AND tk.noh = 1 AND tk.fu IS NOT NULL
  UNION ALL
  SELECT tk.id, tk.cal, 2, {d.greatest("tk.rsu", "tk.cu")}, :s_resolved, 0, 0, {ru}
  FROM tk WHERE tk.tg IS NOT NULL AND tk.noh = 1 AND tk.rsu IS NOT NULL
  UNION ALL
  SELECT tk.id, tk.cal, 3, {d.greatest("tk.clu", "tk.cu")}, :s_closed, 0, 0, {ru}
  FROM tk WHERE tk.tg IS NOT NULL AND tk.noh = 1 AND tk.clu IS NOT NULL
  UNION ALL
  SELECT tk.id, tk.cal, 1, tk.cu, tk.st, 0, 0, {ru}
  FROM tk WHERE tk.tg IS NOT NULL AND tk.noh = 1 AND tk.fu IS NULL AND tk.rsu IS NULL AND tk.clu IS NULL
    AND tk.st <> :s_new
),
el AS (
  SELECT el0.id, el0.ord, el0.t, el0.s, el0.odd, el0.hh, el0.ru, el0.cal, {c_at("dd", "el0.t")} AS c
  FROM el0 LEFT JOIN {_TABLE} dd ON dd.cal = el0.cal AND dd.day = {day_of("el0.t")}
),
w AS (
  SELECT id, ord, t, s, odd, hh, ru, cal, c,
    LEAD(t) OVER (PARTITION BY id ORDER BY t, ord) AS nt,
    LEAD(c) OVER (PARTITION BY id ORDER BY t, ord) AS nc,
    LAG(ord) OVER (PARTITION BY id ORDER BY t, ord) AS pord
  FROM el
),
sg AS (
  SELECT id, s, ru, c, t, odd, hh, pord, ord,
    CASE WHEN ord = 0 OR t <= :now_us THEN 1 ELSE 0 END AS eff,
    CASE WHEN (ord = 0 OR t <= :now_us) AND (nt IS NULL OR nt > :now_us) THEN 1 ELSE 0 END AS lst,
    CASE WHEN nt IS NULL OR nt > :now_us THEN {d.greatest("t", ":now_us")} ELSE nt END AS e,
    CASE WHEN nt IS NULL OR nt > :now_us THEN (CASE WHEN t >= :now_us THEN c ELSE {at_now_case} END) ELSE nc END AS ce
  FROM w
),
pt AS (
  SELECT id,
    SUM(CASE WHEN eff = 1 AND {run} THEN ce - c ELSE 0 END) AS res_el,
    SUM(CASE WHEN eff = 1 AND {run} AND t < ru THEN (CASE WHEN e <= ru THEN ce ELSE 0 END) - c ELSE 0 END) AS fr_part,
    SUM(CASE WHEN eff = 1 AND {run} AND t < ru AND e > ru THEN 1 ELSE 0 END) AS fr_cut,
    MAX(CASE WHEN lst = 1 AND s IN (:s_resolved, :s_closed) THEN 1 ELSE 0 END) AS done,
    MAX(CASE WHEN odd = 1 OR (hh = 1 AND pord > ord) OR (eff = 1 AND (c IS NULL OR ce IS NULL))
      OR (eff = 1 AND s NOT IN (:s_resolved, :s_closed) AND e - t > :long_us) THEN 1 ELSE 0 END) AS bad
  FROM sg GROUP BY id
),
pm AS (
  SELECT dp.per AS k0, tk.k1, tk.k2, tk.k3, {"tk.tg" if "target" in groups else "NULL"} AS k4, tk.k5, tk.k6,
    CASE WHEN tk.tg IS NULL THEN 1 ELSE 0 END AS unmatched, tk.tfr, tk.tres, pt.bad,
    CASE WHEN {ru} IS NULL THEN pt.res_el ELSE pt.fr_part + pt.fr_cut * ({c_at("dr", ru)}) END AS fr_el,
    pt.res_el,
    CASE WHEN {ru} IS NOT NULL OR pt.done = 1 THEN 1 ELSE 0 END AS fr_stop,
    pt.done AS res_stop
  FROM tk LEFT JOIN pt ON pt.id = tk.id
    LEFT JOIN {_TABLE} dp ON dp.cal = 0 AND dp.day = {day_of("tk.cu")}
    LEFT JOIN {_TABLE} dr ON dr.cal = tk.cal AND dr.day = {day_of(ru)}
),
mt AS (
  SELECT {ks}, unmatched, bad,
    CASE WHEN tfr IS NOT NULL AND fr_stop = 1 AND fr_el <= tfr THEN 1 ELSE 0 END AS fr_met,
    CASE WHEN tfr IS NOT NULL AND fr_el > tfr THEN 1 ELSE 0 END AS fr_br,
    CASE WHEN tfr IS NOT NULL AND fr_stop = 1 THEN fr_el END AS fr_med,
    CASE WHEN tres IS NOT NULL AND res_stop = 1 AND res_el <= tres THEN 1 ELSE 0 END AS res_met,
    CASE WHEN tres IS NOT NULL AND res_el > tres THEN 1 ELSE 0 END AS res_br,
    CASE WHEN tres IS NOT NULL AND res_stop = 1 THEN res_el END AS res_med,
    CASE WHEN (tfr IS NOT NULL AND fr_stop = 0 AND fr_el <= tfr) OR (tres IS NOT NULL AND res_stop = 0 AND res_el <= tres)
      THEN 1 ELSE 0 END AS running
  FROM pm
),
rk AS (
  SELECT mt.*,
    ROW_NUMBER() OVER ({fw}) AS fr_rn, COUNT(*) OVER ({fw} {every}) AS fr_n,
    ROW_NUMBER() OVER ({rw}) AS res_rn, COUNT(*) OVER ({rw} {every}) AS res_n
  FROM mt
)
SELECT {out}, COUNT(*), SUM(unmatched), SUM(fr_met), SUM(fr_br),
  MIN(CASE WHEN fr_med IS NOT NULL AND fr_rn IN ({d.div("fr_n + 1", "2")}, {d.div("fr_n + 2", "2")}) THEN fr_med END),
  MAX(CASE WHEN fr_med IS NOT NULL AND fr_rn IN ({d.div("fr_n + 1", "2")}, {d.div("fr_n + 2", "2")}) THEN fr_med END),
  MAX(CASE WHEN fr_med IS NOT NULL THEN fr_n END), SUM(res_met), SUM(res_br),
  MIN(CASE WHEN res_med IS NOT NULL AND res_rn IN ({d.div("res_n + 1", "2")}, {d.div("res_n + 2", "2")}) THEN res_med END),
  MAX(CASE WHEN res_med IS NOT NULL AND res_rn IN ({d.div("res_n + 1", "2")}, {d.div("res_n + 2", "2")}) THEN res_med END),
  MAX(CASE WHEN res_med IS NOT NULL THEN res_n END), SUM(running), MAX(bad)
FROM rk GROUP BY {part}
"""
    table = _days_table(width)
    names = ["cal", "day", "per", "c0", *(f"{x}{k}" for k in range(1, width + 1) for x in ("lo", "hi"))]

    def run_all(conn: Any) -> list[Any]:
        table.drop(conn, checkfirst=True)
        table.create(conn)
        for i in range(0, len(rows), 5000):
            conn.execute(table.insert(), [dict(zip(names, r, strict=True)) for r in rows[i : i + 5000]])
        result = list(conn.execute(sa.text(sql), params).fetchall())
        table.drop(conn)  # after a failed statement it stays to the next report (dropped first) or the connection's end
        return result

    got = tx._core(run_all)
    if any(_int(r[20]) for r in got):
        return None  # a history the pure function refuses or judges otherwise: it raises or computes
    names_of = [x.name for x in policy.targets]
    found = []
    for r in got:
        per = _int(r[0])
        label = period_label(dt.date.fromordinal(per), period) if period is not None else period_label(dt.date.min, None)
        key = (label, r[1], r[2], r[3], None if r[4] is None else names_of[_int(r[4])], r[5], r[6])
        fr_met, fr_br, res_met, res_br = _int(r[9]), _int(r[10]), _int(r[14]), _int(r[15])
        found.append(
            (
                key,
                SlaRow(
                    *key,
                    _int(r[7]),
                    _int(r[8]),
                    fr_met,
                    fr_br,
                    ratio(fr_met, fr_met + fr_br),
                    _median(r[11], r[12], r[13]),
                    res_met,
                    res_br,
                    ratio(res_met, res_met + res_br),
                    _median(r[16], r[17], r[18]),
                    _int(r[19]),
                ),
            )
        )
    found.sort(key=lambda kv: tuple(sort_key(v) for v in kv[0]))
    return Report(SlaRow, [row for _, row in found], **title)


def _int(v: Any) -> int:
    return 0 if v is None else int(v)


def _median(lo: Any, hi: Any, n: Any) -> Any:
    count = _int(n)
    if not count:
        return None
    middle = [int(lo)] if count % 2 else [int(lo), int(hi)]
    return exact_mean_median(0, 1, middle, HOUR_US)[1]
