"""Notebooks: HTML tables (escaped, bounded), DataFrames with proper dtypes, and legible plots that display
without pyplot: names not ids, one series per group with a legend, horizontal funnel bars, the currency on
money axes, a CJK font when one is installed."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import pycrm
from pycrm import Customer, Money, Opportunity, Order
from pycrm.analytics import (
    CustomerSummary,
    PurchaseSummary,
    Report,
    clv,
    forecast,
    funnel,
    purchase_summary,
    rfm,
    top_customers,
)
from pycrm.domain._html import MAX_HTML_ROWS
from pycrm.security import DEFAULT_FIELD_RULES, mask_entity

pd = pytest.importorskip("pandas")
matplotlib = pytest.importorskip("matplotlib")
UTC = dt.UTC


def book(customers: int = 30) -> list[Order]:
    """Orders of ``customers`` customers over 2023, most of them buying again (enough for the CLV fits)."""
    rng = random.Random(7)
    out = []
    for k in range(customers):
        day = dt.datetime(2023, 1, 1, tzinfo=UTC) + dt.timedelta(days=rng.randrange(60))
        for _ in range(1 + rng.randrange(5)):
            out.append(Order(f"c{k:02d}", day, Money(rng.randrange(10, 200), "CNY")))
            day += dt.timedelta(days=1 + rng.randrange(60))
    return out


# ---------------------------------------------------------------------------------------------- HTML


def test_report_html_is_escaped_titled_and_bounded() -> None:
    orders = [Order(f"c{k:03d}", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(100 + k, "CNY")) for k in range(MAX_HTML_ROWS + 5)]
    names = {"c024": "<script>alert(1)</script>"}
    report = top_customers(orders, n=MAX_HTML_ROWS + 5, names=names)
    html = report._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<caption>Top customers by revenue</caption>" in html
    assert html.count("<tr><td") == MAX_HTML_ROWS + 1  # the rows shown and the "more" row
    assert "… 5 more rows" in html
    small = Report(CustomerSummary, [CustomerSummary("a & b", 0, 0, 1)], title="T <1>")._repr_html_()
    assert "<caption>T &lt;1&gt;</caption>" in small and "a &amp; b" in small and "more" not in small
    assert "(none)" in Report(CustomerSummary, title="empty")._repr_html_()


def test_entity_html_shows_fields_escaped_and_masked_values_as_masked() -> None:
    c = Customer("<b>Acme</b>", emails=["sales@acme.com"], phones=["+86 138 0013 8000"], id="c1")
    html = c._repr_html_()
    assert "<caption>Customer c1</caption>" in html and "&lt;b&gt;Acme&lt;/b&gt;" in html and "<b>" not in html
    assert "sales@acme.com" in html
    seen = mask_entity(c, DEFAULT_FIELD_RULES.resolve(["analyst"], "customers"))
    masked = seen._repr_html_()
    assert "sales@acme.com" not in masked and "+8613800138000" not in masked
    assert '<td class="pycrm-masked" title="masked">s***@acme.com</td>' in masked
    order = Order("c1", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(10, "CNY"))
    assert "<td>10 CNY</td>" in order._repr_html_()


def test_result_objects_have_html() -> None:
    orders = book()
    summary = purchase_summary(orders, calibration_end="2023-12-31", freq="D", unit="D")
    html = summary._repr_html_()
    assert "Purchase summary to 2023-12-31" in html and "c00" in html and "… 10 more rows" in html
    from pycrm.analytics import fit_bgnbd, fit_gamma_gamma

    model = fit_bgnbd(summary)
    assert "<caption>BGNBDModel</caption>" in model._repr_html_() and "alpha" in model._repr_html_()
    assert "<caption>GammaGammaModel</caption>" in fit_gamma_gamma(summary)._repr_html_()
    assert "Customer lifetime value" in clv(orders, as_of="2023-12-31")._repr_html_()


# ---------------------------------------------------------------------------------------------- DataFrames


def test_rfm_clv_and_purchase_summary_give_dataframes_equal_to_their_rows() -> None:
    orders = book()
    scores = rfm(orders, as_of="2023-12-31")
    assert isinstance(scores, Report) and isinstance(scores, list)
    df = scores.to_dataframe()
    assert [tuple(r) for r in df.itertuples(index=False)] == [
        (s.customer_id, s.recency_days, s.frequency, float(s.monetary), s.r, s.f, s.m, s.segment) for s in scores
    ]
    assert {c: str(df[c].dtype) for c in ("recency_days", "frequency", "monetary", "r")} == {
        "recency_days": "int64",
        "frequency": "int64",
        "monetary": "float64",
        "r": "int64",
    }
    assert scores.to_dataframe(exact=True)["monetary"].tolist() == [s.monetary for s in scores]

    summary = purchase_summary(orders, calibration_end="2023-12-31")
    sf = summary.to_dataframe()
    assert list(sf.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert str(sf["frequency"].dtype) == "int64" and str(sf["T"].dtype) == "float64"
    assert [tuple(r) for r in sf.itertuples(index=False)] == [
        (r.customer_id, r.frequency, r.recency, r.T, r.monetary_value) for r in summary
    ]

    values = clv(orders, as_of="2023-12-31")
    cf = values.to_dataframe()
    assert len(cf) == len(values) == 30 and str(cf["clv"].dtype) == "float64" and str(cf["frequency"].dtype) == "int64"
    assert cf["clv"].tolist() == [v.clv for v in values] and cf["customer_id"].tolist() == [v.customer_id for v in values]
    assert PurchaseSummary([]).to_dataframe().empty


def test_dataframe_dtypes_whole_numbers_with_gaps_and_dates() -> None:
    import attrs

    @attrs.frozen
    class Row:
        day: dt.date
        n: int | None
        x: Decimal | None

    df = Report(Row, [Row(dt.date(2024, 1, 1), 1, Decimal("1.5")), Row(dt.date(2024, 1, 2), None, None)]).to_dataframe()
    assert str(df["day"].dtype).startswith("datetime64") and str(df["n"].dtype) == "Int64"
    assert df["n"].tolist()[0] == 1 and df["n"].isna().tolist() == [False, True]
    assert str(df["x"].dtype) == "float64"


# ---------------------------------------------------------------------------------------------- plots


def deals() -> list[Opportunity]:
    t0 = dt.datetime(2024, 1, 2, tzinfo=UTC)
    out = []
    for k, owner in enumerate(["li", "ann", "li", "ann", "bo"]):
        out.append(
            Opportunity(
                f"c{k}",
                f"deal {k}",
                Money(1000 * (k + 1), "CNY"),
                stage="proposal" if k % 2 else "qualification",
                owner_id=owner,
                expected_close=dt.date(2024, 1 + 3 * (k % 2), 15),
                created_at=t0,
            )
        )
    return out


def test_top_customers_plot_labels_names_and_the_currency() -> None:
    orders = [
        Order("0123456789abcdef0123456789abcdef", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(300, "CNY")),
        Order("fedcba9876543210fedcba9876543210", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(200, "CNY")),
    ]
    names = {"0123456789abcdef0123456789abcdef": "Acme"}
    dollars = top_customers(orders, names={"0123456789abcdef0123456789abcdef": "Acme $\\nocommand$ Ltd"}).plot()
    assert dollars._repr_png_().startswith(b"\x89PNG")  # drawn as text, not parsed as TeX
    ax = top_customers(orders, names=names).plot().axes[0]
    ticks = [t.get_text() for t in (ax.get_yticklabels() if ax.patches[0].get_width() > 1 else ax.get_xticklabels())]
    assert ticks == ["Acme", "fedcba9876543210fedcba9876543210"]  # a customer without a name keeps its id
    value_axis = ax.get_xlabel() if ax.patches[0].get_width() > 1 else ax.get_ylabel()
    assert value_axis == "revenue (CNY)"


def test_forecast_by_owner_is_one_series_per_owner_with_a_legend() -> None:
    report = forecast(deals(), period="quarter", by="owner")
    ax = report.plot().axes[0]
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["ann", "bo", "li"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024-Q1", "2024-Q2"]  # each quarter once
    assert ax.get_ylabel() == "weighted (CNY)"
    by_owner = {r.owner_id: {} for r in report}
    for r in report:
        by_owner[r.owner_id][r.period] = float(r.weighted)
    heights = [round(p.get_height(), 4) for p in ax.patches]
    expected = [by_owner[o].get(q, 0.0) for o in ("ann", "bo", "li") for q in ("2024-Q1", "2024-Q2")]
    assert heights == [round(v, 4) for v in expected]


def test_funnel_is_drawn_with_horizontal_bars_so_the_stage_names_do_not_collide() -> None:
    report = funnel(deals())
    ax = report.plot().axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r.stage for r in report]
    assert [p.get_width() for p in ax.patches] == [float(r.reached) for r in report]
    assert ax.get_xlabel() == "reached" and ax.yaxis_inverted()  # the first stage on top
    fig = report.plot()
    fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_figure_displays_in_a_notebook_without_pyplot() -> None:
    code = (
        "import sys, matplotlib; matplotlib.use('Agg')\n"
        "from pycrm.analytics import Report\n"
        "import attrs\n"
        "@attrs.frozen\n"
        "class Row:\n"
        "    period: str\n"
        "    deals: int\n"
        "fig = Report(Row, [Row('2024-01', 3)], x='period', y='deals').plot()\n"
        "png = fig._repr_png_()\n"
        "assert png.startswith(b'\\x89PNG'), png[:8]\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "print('ok', len(png) > 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok True"


# ---------------------------------------------------------------------------------------------- CJK font

_CHARS = "中文客户销售韩梅梅李雷华信"


def _cjk_test_font(path: Path) -> None:
    """A tiny TrueType font with a square glyph for each of :data:`_CHARS` (built with fontTools)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    chars = sorted(set(_CHARS))
    names = [".notdef", *(f"uni{ord(ch):04X}" for ch in chars)]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap({ord(ch): f"uni{ord(ch):04X}" for ch in chars})
    glyphs = {}
    for name in names:
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, 700))
        pen.lineTo((800, 700))
        pen.lineTo((800, 0))
        pen.closePath()
        glyphs[name] = pen.glyph()
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (1000, 100) for n in names})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Pycrm Test CJK", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.save(str(path))


