"""The web portal: server-rendered pages (Jinja2, htmx for live updates) on the API's own use
cases. One module per product line (`datasets`, `admin`, …), each with its router and its
templates under templates/<line>/; `pages` and `sessions` are what they share."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from synth_pipelines.portal.pages import portal_error_page
from synth_pipelines.portal.sessions import PortalError, Signer, SignInRequired, portal_secret

STATIC_DIR = Path(__file__).parent / "static"


def mount_portal(app: FastAPI, secret: str | None = None) -> None:
    """The portal's pages, static files and error pages on `app`; cookies signed with `secret`
    (default: SYNTH_PORTAL_SECRET, see `portal_secret`)."""
    from synth_pipelines.portal import (
        admin,
        auth,
        datasets,
        imagesets,
        personas,
        subjects,
        tabular,
    )

    app.state.portal_signer = Signer(secret or portal_secret())
    app.mount("/portal/static", StaticFiles(directory=STATIC_DIR), name="portal-static")
    for module in (auth, datasets, tabular, admin, personas, subjects, imagesets):
        app.include_router(module.router)
    app.add_exception_handler(PortalError, portal_error_page)
    app.add_exception_handler(SignInRequired, portal_error_page)
