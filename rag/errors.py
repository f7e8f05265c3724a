"""Errors a user can act on. Each subclass carries a short machine `reason` code.

Anything that is not a RagError is a bug and propagates.
"""
from __future__ import annotations


class RagError(Exception):
    reason = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class FileRejected(RagError):
    """A file that cannot be indexed; the message names the file and says why."""


class UnsupportedType(FileRejected):
    reason = "unsupported_type"


class MislabelledType(FileRejected):
    reason = "mislabelled_type"


class FileTooLarge(FileRejected):
    reason = "too_large"


class EmptyFile(FileRejected):
    reason = "empty"


class PasswordProtected(FileRejected):
    reason = "password_protected"


class NoTextLayer(FileRejected):
    reason = "no_text_layer"


class MalformedFile(FileRejected):
    reason = "malformed"


class ParseTimeout(FileRejected):
    reason = "timeout"


class EmbedderMismatch(RagError):
    reason = "embedder_mismatch"


class EmbedderUnavailable(RagError):
    reason = "embedder_unavailable"


class IndexBusy(RagError):
    reason = "index_busy"


class NotFound(RagError):
    reason = "not_found"