@pytest.fixture
def cjk_font_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from matplotlib import font_manager

    from pycrm.analytics import _plot

    path = tmp_path / "pycrm-test-cjk.ttf"
    _cjk_test_font(path)
    monkeypatch.setattr(_plot, "_PROBE", _CHARS)
    monkeypatch.setattr(_plot, "_covers_cache", {})
    monkeypatch.delenv("PYCRM_PLOT_FONT", raising=False)
    before = list(font_manager.fontManager.ttflist)
    font_manager.fontManager.addfont(str(path))
    try:
        yield "Pycrm Test CJK"
    finally:
        font_manager.fontManager.ttflist[:] = before
        font_manager.fontManager._findfont_cached.cache_clear()  # type: ignore[attr-defined]


def test_the_font_picked_is_a_cjk_capable_one_when_installed(cjk_font_installed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pycrm.analytics import _plot

    assert _plot.cjk_font() == cjk_font_installed
    assert _plot.cjk_font([("DejaVu Sans", matplotlib.get_data_path() + "/fonts/ttf/DejaVuSans.ttf")]) is None
    from pycrm.analytics import plot_font, set_plot_font

    assert plot_font() == cjk_font_installed
    set_plot_font("My Font")
    try:
        assert _plot.cjk_font() == plot_font() == "My Font"
    finally:
        set_plot_font(None)
    monkeypatch.setenv("PYCRM_PLOT_FONT", "Env Font")
    assert plot_font() == "Env Font"
    with pytest.raises(pycrm.ValidationError):
        set_plot_font("")


def test_chinese_names_render_without_missing_glyphs_when_a_cjk_font_is_installed(cjk_font_installed: str) -> None:
    orders = [
        Order("c1", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(300, "CNY")),
        Order("c2", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(200, "CNY")),
    ]
    fig = top_customers(orders, names={"c1": "韩梅梅", "c2": "李雷"}).plot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []
    labels = fig.axes[0].get_xticklabels() or fig.axes[0].get_yticklabels()
    assert cjk_font_installed in labels[0].get_fontfamily()


def test_without_a_cjk_font_chinese_text_is_missing_glyphs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: the same plot with no CJK font shows boxes (matplotlib warns)."""
    from pycrm.analytics import _plot

    monkeypatch.setattr(_plot, "cjk_font", lambda fonts=None: None)
    orders = [Order("c1", dt.datetime(2024, 1, 1, tzinfo=UTC), Money(300, "CNY"))]
    fig = top_customers(orders, names={"c1": "韩梅梅"}).plot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig._repr_png_()
    assert any("missing from" in str(w.message) for w in caught)


# ---------------------------------------------------------------------------------------------- the store


def test_session_results_are_reports_with_dataframes_and_named_plots(crm: pycrm.CRM) -> None:
    with crm.session() as s:
        a = s.customers.add(Customer("北京华信"))
        b = s.customers.add(Customer("Acme <Ltd>"))
        s.orders.add(Order(a.id, dt.datetime(2024, 1, 5, tzinfo=UTC), Money(500, "CNY")))
        s.orders.add(Order(b.id, dt.datetime(2024, 2, 5, tzinfo=UTC), Money(100, "CNY")))
        s.orders.add(Order(b.id, dt.datetime(2024, 3, 5, tzinfo=UTC), Money(50, "CNY")))
    with crm.session() as s:
        scores = s.analytics.rfm(as_of="2024-03-31")
        assert isinstance(scores, Report)
        df = scores.to_dataframe()
        assert df["customer_id"].tolist() == [x.customer_id for x in scores] and str(df["frequency"].dtype) == "int64"
        assert sorted(df["monetary"].tolist()) == [150.0, 500.0]
        summary = s.analytics.purchase_summary(calibration_end="2024-03-31")
        assert str(summary.to_dataframe()["frequency"].dtype) == "int64"
        top = s.analytics.top_customers()
        assert "Acme &lt;Ltd&gt;" in top._repr_html_()
        ax = top.plot().axes[0]
        labels = [t.get_text() for t in [*ax.get_xticklabels(), *ax.get_yticklabels()]]
        assert "北京华信" in labels and "Acme <Ltd>" in labels and a.id not in labels
        assert "revenue (CNY)" in (ax.get_xlabel(), ax.get_ylabel())
        assert "<caption>Customer" in s.customers.get(a.id)._repr_html_()


def test_lead_scoring_shows_html_and_its_scores_give_a_dataframe() -> None:
    from pycrm.analytics import DealFeatures, LeadScoring

    rng = random.Random(3)
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
    deals = [
        DealFeatures(
            f"o{i}",
            f"c{i}",
            rng.random() < 0.5 if i < 200 else None,
            t0 + dt.timedelta(hours=i),
            (("country", rng.choice(["DE", "FR", "<CN>"])),),
            (("amount", rng.uniform(0, 1000)),),
            (),
        )
        for i in range(225)
    ]
    scoring = LeadScoring(deals)
    html = scoring._repr_html_()
    assert "<caption>Lead scoring</caption>" in html and "… 5 more rows" in html and "<CN>" not in html
    scores = scoring.scores()
    assert isinstance(scores, Report) and len(scores) == 25
    df = scores.to_dataframe()
    assert str(df["probability"].dtype) == "float64" and df["probability"].tolist() == [s.probability for s in scores]
    assert df["opportunity_id"].tolist() == [s.opportunity_id for s in scores]
    assert "<caption>LeadScoringModel</caption>" in scoring.model._repr_html_()
    assert "auc" in scoring.evaluate(holdout=0.2)._repr_html_()


def test_a_sales_forecast_shows_its_settings_and_points() -> None:
    pytest.importorskip("statsmodels")
    from pycrm.analytics import forecast_sales

    orders = [
        Order("c1", dt.datetime(2022 + m // 12, 1 + m % 12, 10, tzinfo=UTC), Money(100 + 10 * (m % 12), "CNY")) for m in range(24)
    ]
    fc = forecast_sales(orders, horizon=3)
    html = fc._repr_html_()
    assert "<caption>Sales forecast</caption>" in html and "<td>revenue</td>" in html and "<td>CNY</td>" in html
    assert html.count("<tr><td>2024-0") == 3  # the three forecast periods
    assert fc.points.to_dataframe()["value"].tolist() == [float(p.value) for p in fc.points]
    assert fc.points.plot().axes[0].get_ylabel() == "value (CNY)"  # the rows carry no currency: the report does
    history = fc.history.plot().axes[0]
    assert history.get_ylabel() == "revenue (CNY)"
    assert {t.get_rotation() for t in history.get_xticklabels()} == {45.0}  # 24 periods: rotated, not crowded
    assert forecast_sales(orders, horizon=3, measure="orders").points.plot().axes[0].get_ylabel() == "value"


def test_matplotlib_is_the_plot_extra_in_all_and_in_the_tests() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text("utf-8"))
    extras = project["project"]["optional-dependencies"]
    assert extras["plot"] == ["matplotlib>=3.7"]
    assert "plot" in extras["all"][0].split("[")[1].rstrip("]").split(",")
    assert "matplotlib>=3.7" in extras["tests"] and "matplotlib>=3.7" in project["dependency-groups"]["tests"]
