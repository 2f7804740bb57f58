"""State machines as data: pipelines for opportunities and the ticket lifecycle.

A machine is a frozen table checked when it is built: one initial state, every state reachable,
final states have no way out. Hosts build their own pipelines from the same pieces.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from pycrm.domain._checks import text
from pycrm.errors import FieldError, ValidationError, quote

__all__ = [
    "DEFAULT_PIPELINE",
    "TICKET_LIFECYCLE",
    "ForecastCategory",
    "Lifecycle",
    "Pipeline",
    "Stage",
    "StageKind",
    "TicketPriority",
    "TicketStatus",
    "get_pipeline",
    "register_pipeline",
]


#: The field each enumeration fills, for the error of a value that is none of its members.
_ENUM_FIELDS = {
    "StageKind": "kind",
    "ForecastCategory": "forecast_category",
    "TicketStatus": "status",
    "TicketPriority": "priority",
}


class _Choices(enum.StrEnum):
    """A StrEnum whose lookup of a value that is none of its members (``TicketStatus("nope")``, or junk such
    as ``TicketStatus([])``) is a ValidationError naming the field and the members."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        members = ", ".join(m.value for m in cls)
        field = _ENUM_FIELDS.get(cls.__name__, "value")
        raise ValidationError([FieldError(field, "invalid_choice", f"{quote(value)} is not one of {members}")])


class StageKind(_Choices):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ForecastCategory(_Choices):
    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"


def _probability(value: Any) -> Decimal:
    try:
        dec = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except Exception:
        raise ValidationError([FieldError("probability", "type", f"not a number: {quote(value)}")]) from None
    if not dec.is_finite() or not Decimal(0) <= dec <= Decimal(1):
        raise ValidationError([FieldError("probability", "range", f"must be between 0 and 1, got {quote(value)}")])
    return dec


def _convert(field: str, convert: Callable[[Any], Any], value: Any) -> Any:
    """``convert(value)``, with bad input reported as a ValidationError naming ``field`` (not a bare TypeError)."""
    try:
        return convert(value)
    except ValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise ValidationError([FieldError(field, "invalid", f"{quote(value)}: {quote(str(exc), 200)}")]) from None


def _stage_kind(value: Any) -> StageKind:
    return _convert("kind", StageKind, value)  # type: ignore[no-any-return]


def _forecast_category(value: Any) -> ForecastCategory:
    return _convert("forecast_category", ForecastCategory, value)  # type: ignore[no-any-return]


def _state_name(value: Any, field: str) -> str:
    """A stage's or pipeline's name: text of 1 to 100 characters."""
    return text(value, field, required=True, max_len=100)  # type: ignore[no-any-return]


def _named(value: Any) -> str:
    return _state_name(value, "name")


@attrs.frozen
class Stage:
    """One stage of a pipeline. ``probability`` is a Decimal in [0, 1]."""

    name: str = attrs.field(converter=_named)
    probability: Decimal = attrs.field(converter=_probability)
    kind: StageKind = attrs.field(default=StageKind.OPEN, converter=_stage_kind)
    forecast_category: ForecastCategory = attrs.field(default=ForecastCategory.PIPELINE, converter=_forecast_category)

    @property
    def is_closed(self) -> bool:
        return self.kind is not StageKind.OPEN


def _check_graph(name: str, states: list[str], initial: str, edges: Iterable[tuple[str, str]], finals: set[str]) -> None:
    """Raise ValidationError unless the graph is a well-formed machine."""
    problems: list[FieldError] = []
    known = set(states)
    if len(known) != len(states):
        problems.append(FieldError("states", "duplicate", f"{name}: state names repeat"))
    if initial not in known:
        problems.append(FieldError("initial", "unknown", f"{name}: initial state {initial!r} is not a state"))
    outgoing: dict[str, set[str]] = {s: set() for s in states}
    for a, b in edges:
        if a not in known or b not in known:
            problems.append(FieldError("transitions", "unknown", f"{name}: transition {a!r} -> {b!r} names an unknown state"))
            continue
        outgoing[a].add(b)
    for f in sorted(finals & known):
        if outgoing[f]:
            problems.append(FieldError("transitions", "final_has_exit", f"{name}: final state {f!r} has a way out"))
    seen, todo = {initial}, [initial]
    while todo:
        for nxt in outgoing.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    unreachable = [s for s in states if s not in seen]
    if unreachable and initial in known:
        problems.append(FieldError("states", "unreachable", f"{name}: unreachable from {initial!r}: {', '.join(unreachable)}"))
    if problems:
        raise ValidationError(problems)


def _stages(value: Iterable[Stage | Mapping[str, Any]]) -> tuple[Stage, ...]:
    stages = _convert("stages", lambda v: tuple(s if isinstance(s, Stage) else Stage(**s) for s in v), value)
    return stages  # type: ignore[no-any-return]


def _moves(value: Iterable[tuple[str, str]] | None) -> frozenset[tuple[str, str]] | None:
    return None if value is None else _convert("transitions", lambda v: frozenset((a, b) for a, b in v), value)


