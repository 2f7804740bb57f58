"""``Report``: the container every report function returns, a list of frozen attrs rows.

A report is a plain ``list`` (index it, loop over it, compare it with a list of rows) that also knows its
row type, so an empty report still has columns. ``to_dataframe()`` and ``plot()`` import pandas and
matplotlib only when called; both are optional (``pip install "pycrm[pandas]"``, ``pip install "pycrm[plot]"``).
In a notebook a report shows as an HTML table (``_repr_html_``) and its plot as a picture.

>>> import attrs
>>> @attrs.frozen
... class Row:
...     period: str
...     deals: int
>>> r = Report(Row, [Row("2024-01", 3), Row("2024-02", 5)], title="Deals", x="period", y="deals")
>>> r[1].deals, r == [Row("2024-01", 3), Row("2024-02", 5)], r.columns
(5, True, ('period', 'deals'))
>>> print(r.to_text())
Deals
  period   deals
  2024-01      3
  2024-02      5
>>> print(Report(Row, title="Deals").to_text())
Deals
  period  deals
  (none)
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from pycrm.domain._checks import MAX_NAME, check_iterable, check_names, text
from pycrm.domain._html import html_table
from pycrm.errors import CRMError, FieldError, ValidationError, quote

__all__ = ["Report", "plot_font", "set_plot_font"]

R = TypeVar("R")


_PLOT_FONT: list[str] = []  # the font family set_plot_font named, if any


def set_plot_font(name: str | None) -> None:
    """Draw CJK text in plots with the font family ``name`` (``None``: pick an installed one again).

    Without a call, :meth:`Report.plot` uses the family named by the ``PYCRM_PLOT_FONT`` environment
    variable, else an installed font that covers Chinese (Noto Sans CJK, Source Han Sans, WenQuanYi...).
    """
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValidationError([FieldError("name", "type", f"expected a font family name, got {quote(name)}")])
    _PLOT_FONT[:] = [] if name is None else [name.strip()]


def plot_font() -> str | None:
    """The font family plots draw CJK text with, or ``None`` when none is installed (the text then falls back
    to matplotlib's default font, and Chinese shows as boxes). Needs matplotlib (``pycrm[plot]``)."""
    try:
        importlib.import_module("matplotlib")
        plot = importlib.import_module("pycrm.analytics._plot")
    except ImportError:
        raise CRMError('plot_font() needs matplotlib: pip install "pycrm[plot]"') from None
    return plot.cjk_font()  # type: ignore[no-any-return]


def _width(text: str) -> int:
    """Columns a terminal uses for ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _places(value: Any) -> int:
    """Decimal places that carry a digit (``100.0000`` has none, ``0.5000`` one)."""
    if not isinstance(value, Decimal) or not value.is_finite() or value == 0:
        return 0
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _cell(value: Any, places: int | None = None) -> str:
    """A value as table text; Decimals with thousands separators and ``places`` decimals (a column's)."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return f"{value:,.{_places(value) if places is None else places}f}"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _plain(value: Any, exact: bool) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal) and not exact:
        return float(value)
    return value


class Report(list[R], Generic[R]):
    """A list of rows of one attrs class, with a title, default plot axes, a DataFrame and a plot.

    ``row_type`` is the attrs class of the rows; ``x`` and ``y`` are the default axes of :meth:`plot`;
    ``currency`` the currency of the amounts when the rows have no ``currency`` column.
    """

    def __init__(
        self,
        row_type: type[R],
        rows: Iterable[R] = (),
        *,
        title: str = "",
        x: str | None = None,
        y: str | Sequence[str] | None = None,
        currency: str | None = None,
    ):
        if not isinstance(row_type, type) or not attrs.has(row_type):
            raise ValidationError([FieldError("row_type", "type", f"must be an attrs class, got {quote(row_type)}")])
        rows = list(check_iterable("rows", rows, f"a list of {row_type.__name__}"))
        bad = [i for i, r in enumerate(rows) if not isinstance(r, row_type)]
        if bad:
            raise ValidationError([FieldError(f"rows[{bad[0]}]", "type", f"expected {row_type.__name__}")])
        super().__init__(rows)
        self.row_type = row_type
        self.title = text(title, "title", max_len=MAX_NAME)
        self.x = text(x, "x", max_len=100, optional=True)
        self.y: tuple[str, ...] = check_names("y", y, optional=True) or ()
        #: The currency of the amounts when the rows have no ``currency`` column (a plot's axis label).
        self.currency = text(currency, "currency", max_len=3, optional=True)

    @classmethod
    def _trusted(
        cls, row_type: type[R], rows: list[R], *, title: str = "", x: str | None = None, y: tuple[str, ...] = ()
    ) -> Report[R]:
        """A report of rows built and checked by pycrm itself: no per-row check (large RFM or CLV results)."""
        report: Report[R] = cls.__new__(cls)
        report.extend(rows)
        report.row_type = row_type  # type: ignore[assignment]
        report.title, report.x, report.y, report.currency = title, x, y, None
        return report

    @property
    def columns(self) -> tuple[str, ...]:
        """The row fields, in declaration order (also the DataFrame's columns)."""
        return tuple(a.name for a in attrs.fields(self.row_type))

    def __repr__(self) -> str:
        return f"Report({self.row_type.__name__}, {list.__repr__(self)})"

    def to_records(self, *, exact: bool = True) -> list[dict[str, Any]]:
        """One dict per row; enums become their values, Decimals become floats unless ``exact``."""
        cols = self.columns
        return [{c: _plain(getattr(row, c), exact) for c in cols} for row in self]

    def to_dataframe(self, *, exact: bool = False) -> Any:
        """A pandas DataFrame with one column per row field (pandas is imported only now).

        Amounts and rates become floats, so pandas arithmetic and plotting work; ``exact=True`` keeps
        them as ``Decimal`` objects (an ``object`` column). An empty report gives an empty frame that
        still has the columns. Raises :class:`pycrm.CRMError` when pandas is not installed.
        """
        try:
            pd = importlib.import_module("pandas")
        except ImportError:
            raise CRMError('Report.to_dataframe() needs pandas: pip install "pycrm[pandas]"') from None
        records = self.to_records(exact=exact)
        frame = pd.DataFrame.from_records(records, columns=list(self.columns))
        for column in self.columns:  # whole numbers stay whole with gaps (Int64), dates become datetimes
            values = [r[column] for r in records if r[column] is not None]
            if not values:
                continue
            if all(type(v) is int for v in values):
                frame[column] = frame[column].astype("int64" if len(values) == len(records) else "Int64")
            elif all(isinstance(v, float) for v in values):
                frame[column] = frame[column].astype("float64")
            elif all(type(v) is dt.date for v in values):
                frame[column] = pd.to_datetime(frame[column])
        return frame

    def plot(self, x: str | None = None, y: str | Sequence[str] | None = None, *, kind: str | None = None) -> Any:
        """A matplotlib ``Figure`` of ``y`` against ``x`` (defaults: the report's axes); ``kind`` is bar,
        barh (horizontal bars) or line; by default bar, or barh when the labels are long (names, stages).

        The figure is made without pyplot (no GUI backend, no global state) and has ``_repr_png_``, so a
        notebook shows it as a cell's value without importing pyplot first; ``fig.savefig("out.png")``
        writes it. An id axis shows the rows' names (top customers), the columns that group the rows
        (``by="owner"``...) give one series each with a legend, money axes say their currency, and CJK text
        uses an installed CJK font (docs/notebooks.md). Raises :class:`pycrm.CRMError` when matplotlib is
        not installed (``pip install "pycrm[plot]"``), ``ValidationError`` for unknown columns.
        """
        xs = x or self.x or self.columns[0]
        ys = (y,) if isinstance(y, str) else tuple(y or self.y)
        problems = [
            FieldError(name, "unknown_column", f"{name!r} is not a column of {self.row_type.__name__}")
            for name in (xs, *ys)
            if name not in self.columns
        ]
        if not ys:
            problems.append(FieldError("y", "required", "name the column(s) to plot"))
        if kind not in (None, "bar", "barh", "line"):
            problems.append(FieldError("kind", "invalid_choice", f"{kind!r} is not one of bar, barh, line"))
        if problems:
            raise ValidationError(problems)
        try:
            importlib.import_module("matplotlib")
            plot = importlib.import_module("pycrm.analytics._plot")
        except ImportError:
            raise CRMError('Report.plot() needs matplotlib: pip install "pycrm[plot]"') from None
        return plot.draw(list(self), self.columns, self.title, xs, ys, kind, self.currency)

    def _repr_html_(self) -> str:
        """An HTML table for notebooks: the title, the columns, the first rows (escaped) and "… N more rows"."""
        cols = self.columns
        rows = ([getattr(row, c) for c in cols] for row in self)
        return html_table(self.title, cols, rows, total=len(self))

    def to_text(self, columns: Sequence[str] | None = None) -> str:
        """A plain-text table (numbers right-aligned), headed by the title; ``(none)`` when empty."""
        cols = list(columns or self.columns)
        unknown = [c for c in cols if c not in self.columns]
        if unknown:
            raise ValidationError(
                [FieldError(c, "unknown_column", f"{c!r} is not a column of {self.row_type.__name__}") for c in unknown]
            )
        places = {c: max((_places(getattr(row, c)) for row in self), default=0) for c in cols}
        rows = [[_cell(getattr(row, c), places[c]) for c in cols] for row in self]
        numeric = [
            bool(rows) and all(isinstance(getattr(row, c), (int, Decimal, float)) or getattr(row, c) is None for row in self)
            for c in cols
        ]
        widths = [max(_width(x) for x in col) for col in zip(cols, *rows)]
        lines = [self.title] if self.title else []
        for cells in [cols, *rows]:
            out = [
                (" " * (widths[i] - _width(v)) + v) if numeric[i] else (v + " " * (widths[i] - _width(v)))
                for i, v in enumerate(cells)
            ]
            lines.append(("  " + "  ".join(out)).rstrip())
        if not rows:
            lines.append("  (none)")
        return "\n".join(lines)
