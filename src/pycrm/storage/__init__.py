"""Storage: the repository protocol and unit of work, with memory and SQL adapters.

``MAX_IN_VALUES`` and ``MAX_ROWS`` are the documented bounds of a ``where`` in-list and of ``limit``,
``offset`` and ``batch_size`` (see docs/storage.md, "Limits").
"""

from pycrm.storage._repository import Repository, Session
from pycrm.storage._where import MAX_IN_VALUES, MAX_ROWS

__all__ = ["MAX_IN_VALUES", "MAX_ROWS", "Repository", "Session"]
