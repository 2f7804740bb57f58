"""Analytics: pure functions that define the meaning; SQL adapters compute the same inside the database."""

from pycrm.analytics._rfm import DEFAULT_SEGMENTS, RFMScore, SegmentRule, rfm, segment_of

__all__ = ["DEFAULT_SEGMENTS", "RFMScore", "SegmentRule", "rfm", "segment_of"]
