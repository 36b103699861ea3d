"""What the routers share: the app's state, the public base URL, and serving a stored object."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, StreamingResponse

from synth_pipelines.core.storage.object_store import LocalObjectStore, ObjectStore

CHUNK = 1024 * 1024


def api_state(request: Request):
    """The ApiState `create_app` built (settings, db, store, …)."""
    return request.app.state.synth


def public_base(request: Request) -> str:
    """Base of links handed out: SYNTH_PUBLIC_URL when set, else the request's own base URL."""
    return api_state(request).public_url or str(request.base_url).rstrip("/")


def serve_object(
    store: ObjectStore, key: str, *, media_type: str, filename: str, expires_in: int
) -> StreamingResponse | RedirectResponse:
    """A stored object as the answer: streamed from a local store, or a 307 to a presigned URL
    valid for `expires_in` seconds (S3)."""
    if not isinstance(store, LocalObjectStore):
        return RedirectResponse(store.url(key, expires_in=expires_in), status_code=307)
    size = store.size(key)  # before streaming: a missing object is a 503, not a cut stream

    def chunks():
        with store.open_reader(key) as reader:
            while block := reader.read(CHUNK):
                yield block

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(size),
        },
    )
