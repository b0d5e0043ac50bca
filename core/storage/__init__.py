"""File storage: the storage port, its GCS adapter, upload policies and the
document-file use cases (signed upload, sniffed confirmation, signed download).

Plugins get the port as ``services.storage`` and never import google.cloud.
"""

from core.storage.policy import DOCUMENTS, UploadPolicy
from core.storage.port import SignedUrl, StorageService, StorageUnavailable, StoredObject

__all__ = [
    "DOCUMENTS",
    "SignedUrl",
    "StorageService",
    "StorageUnavailable",
    "StoredObject",
    "UploadPolicy",
]
