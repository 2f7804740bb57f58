"""HTML tables for notebooks: what ``_repr_html_`` of reports, entities and result objects returns.

Every value is escaped (a customer named ``<script>`` is shown, never run); a table shows at most
:data:`MAX_HTML_ROWS` rows and says how many more there are; masked values (text that carries the
``__pycrm_masked__`` flag) are shown as they are, marked ``masked``.

>>> print(html_table("Deals <b>", ("name", "amount"), [("<script>", 3)], total=25))
<div class="pycrm"><table>
<caption>Deals &lt;b&gt;</caption>
<thead><tr><th>name</th><th>amount</th></tr></thead>
<tbody>
<tr><td>&lt;script&gt;</td><td style="text-align:right">3</td></tr>
<tr><td colspan="2">… 24 more rows</td></tr>
</tbody></table></div>
"""

from __future__ import annotations

import datetime as dt
import enum
import html
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["MAX_HTML_ROWS", "attrs_table", "html_cell", "html_table", "key_value_table"]

#: The rows an HTML table shows; the rest are counted in a last row ("… N more rows").
MAX_HTML_ROWS = 20


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, ",f")
    if isinstance(value, float):
        return format(value, ",.6g") if abs(value) < 1e15 else repr(value)
    if isinstance(value, int):
        return format(value, ",")
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (frozenset, set)):
        return ", ".join(sorted(str(v) for v in value))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _masked(value: Any) -> bool:
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(getattr(v, "__pycrm_masked__", False) for v in value)
    return bool(getattr(value, "__pycrm_masked__", False))


def html_cell(value: Any) -> str:
    """One ``<td>``: escaped text; numbers right-aligned; a masked value marked ``masked``."""
    body = html.escape(_text(value))
    if _masked(value):
        return f'<td class="pycrm-masked" title="masked">{body}</td>'
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return f'<td style="text-align:right">{body}</td>'
    return f"<td>{body}</td>"


def html_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, total: int | None = None) -> str:
    """A table with ``title`` as caption; only the first :data:`MAX_HTML_ROWS` of ``rows`` are read, and
    ``total`` (the number of rows, when known) says how many more there are."""
    shown: list[Sequence[Any]] = []
    for row in rows:
        if len(shown) == MAX_HTML_ROWS:
            break
        shown.append(row)
    lines = ['<div class="pycrm"><table>']
    if title:
        lines.append(f"<caption>{html.escape(title)}</caption>")
    lines.append("<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "</tr></thead>")
    lines.append("<tbody>")
    lines += ["<tr>" + "".join(html_cell(v) for v in row) + "</tr>" for row in shown]
    if not shown:
        lines.append(f'<tr><td colspan="{max(1, len(columns))}">(none)</td></tr>')
    more = (total or 0) - len(shown)
    if more > 0:
        noun = "row" if more == 1 else "rows"
        lines.append(f'<tr><td colspan="{max(1, len(columns))}">… {more:,} more {noun}</td></tr>')
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def key_value_table(title: str, items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of names and values, ``title`` as caption."""
    lines = ['<div class="pycrm"><table>']
    if title:
        lines.append(f"<caption>{html.escape(title)}</caption>")
    lines.append("<tbody>")
    lines += [f'<tr><th style="text-align:left">{html.escape(k)}</th>{html_cell(v)}</tr>' for k, v in items]
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def attrs_table(obj: Any, title: str | None = None) -> str:
    """The fields of an attrs object (those shown by its repr) as a key/value table, titled by its class."""
    import attrs

    items = [
        (a.name, getattr(obj, a.name)) for a in attrs.fields(type(obj)) if a.repr is not False and not a.name.startswith("_")
    ]
    return key_value_table(type(obj).__name__ if title is None else title, items)
