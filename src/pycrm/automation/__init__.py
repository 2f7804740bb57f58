"""Automation: work that happens by itself -- assignment and business calendars (issue 22).

* :class:`BusinessCalendar`: working days and hours in a time zone, holidays and make-up working days;
  ``add_business_days``, ``next_working_time``.
* Assignment: :class:`RoundRobin`, :class:`LeastLoaded`, :class:`Weighted` and :class:`ByField` strategies,
  people away (:class:`Availability`: leave, working hours) skipped; :func:`assign` and :func:`assign_to`
  return an :class:`Assignment` saying who and why.

See docs/automation.md.
"""

from __future__ import annotations

from pycrm.automation._assign import (
    Assignment,
    Availability,
    ByField,
    LeastLoaded,
    RoundRobin,
    Strategy,
    Weighted,
    assign,
    assign_to,
)
from pycrm.automation._calendar import BusinessCalendar

__all__ = [
    "Assignment",
    "Availability",
    "BusinessCalendar",
    "ByField",
    "LeastLoaded",
    "RoundRobin",
    "Strategy",
    "Weighted",
    "assign",
    "assign_to",
]
