"""Import, export, backup/restore and archiving: data in and out of a store.

Being written; see docs/io.md.
"""

__all__: list[str] = []
