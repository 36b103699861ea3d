"""Errors a user can act on. Every message names the problem and, where there is one, the fix."""


class SynthError(Exception):
    """Base class for errors that carry a message meant for the user."""


class InvalidInputError(SynthError, ValueError):
    """Bad input from a user: unknown bucket, absurd count, bad format. Maps to HTTP 422."""


class FieldError(InvalidInputError):
    """Bad input in one named field (`field`, dotted: "columns.amount.min"). HTTP 422."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class UnknownBucketError(InvalidInputError):
    """A bucket name that is not one of gender/age_group."""


class MissingBackendError(SynthError, ImportError):
    """An optional backend whose extra is not installed or whose local weights are missing."""


class MissingCheckpointError(SynthError, FileNotFoundError):
    """A model checkpoint path that does not exist or does not hold a loadable model."""


class StorageError(SynthError):
    """The object store or factory database cannot be reached or used."""


class ObjectNotFoundError(StorageError, KeyError):
    """A key that is not in the object store."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else "object not found"


class NotFoundError(SynthError, LookupError):
    """A request, dataset or object id that does not exist. Maps to HTTP 404."""


class ConflictError(SynthError):
    """An action the current state does not allow (e.g. retrying a ready request). HTTP 409."""


class GoneError(SynthError):
    """Something that existed but has expired (a download link). Maps to HTTP 410."""


class ArchiveIntegrityError(SynthError):
    """Bytes that do not match their recorded sha256: a stored face or a dataset archive member."""


class LLMError(SynthError):
    """An LLM endpoint answered but gave nothing usable: output still invalid after the retries,
    a request it refused (bad key, unknown model), errors that outlasted the backoff. HTTP 502."""


class LLMUnavailableError(LLMError):
    """The LLM endpoint cannot be reached: connection refused, DNS failure, timeout. HTTP 503."""


class AuthenticationError(SynthError):
    """No API key, or one that is unknown or revoked. HTTP 401."""


class PermissionDeniedError(SynthError):
    """A known caller that may not do this: missing consent, or an owner acting on another's
    data. HTTP 403, with the reason."""


class BusyError(SynthError):
    """Too much work queued already (a bounded queue is full): retry later. HTTP 429."""
