"""``pycrm report sales|customers|service|products|basket|forecast|campaigns|leads [--store URL] [--as-of YYYY-MM-DD]``
``[--period month|quarter]``.

Reads a store (by default the demo's SQLite file, ``pycrm-demo.db``) and prints plain-text tables:

- ``sales``: the weighted forecast from the period holding ``--as-of`` on, the funnel of the default
  pipeline, and win rate and sales cycle over the last ``--periods`` periods;
- ``customers``: new / active / churned customers over the last ``--periods`` periods and the top
  ``--top`` customers by revenue up to ``--as-of``;
- ``service``: tickets by status and by priority, response / resolution times and SLA breaches, and
  customer satisfaction (the CSAT % and NPS of the surveys sent, as one KPI line and per period) over the
  last ``--periods`` periods; with ``--sla POLICY.toml`` (an SLA policy as data, see docs/service.md) also
  the SLA compliance per period and priority under that policy, in business time;
- ``products``: the sales of the order lines of the last ``--periods`` periods: the top ``--top`` products
  by revenue, and revenue by product category (rolled up to ``--level`` parts, default 1), by customer
  region (country) and by owner;
- ``basket``: the ``--top`` association rules with the highest lift among the order lines of the orders up to
  ``--as-of`` (``s.analytics.basket_rules``, docs/basket.md): products in at least ``--min-support`` of the
  orders (a share, default 0.02), rules right at least ``--min-confidence`` of the time (default 0.4), each
  with its support, confidence and lift, products by name;
- ``forecast``: revenue (``--measure orders``: the order count) per period over the last ``--periods``
  periods, then its forecast with seasonality for the next ``--horizon`` periods (default 3) with 95%
  prediction intervals, fitted on every complete period up to ``--as-of`` (the period still under way is
  left out), and the backtest of the model (MASE against the seasonal-naive forecast); ``--by region`` or
  ``--by owner`` forecasts each customer country or owner apart. Needs the ``forecast`` extra
  (``pip install "pycrm[forecast]"``).
- ``campaigns``: each campaign's members, response rate, conversions and conversion rate, revenue, spend,
  customers acquired, CAC, ROI and CLV:CAC (``s.analytics.campaign_kpis``, see docs/campaigns.md); all of
  each campaign's history counts (``--as-of`` and the periods do not apply).
- ``leads``: lead scoring (docs/scoring.md) learned from the won and lost deals: the ``--top`` open deals
  most likely to be won with the reasons, and the model's AUC and Brier score on the newest fifth of the
  closed deals when trained on the older ones (nothing is written to the store).

Only records dated on or before ``--as-of`` count in the history tables. Bad input is one line on
stderr and exit status 2.

``--rates FILE.csv --base CUR`` converts amounts in several currencies (the forecast, top customers) to
``CUR`` through a dated rate table: a UTF-8 CSV file with a header row holding the columns ``date``
(``YYYY-MM-DD``), ``currency`` (ISO 4217) and ``rate`` (a decimal > 0: one unit of ``currency`` is worth
``rate`` units of ``CUR``), in any order, other columns ignored. An amount converts at the latest rate
dated on or before its day. A bad row is reported as ``FILE, row N, column C: problem`` (the header is
row 1), exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pycrm.analytics._common import MIN_DAY, next_start, period_label, period_start, previous_start, report_day
from pycrm.analytics._report import Report
from pycrm.analytics._sales import RateTable
from pycrm.analytics._timeseries import SalesSeriesRow
from pycrm.domain._values import _check_currency
from pycrm.errors import CRMError, FieldError, ValidationError

REPORTS = ("sales", "customers", "service", "products", "basket", "forecast", "campaigns", "leads")
PERIODS = ("week", "month", "quarter")
DEFAULT_STORE = "pycrm-demo.db"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="sales, customer, service, product, forecast, campaign or lead-scoring report of a store, as plain-text tables",
        description="Print a sales, customers, service, products, forecast, campaigns or leads report of a pycrm store.",
    )
    p.add_argument("what", choices=REPORTS, help="which report")
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="URL",
        help=f"store URL or SQLite file (default: {DEFAULT_STORE}, made by 'pycrm demo')",
    )
    p.add_argument("--as-of", help="reference date YYYY-MM-DD (default: today, UTC); later records are ignored")
    p.add_argument("--period", default="month", help="period of the tables: month (default), quarter or week")
    p.add_argument("--periods", default="6", help="how many periods of history, ending at --as-of (default 6)")
    p.add_argument("--top", default="10", help="customers / products / leads report: how many top rows (default 10)")
    p.add_argument("--level", default="1", help="products report: category parts to roll up to (default 1)")
    p.add_argument(
        "--min-support", default="0.02", help="basket report: share of the orders a rule's products are in (default 0.02)"
    )
    p.add_argument("--min-confidence", default="0.4", help="basket report: the least confidence of a rule (default 0.4)")
    p.add_argument("--rates", metavar="FILE.csv", help="dated currency rates: CSV with columns date,currency,rate (needs --base)")
    p.add_argument("--base", metavar="CUR", help="currency to convert amounts to with --rates (ISO 4217, e.g. CNY)")
    p.add_argument("--sla", metavar="POLICY.toml", help="service report: SLA compliance under this policy (.toml or .json)")
    p.add_argument("--horizon", default="3", help="forecast report: how many periods to forecast (default 3)")
    p.add_argument("--by", choices=("region", "owner"), help="forecast report: one forecast per customer country or owner")
    p.add_argument("--measure", default="revenue", choices=("revenue", "orders"), help="forecast report: what to forecast")
    p.set_defaults(run=run)


def _whole(text: str, option: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationError([FieldError(option, "invalid", f"{text!r} is not a whole number from {low} to {high}")])
    return value


def _share(text: str, option: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0.0 < value <= 1.0 if positive else 0.0 <= value <= 1.0):
        span = "above 0 up to 1" if positive else "from 0 to 1"
        raise ValidationError([FieldError(option, "invalid", f"{text!r} is not a share {span}")])
    return value


def _store_url(store: str) -> str:
    """A URL for ``--store``: a URL as given, or a SQLite file that must already exist (never created here)."""
    text = store.strip()
    if text in ("memory://", "memory:"):
        return "memory://"
    if "://" in text and not text.startswith("sqlite:///"):
        return text
    path = Path(text[len("sqlite:///") :] if text.startswith("sqlite:///") else text)
    if not path.is_file():
        hint = " (run 'pycrm demo' first, or pass --store URL)" if store == DEFAULT_STORE else ""
        raise ValidationError([FieldError(f"--store {store}", "not_found", f"no such SQLite file{hint}")])
    with path.open("rb") as f:
        if f.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise ValidationError([FieldError(f"--store {store}", "not_sqlite", "is not a SQLite database")])
    return f"sqlite:///{path.resolve()}"


def run(args: argparse.Namespace) -> int:
    import pycrm

    problems: list[FieldError] = []
    as_of = dt.datetime.now(dt.UTC).date()
    if args.as_of is not None:
        try:
            as_of = report_day(args.as_of, "--as-of")
        except ValidationError as exc:
            problems += exc.errors
    if args.period not in PERIODS:
        problems.append(FieldError("--period", "invalid_choice", f"{args.period!r} is not one of {', '.join(PERIODS)}"))
    level = getattr(args, "level", "1")
    numbers = (
        ("--periods", args.periods, 120),
        ("--top", args.top, 1000),
        ("--horizon", getattr(args, "horizon", "3"), 120),
        ("--level", level, 20),
    )
    for option, text, high in numbers:
        try:
            _whole(text, option, 1, high)
        except ValidationError as exc:
            problems += exc.errors
    shares = []
    for option, text in (
        ("--min-support", getattr(args, "min_support", "0.02")),
        ("--min-confidence", getattr(args, "min_confidence", "0.4")),
    ):
        try:
            shares.append(_share(text, option, positive=option == "--min-support"))
        except ValidationError as exc:
            problems += exc.errors
    if problems:
        raise ValidationError(problems)
    rates = None
    if args.rates is not None or args.base is not None:
        if args.rates is None or args.base is None:
            missing = "--base" if args.base is None else "--rates"
            raise ValidationError([FieldError(missing, "required", "--rates FILE.csv and --base CUR go together")])
        rates = read_rates(args.rates, args.base)
    policy = None
    if getattr(args, "sla", None) is not None:
        if args.what != "service":
            raise ValidationError([FieldError("--sla", "invalid", "an SLA policy applies to the service report only")])
        from pycrm.service import SlaPolicy

        policy = SlaPolicy.load(args.sla)
    from pycrm.storage.port import DriverErrors

    url = _store_url(args.store)
    if args.what == "forecast":
        from pycrm.analytics._timeseries import _statsmodels

        _statsmodels()  # the extra is there, before opening anything
    horizon, by, measure = int(getattr(args, "horizon", "3")), getattr(args, "by", None), getattr(args, "measure", "revenue")

    def forecast(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
        return _forecast(s, as_of, period, n, rates, horizon=horizon, by=by, measure=measure)

    make = {
        "sales": _sales,
        "customers": _customers,
        "service": _service,
        "forecast": forecast,
        "campaigns": _campaigns,
        "leads": _leads,
        "products": _products,
        "basket": _products,
    }[args.what]
    if args.what == "products":
        make = _levelled(int(level))
    if args.what == "basket":
        make = _rules(*shares)
    with pycrm.open(url) as crm:
        store = crm.store
        errors = store.driver_errors() if isinstance(store, DriverErrors) else ()
        try:
            with crm.session() as s:
                text = make(s, as_of, args.period, int(args.periods), int(args.top), rates)
                if policy is not None:
                    text += "\n\n" + _sla(s, as_of, args.period, int(args.periods), policy)
        except errors as exc:  # a store that cannot be read (driver, connection): one line, exit 2
            raise CRMError(f"--store {args.store}: cannot read the store: {type(exc).__name__}: {exc}") from None
    print(f"pycrm report {args.what}: as of {as_of.isoformat()}, by {args.period}, store {args.store}\n")
    print(text)
    return 0


def _history(as_of: dt.date, period: str, n: int) -> tuple[dt.date, str]:
    """The first day of the ``n`` periods ending with the one holding ``as_of``, and a caption."""
    first = period_start(as_of, period)
    for _ in range(n - 1):
        first = previous_start(first, period)
        if first < MIN_DAY:
            problem = f"{n} periods of history before {as_of} would start before {MIN_DAY}"
            raise ValidationError([FieldError("--periods", "out_of_range", problem)])
    return first, f"{period_label(first, period)} to {period_label(as_of, period)}"


def _sales(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
    first, caption = _history(as_of, period, n)
    current = period_start(as_of, period)
    fc = s.analytics.forecast(period=period, start=current, rates=rates)
    fc.title = f"Weighted forecast by expected close, from {period_label(current, period)}"
    if fc and fc[0].currency:
        fc.title += f" (amounts in {fc[0].currency})"
    cols = ["period", "deals", "open_amount", "won_amount", "weighted"]
    fu = s.analytics.funnel(where={"created_at": {"lte": _end_of(as_of)}})
    wr = s.analytics.win_rate(period=period, start=first, end=as_of)
    wr.title = f"Win rate, {caption}"
    sc = s.analytics.sales_cycle(period=period, start=first, end=as_of)
    sc.title = f"Sales cycle of won deals (days), {caption}"
    return "\n\n".join(
        [
            fc.to_text(cols),
            fu.to_text(),
            wr.to_text(["period", "won", "lost", "win_rate"]),
            sc.to_text(["period", "deals", "mean_days", "median_days"]),
        ]
    )


def _customers(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
    first, caption = _history(as_of, period, n)
    act = s.analytics.customer_activity(period=period, start=first, end=as_of)
    act.title = f"Customers by {period}, {caption} (active = ordered in the period)"
    best = s.analytics.top_customers(n=top, end=as_of, rates=rates)
    best.title = f"Top {len(best)} customers by revenue up to {as_of.isoformat()}"
    if best and best[0].currency:
        best.title += f" ({best[0].currency})"
    return "\n\n".join([act.to_text(), best.to_text(["rank", "name", "orders", "revenue", "customer_id"])])


def _levelled(level: int) -> Any:
    def make(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
        return _products(s, as_of, period, n, top, rates, level)

    return make


def _products(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None, level: int = 1) -> str:
    """Top products by revenue (with SKU and name), and revenue by category, region and owner, of the order
    lines from the start of the history to ``as_of``."""
    first, caption = _history(as_of, period, n)
    best = s.analytics.product_sales(by="product", start=first, end=as_of)
    best.title = f"Top {min(top, len(best))} products by revenue, {caption}"
    del best[top:]
    ids = [r.group for r in best if r.group is not None]
    names = {str(p.id): (p.sku, p.name) for p in s.products.find({"id": {"in": ids}})} if ids else {}
    lines = [best.title, "rank  sku  product  currency  orders  quantity  revenue"]
    for i, r in enumerate(best, 1):
        sku, name = names.get(str(r.group), ("-", str(r.group)))
        lines.append(f"{i}. {sku}  {name}  {r.currency}  {r.orders}  {r.quantity}  {r.revenue}")
    if not best:
        lines.append("(no order lines)")
    cols = ["group", "currency", "orders", "lines", "quantity", "revenue"]
    out = ["\n".join(lines)]
    for by, what in (("category", f"category (level {level})"), ("region", "customer region"), ("owner", "owner")):
        kw = {"level": level} if by == "category" else {}
        rep = s.analytics.product_sales(by=by, start=first, end=as_of, **kw)
        rep.title = f"Revenue by {what}, {caption}"
        out.append(rep.to_text(cols))
    return "\n\n".join(out)


def _rules(min_support: float, min_confidence: float) -> Any:
    def make(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
        return _basket(s, as_of, top, min_support, min_confidence)

    return make


def _basket(s: Any, as_of: dt.date, top: int, min_support: float, min_confidence: float) -> str:
    """The ``top`` association rules by lift of the order lines up to ``as_of``, products by name."""
    rules = s.analytics.basket_rules(min_support=min_support, min_threshold=min_confidence, end=as_of)
    best = sorted(rules, key=lambda r: (-r.lift, -r.confidence, r.antecedent, r.consequent))[:top]
    ids = sorted({x for r in best for x in (*r.antecedent, *r.consequent)})
    names = {str(p.id): p.name for p in s.products.find({"id": {"in": ids}})} if ids else {}
    title = f"Top {len(best)} of {len(rules)} association rules by lift"
    title += f" (support >= {min_support:g}, confidence >= {min_confidence:g})"
    lines = [title, "rank  who buys  ->  also buys  orders  support  confidence  lift"]
    for i, r in enumerate(best, 1):
        a = " + ".join(names.get(x, x) for x in r.antecedent)
        c = " + ".join(names.get(x, x) for x in r.consequent)
        lines.append(f"{i}. {a}  ->  {c}  {r.count}  {r.support:.4f}  {r.confidence:.4f}  {r.lift:.4f}")
    if not best:
        lines.append("(no rules: lower --min-support or --min-confidence)")
    return "\n".join(lines)


def _service(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
    first, caption = _history(as_of, period, n)
    upto = {"created_at": {"lte": _end_of(as_of)}}
    by_status = s.analytics.ticket_summary(by="status", where=upto)
    by_priority = s.analytics.ticket_summary(by="priority", where=upto)
    times = s.analytics.service_times(period=period, start=first, end=as_of, as_of=as_of)
    times.title = f"Service times (hours) and SLA breaches of tickets opened {caption}"
    cols = ["period", "tickets", "mean_response_hours", "median_response_hours"]
    cols += ["mean_resolution_hours", "median_resolution_hours", "breached"]
    return "\n\n".join(
        [
            by_status.to_text(["status", "tickets"]),
            by_priority.to_text(["priority", "tickets"]),
            times.to_text(cols),
            *_satisfaction(s, first, as_of, period, caption),
        ]
    )


def _forecast(
    s: Any, as_of: dt.date, period: str, n: int, rates: RateTable | None, *, horizon: int, by: str | None, measure: str
) -> str:
    """The recent series, its forecast from the last complete period before ``as_of`` and the backtest."""
    first, caption = _history(as_of, period, n)
    current = period_start(as_of, period)
    complete = next_start(current, period) - dt.timedelta(days=1) == as_of  # as_of ends its period
    end = as_of if complete else current - dt.timedelta(days=1)
    groups = () if by is None else (by,)
    fc = s.analytics.forecast_sales(horizon=horizon, period=period, measure=measure, by=groups, rates=rates, end=end)
    group_cols = {"region": ["region"], "owner": ["owner_id"], None: []}[by]
    title = f"Orders and revenue by {period}, {caption}" + (f" ({fc.currency})" if fc.currency else "")
    recent = Report(SalesSeriesRow, [r for r in fc.history if r.start >= first], title=title, x="period", y="revenue")
    fc.points.title = (
        f"Forecast of {measure}, {fc.horizon} {period}s after {period_label(end, period)} ({fc.level:.0%} prediction intervals)"
    )
    methods = ", ".join(
        f"{' / '.join(str(g) for g, name in zip(key, ('region', 'owner')) if name in groups) or 'all'}: {m}"
        for key, m in fc.methods.items()
    )
    backtest = fc.evaluate()
    backtest.title = (
        f"Backtest ({backtest[0].folds} rolling origins, {backtest[0].horizon} {period}s ahead): "
        "MASE of the model and of the seasonal-naive forecast"
    )
    return "\n\n".join(
        [
            recent.to_text(["period", *group_cols, "orders", "revenue"]),
            fc.points.to_text(["period", *group_cols, "value", "lower", "upper"]),
            f"Model: {methods}",
            backtest.to_text([*group_cols, "method", "mase", "naive_mase", "relative", "mape", "smape"]),
        ]
    )


def _leads(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None = None) -> str:
    from pycrm.analytics._report import Report
    from pycrm.analytics._scoring import LeadScoreRow

    end = _end_of(as_of)
    scoring = s.analytics.lead_scoring(as_of=end, where={"created_at": {"lte": end}}, leads=False)
    rows = []
    for rank, x in enumerate(scoring.scores(n=top, top=2), 1):
        deal = s.opportunities.get(x.opportunity_id)
        why = "; ".join(f"{r.feature} {r.value} ({r.contribution:+.2f})" for r in x.reasons)
        rows.append(LeadScoreRow(rank, deal.name, deal.stage, Decimal(repr(x.probability)).quantize(Decimal("0.01")), why))
    table = Report(LeadScoreRow, rows, title=f"Open deals most likely to be won (trained on {scoring.closed} closed deals)")
    ev = scoring.evaluate(holdout=0.2)
    holdout = (
        f"Holdout: trained on the {ev.train} older closed deals, tested on the newest {ev.test}: AUC {ev.auc:.3f}, "
        f"Brier {ev.brier:.3f} (base rate {ev.base_rate:.3f}; always answering it: Brier {ev.brier_base:.3f})"
    )
    return "\n\n".join([table.to_text(), holdout])


def _sla(s: Any, as_of: dt.date, period: str, n: int, policy: Any) -> str:
    first, caption = _history(as_of, period, n)
    report = s.analytics.sla(policy, period=period, by="priority", start=first, end=as_of, as_of=_end_of(as_of))
    report.title = f"SLA compliance (business time) of tickets opened {caption}"
    cols = ["period", "priority", "tickets", "first_response_compliance", "resolution_compliance"]
    cols += ["resolution_breached", "running", "median_resolution_hours"]
    return str(report.to_text(cols))


def _satisfaction(s: Any, first: dt.date, as_of: dt.date, period: str, caption: str) -> list[str]:
    """The satisfaction KPI line (CSAT %, NPS, with how many of the surveys sent were answered) and the CSAT
    and NPS tables per period, of the surveys sent from ``first`` to ``as_of``."""
    kpi = []
    for kind, field in (("csat", "csat_pct"), ("nps", "nps")):
        total = s.analytics.satisfaction(kind=kind, start=first, end=as_of)
        row = total[0] if total else None
        value = getattr(row, field) if row is not None else None
        shown = "-" if value is None else (f"{value}%" if kind == "csat" else f"{value}")
        answered = f"{row.answered} of {row.sent} answered" if row is not None else "no surveys"
        kpi.append(f"{kind.upper()} {shown} ({answered})")
    csat = s.analytics.satisfaction(kind="csat", period=period, start=first, end=as_of)
    csat.title = f"CSAT of surveys sent {caption} (% scoring 4 or 5)"
    nps = s.analytics.satisfaction(kind="nps", period=period, start=first, end=as_of)
    nps.title = f"NPS of surveys sent {caption} (% promoters - % detractors)"
    return [
        f"Satisfaction {caption}: " + ", ".join(kpi),
        csat.to_text(["period", "sent", "answered", "response_rate", "mean_score", "csat_pct"]),
        nps.to_text(["period", "sent", "answered", "promoters", "passives", "detractors", "nps"]),
    ]


def _campaigns(s: Any, as_of: dt.date, period: str, n: int, top: int, rates: RateTable | None) -> str:
    """The KPIs of every campaign (rates as percentages)."""
    kpis = s.analytics.campaign_kpis()
    kpis.title = "Campaign KPIs (conversions: orders or won deals within each campaign's window after a touch)"
    cols = ["name", "channel", "members", "response_rate", "conversions", "conversion_rate", "revenue", "spend"]
    return str(kpis.to_text([*cols, "acquired", "cac", "roi", "clv_cac"]))


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, dt.UTC)


RATE_COLUMNS = ("date", "currency", "rate")


def read_rates(path: str, base: str) -> RateTable:
    """The rate table of ``--rates FILE.csv`` into ``base``; a bad file or row raises ValidationError naming
    the file, the row (the header is row 1) and the column."""
    try:
        base = _check_currency(base.strip().upper(), "--base")
    except ValidationError:
        raise ValidationError([FieldError("--base", "invalid_currency", f"{base!r} is not an ISO 4217 currency code")]) from None
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError([FieldError(f"--rates {path}", "unreadable", f"cannot read the file: {exc}")]) from None
    if not rows:
        raise ValidationError([FieldError(f"{path}, row 1", "empty", "no header row (expected date,currency,rate)")])
    header = [h.strip().lower() for h in rows[0]]
    for col in RATE_COLUMNS:
        if col not in header:
            raise ValidationError([FieldError(f"{path}, row 1, column {col}", "missing_column", "no such column in the header")])
    at = {col: header.index(col) for col in RATE_COLUMNS}
    entries: dict[tuple[str, dt.date], tuple[Decimal, int]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines

        def cell(col: str, row: list[str] = row) -> str:
            i = at[col]
            return row[i].strip() if i < len(row) else ""

        def bad(col: str, message: str, n: int = n) -> ValidationError:
            return ValidationError([FieldError(f"{path}, row {n}, column {col}", "invalid", message)])

        try:
            day = dt.date.fromisoformat(cell("date"))
        except ValueError:
            raise bad("date", f"{cell('date')[:40]!r} is not a YYYY-MM-DD date") from None
        try:
            currency = _check_currency(cell("currency").upper(), "currency")
        except ValidationError:
            raise bad("currency", f"{cell('currency')[:40]!r} is not an ISO 4217 currency code") from None
        try:
            rate = Decimal(cell("rate"))
        except InvalidOperation:
            raise bad("rate", f"{cell('rate')[:40]!r} is not a decimal number") from None
        if not rate.is_finite() or rate <= 0:
            raise bad("rate", f"{cell('rate')[:40]!r} is not a positive rate")
        if currency == base and rate != 1:
            raise bad("rate", f"the rate of the base currency {base} must be 1")
        seen = entries.get((currency, day))
        if seen is not None and seen[0] != rate:
            raise bad("rate", f"another {currency} rate for {day} on row {seen[1]}")
        entries[(currency, day)] = (rate, n)
    return RateTable(base, [(c, d, r) for (c, d), (r, _) in entries.items()])