def _names(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else _convert("reopen_to", frozenset, value)


@attrs.frozen
class Pipeline:
    """A sales pipeline: stages, the allowed moves between open stages, and where closed deals may reopen.

    ``transitions=None`` means every open stage may move to any other open stage or close as won or lost.
    The first stage is the initial one.

    >>> p = Pipeline("simple", [Stage("new", "0.1"), Stage("won", 1, kind="won"), Stage("lost", 0, kind="lost")])
    >>> p.can_move("new", "won"), p.can_move("won", "new")
    (True, False)
    """

    name: str = attrs.field(converter=_named)
    stages: tuple[Stage, ...] = attrs.field(converter=_stages)
    transitions: frozenset[tuple[str, str]] | None = attrs.field(default=None, converter=_moves)
    reopen_to: frozenset[str] | None = attrs.field(default=None, converter=_names)

    def __attrs_post_init__(self) -> None:
        names = [s.name for s in self.stages]
        if not names:
            raise ValidationError([FieldError("stages", "required", f"{self.name}: a pipeline needs stages")])
        if self.stages[0].is_closed:
            raise ValidationError([FieldError("stages", "initial_closed", f"{self.name}: the first stage must be open")])
        finals = {s.name for s in self.stages if s.is_closed}
        _check_graph(self.name, names, names[0], self.moves, finals)
        for target in self.reopen_to or ():
            if target not in names or target in finals:
                raise ValidationError([FieldError("reopen_to", "unknown", f"{self.name}: cannot reopen to {target!r}")])

    @property
    def moves(self) -> frozenset[tuple[str, str]]:
        """Every allowed (from, to) move among stages, reopening excluded."""
        if self.transitions is not None:
            return self.transitions
        opens = [s.name for s in self.stages if not s.is_closed]
        return frozenset((a, b) for a in opens for b in self.stage_names if a != b)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def initial(self) -> str:
        return self.stages[0].name

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise ValidationError([FieldError("stage", "unknown_stage", f"{name!r} is not a stage of pipeline {self.name!r}")])

    def can_move(self, a: str, b: str) -> bool:
        return (a, b) in self.moves

    def can_reopen(self, a: str, b: str) -> bool:
        if not self.stage(a).is_closed or self.stage(b).is_closed:
            return False
        return self.reopen_to is None or b in self.reopen_to

    def won_stage(self) -> Stage:
        return next(s for s in self.stages if s.kind is StageKind.WON)

    def lost_stage(self) -> Stage:
        return next(s for s in self.stages if s.kind is StageKind.LOST)


DEFAULT_PIPELINE = Pipeline(
    "default",
    [
        Stage("prospecting", "0.10", forecast_category="pipeline"),
        Stage("qualification", "0.20", forecast_category="pipeline"),
        Stage("needs_analysis", "0.40", forecast_category="best_case"),
        Stage("proposal", "0.60", forecast_category="best_case"),
        Stage("negotiation", "0.80", forecast_category="commit"),
        Stage("closed_won", "1.0", kind="won", forecast_category="closed"),
        Stage("closed_lost", "0.0", kind="lost", forecast_category="omitted"),
    ],
)

_PIPELINES: dict[str, Pipeline] = {DEFAULT_PIPELINE.name: DEFAULT_PIPELINE}


def register_pipeline(pipeline: Pipeline) -> Pipeline:
    """Make a host-defined pipeline known by name (stored opportunities refer to it by name)."""
    if not isinstance(pipeline, Pipeline):
        raise ValidationError([FieldError("pipeline", "type", f"expected a Pipeline, got {type(pipeline).__name__}")])
    current = _PIPELINES.get(pipeline.name)
    if current is not None and current != pipeline:
        raise ValidationError([FieldError("pipeline", "conflict", f"another pipeline named {pipeline.name!r} is registered")])
    _PIPELINES[pipeline.name] = pipeline
    return pipeline


def get_pipeline(name: str) -> Pipeline:
    found = _PIPELINES.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValidationError([FieldError("pipeline", "unknown_pipeline", f"no pipeline named {quote(name)} is registered")])
    return found


class TicketStatus(_Choices):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(_Choices):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


def _edge_set(value: Iterable[tuple[enum.Enum, enum.Enum]]) -> frozenset[tuple[enum.Enum, enum.Enum]]:
    return frozenset(value)


def _state_set(value: Iterable[enum.Enum]) -> frozenset[enum.Enum]:
    return frozenset(value)


@attrs.frozen
class Lifecycle:
    """A lifecycle over an Enum of states: initial state, allowed moves, final states."""

    name: str
    states: type[enum.Enum]
    initial: enum.Enum
    transitions: frozenset[tuple[enum.Enum, enum.Enum]] = attrs.field(converter=_edge_set)
    finals: frozenset[enum.Enum] = attrs.field(converter=_state_set)

    def __attrs_post_init__(self) -> None:
        _check_graph(
            self.name,
            [s.value for s in self.states],
            self.initial.value,
            [(a.value, b.value) for a, b in self.transitions],
            {f.value for f in self.finals},
        )

    def can_move(self, a: enum.Enum, b: enum.Enum) -> bool:
        return (a, b) in self.transitions


_T = TicketStatus
_TICKET_MOVES: set[tuple[enum.Enum, enum.Enum]] = {
    (_T.NEW, _T.OPEN),
    (_T.OPEN, _T.PENDING),
    (_T.PENDING, _T.OPEN),
    (_T.OPEN, _T.RESOLVED),
    (_T.RESOLVED, _T.CLOSED),
    (_T.RESOLVED, _T.OPEN),
}
TICKET_LIFECYCLE = Lifecycle("ticket", TicketStatus, _T.NEW, _TICKET_MOVES, {_T.CLOSED})
