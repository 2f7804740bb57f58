"""The drawing behind :meth:`Report.plot`, imported only when a plot is asked for (it imports matplotlib).

- The figure is a :class:`CRMFigure`, a ``matplotlib.figure.Figure`` with ``_repr_png_``: a notebook
  shows it as a picture without ``import matplotlib.pyplot`` or ``%matplotlib inline`` first (no pyplot
  state, no GUI backend: it renders with Agg).
- Chinese, Japanese and Korean text: :func:`cjk_font` picks an installed font family that has the glyphs
  (a well-known one by name, else any font whose character map covers them) and the figure's text uses
  it first, falling back to matplotlib's default font for the rest. With none installed, text falls back
  silently to the default font (CJK characters then show as boxes): install one (``fonts-noto-cjk`` on
  Debian/Ubuntu) or name yours with ``pycrm.analytics.set_plot_font`` (or ``PYCRM_PLOT_FONT``).
- Labels: a customer id axis shows the names when the rows have them; the columns that group the rows
  (owner, region, stage...) make one series each, with a legend; long labels make horizontal bars, many
  short ones (periods) are rotated; money axes say the currency.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pycrm.analytics._report import _PLOT_FONT

__all__ = ["CJK_FONTS", "CRMFigure", "cjk_font", "draw"]

#: Font families tried first, by name, for CJK text (then any installed font that covers :data:`_PROBE`).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Source Han Sans",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "SimHei",
    "Droid Sans Fallback",
    "Arial Unicode MS",
    "AR PL UMing CN",
)
#: Characters a CJK-capable font must have (common Chinese, a kana and a hangul).
_PROBE = "中文客户销售韩梅梅"

_covers_cache: dict[str, bool] = {}


class CRMFigure(Figure):
    """A matplotlib Figure that a notebook displays as PNG by itself (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        FigureCanvasAgg(self)  # no pyplot: attach an Agg canvas to render with
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def _covers(path: str) -> bool:
    """Whether the font file at ``path`` has glyphs for every character of :data:`_PROBE`."""
    got = _covers_cache.get(path)
    if got is None:
        try:
            from matplotlib.ft2font import FT2Font

            charmap = FT2Font(path).get_charmap()
            got = all(ord(ch) in charmap for ch in _PROBE)
        except (OSError, RuntimeError, ValueError):
            got = False
        _covers_cache[path] = got
    return got


def cjk_font(fonts: Iterable[tuple[str, str]] | None = None) -> str | None:
    """The font family to draw CJK text with: the one named by :func:`set_plot_font` or ``PYCRM_PLOT_FONT``,
    else the first of :data:`CJK_FONTS` installed that covers the probe characters, else any installed font
    that does; ``None`` when there is none. ``fonts``: (family name, file) pairs, default matplotlib's."""
    if _PLOT_FONT:
        return _PLOT_FONT[0]
    named = os.environ.get("PYCRM_PLOT_FONT", "").strip()
    if named:
        return named
    entries = [(f.name, f.fname) for f in font_manager.fontManager.ttflist] if fonts is None else list(fonts)
    rank = {name: k for k, name in enumerate(CJK_FONTS)}
    known = sorted((e for e in entries if e[0] in rank), key=lambda e: rank[e[0]])
    for name, path in known:
        if _covers(path):
            return name
    for name, path in entries:  # "Last Resort" draws a placeholder for every character: not a CJK font
        if name not in rank and not name.startswith("Last Resort") and _covers(path):
            return name
    return None


_MONEY_WORDS = ("amount", "revenue", "weighted", "monetary", "clv", "spend", "cost", "value", "cac", "price")
#: Columns whose values name the rows' group: one series per group.
_GROUP_COLUMNS = (
    "owner_id",
    "region",
    "stage",
    "forecast_category",
    "status",
    "priority",
    "category",
    "channel",
    "user_id",
    "team_id",
    "segment",
    "product_id",
)


def _label(value: Any) -> str:
    if value is None:
        return "(none)"
    if hasattr(value, "value") and not isinstance(value, Decimal):
        value = value.value
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def _is_money(name: str) -> bool:
    return any(word in name for word in _MONEY_WORDS)


def draw(
    rows: Sequence[Any],
    columns: Sequence[str],
    title: str,
    x: str,
    ys: Sequence[str],
    kind: str | None,
    currency: str | None = None,
) -> CRMFigure:
    """The figure of ``ys`` against ``x`` over ``rows`` (attrs rows with ``columns``)."""
    family = cjk_font()
    families = [family, *matplotlib.rcParams["font.family"]] if family else None
    rc: Any = {"font.family": families} if families else {}
    rc["text.parse_math"] = False  # a name with dollar signs is text, not TeX
    with matplotlib.rc_context(rc):
        return _draw(rows, columns, title, x, ys, kind, families, currency)


def _draw(
    rows: Sequence[Any],
    columns: Sequence[str],
    title: str,
    x: str,
    ys: Sequence[str],
    kind: str | None,
    families: list[str] | None,
    currency: str | None,
) -> CRMFigure:
    # An id axis shows the names the rows carry (a customer's id when it has no name).
    name_col = "name" if x.endswith("_id") and "name" in columns else None

    def x_label(row: Any) -> str:
        if name_col is not None and getattr(row, name_col):
            return str(getattr(row, name_col))
        return _label(getattr(row, x))

    groups = [c for c in _GROUP_COLUMNS if c in columns and c != x and c not in ys and len({getattr(r, c) for r in rows}) > 1]
    keys: list[Any] = []  # x values in order of first appearance
    labels: dict[Any, str] = {}
    series: dict[tuple[Any, ...], dict[Any, list[float]]] = {}
    for row in rows:
        key = getattr(row, x) if name_col is None else (getattr(row, x), getattr(row, name_col))
        if key not in labels:
            keys.append(key)
            labels[key] = x_label(row)
        g = tuple(getattr(row, c) for c in groups)
        per = series.setdefault(g, {})
        per[key] = [_number(getattr(row, y)) for y in ys]
    texts = [labels[k] for k in keys]
    if kind is None:
        kind = "barh" if max((len(t) for t in texts), default=0) > 8 else "bar"  # long names: horizontal bars
    fig = CRMFigure(layout="constrained")
    ax = fig.subplots()
    positions = list(range(len(keys)))
    ordered = sorted(series, key=lambda g: [(v is None, _label(v)) for v in g])  # groups by name, none last
    lines = [(g, k, y) for g in ordered for k, y in enumerate(ys)]
    width = 0.8 / max(1, len(lines))
    for n, (g, k, y) in enumerate(lines):
        values = [series[g].get(key, [float("nan")] * len(ys))[k] for key in keys]
        parts = [" / ".join(_label(v) for v in g)] if groups else []
        if len(ys) > 1:
            parts.append(y)
        label = " ".join(parts) or y
        offset = [p + (n - (len(lines) - 1) / 2) * width for p in positions]
        if kind == "bar":
            ax.bar(offset, [0.0 if v != v else v for v in values], width=width, label=label)
        elif kind == "barh":
            ax.barh(offset, [0.0 if v != v else v for v in values], height=width, label=label)
        else:
            ax.plot(positions, values, marker="o", label=label)
    value_label = _value_label(rows, columns, ys, currency)
    if kind == "barh":
        ax.set_yticks(positions)
        ax.set_yticklabels(texts)
        ax.invert_yaxis()  # the first row on top (a funnel's first stage)
        ax.set_ylabel(name_col or x)
        ax.set_xlabel(value_label)
    else:
        ax.set_xticks(positions)
        many = len(texts) > 6 or max((len(t) for t in texts), default=0) > 10
        ax.set_xticklabels(texts, rotation=45 if many else 0, ha="right" if many else "center")
        ax.set_xlabel(name_col or x)
        ax.set_ylabel(value_label)
    if title:
        ax.set_title(title)
    if len(lines) > 1:
        ax.legend(title=" / ".join(groups) if groups else None)
    if families:  # tick labels made later copy these
        for text in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            text.set_fontfamily(families)
    return fig


def _value_label(rows: Sequence[Any], columns: Sequence[str], ys: Sequence[str], currency: str | None) -> str:
    """The value axis's label: the columns plotted, with the currency when they are amounts in one (the rows'
    ``currency`` column, else the report's)."""
    label = ", ".join(ys)
    if not all(_is_money(y) for y in ys):
        return label
    if "currency" not in columns:
        return label + (f" ({currency})" if currency else "")
    currencies = sorted({r.currency for r in rows if r.currency is not None})
    return label + (f" ({', '.join(currencies)})" if currencies else "")
