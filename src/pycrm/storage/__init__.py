"""Storage: the repository protocol and unit of work, with memory and SQL adapters.

``MAX_IN_VALUES`` and ``MAX_ROWS`` are the documented bounds of a ``where`` in-list and of ``limit``,
``offset`` and ``batch_size`` (see docs/storage.md, "Limits").
"""

from pycrm.storage._attachments import DEFAULT_MEDIA_TYPES, AttachmentLimits, AttachmentRepository
from pycrm.storage._blobs import BlobStore, FsspecBlobStore, LocalBlobStore
from pycrm.storage._repository import Repository, Session
from pycrm.storage._where import MAX_IN_VALUES, MAX_ROWS

__all__ = [
    "DEFAULT_MEDIA_TYPES",
    "MAX_IN_VALUES",
    "MAX_ROWS",
    "AttachmentLimits",
    "AttachmentRepository",
    "BlobStore",
    "FsspecBlobStore",
    "LocalBlobStore",
    "Repository",
    "Session",
]
