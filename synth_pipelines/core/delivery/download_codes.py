"""Download codes: a secret per request, given out once in clear and stored only as a hash;
a download is authorized by comparing hashes in constant time."""

from __future__ import annotations

from synth_pipelines.core.delivery.status import effective_status
from synth_pipelines.core.errors import ConflictError, GoneError, NotFoundError
from synth_pipelines.core.security.tokens import new_secret, secret_matches
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import DatasetRequest

CODE_BYTES = 24  # 192 random bits


def new_download_code() -> tuple[str, str]:
    """A fresh download code in clear (shown once) and its hash (the only thing stored)."""
    return new_secret(CODE_BYTES)


def authorize_download(db: FactoryDatabase, request_id: str, code: str) -> DatasetRequest:
    """The ready request `code` unlocks, counting the download.

    Unknown request or wrong code → NotFoundError (the same answer, so ids cannot be probed);
    an expired link → GoneError; a right code to a dataset not ready yet → ConflictError, not
    counted. Codes are compared as hashes in constant time.
    """
    with db.session(locking=True) as session:
        request = session.get(DatasetRequest, request_id)
        if not secret_matches(request.code_hash if request else None, code):
            raise NotFoundError("no dataset at this download link")
        status = effective_status(request)
        if status == "expired" or request.status == "expired":
            raise GoneError(f"the download link for dataset {request_id} has expired")
        if status != "ready" or not request.archive_key:
            raise ConflictError(f"dataset {request_id} is {status}, not ready to download yet")
        request.downloads += 1
        session.flush()
        session.expunge(request)
        return request
