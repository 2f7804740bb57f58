"""Storage: the repository protocol and unit of work, with memory and SQL adapters."""

from pycrm.storage._repository import Repository, Session

__all__ = ["Repository", "Session"]
