"""`synth keys`, `synth apikeys` and `synth audit`: master keys of persona encryption, users' API
keys and the hash-chained audit log."""

from __future__ import annotations

import typer
from rich.table import Table

from synth_pipelines.cli.common import _database, _fail, _settings, console, errors
from synth_pipelines.core.errors import SynthError

keys_app = typer.Typer(help="Master keys of persona encryption.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys of users (owner, admin).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random master key (for SYNTH_MASTER_KEY); nothing is stored."""
    from synth_pipelines.core.security.crypto import generate_master_key

    print(generate_master_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-wrap every persona's data key under SYNTH_MASTER_KEY. Put the old master key(s) in
    SYNTH_MASTER_KEYS_PREVIOUS while this runs; remove them once it reports 0 left."""
    from synth_pipelines.core.security.crypto import keyring_from_env
    from synth_pipelines.core.security.rotation import rotate_keys

    settings = _settings()
    db = _database(settings)
    try:
        counts = rotate_keys(db, keyring_from_env(), actor="cli:keys rotate")
    except SynthError as exc:
        _fail(str(exc))
    console.print(
        f"re-wrapped {counts['rewrapped']} data key(s); {counts['current']} already under the "
        "current master key"
    )


@apikeys_app.command("create")
def apikeys_create(
    user: str = typer.Argument(..., help="The user the key belongs to."),
    role: str = typer.Option("owner", help="owner (their own personas) or admin (all)."),
) -> None:
    """Create an API key and print it once: only its hash is stored."""
    from synth_pipelines.core.security.accounts import create_api_key

    settings = _settings()
    try:
        token = create_api_key(_database(settings), user, role, actor="cli:apikeys create")
    except SynthError as exc:
        _fail(str(exc))
    print(token)


@apikeys_app.command("list")
def apikeys_list() -> None:
    """List API keys (ids, users, roles; never the secrets)."""
    from synth_pipelines.core.security.accounts import list_api_keys

    table = Table()
    for column in ("id", "user", "role", "created", "revoked"):
        table.add_column(column)
    for key in list_api_keys(_database(_settings())):
        table.add_row(
            key.id,
            key.user,
            key.role,
            f"{key.created_at:%Y-%m-%d %H:%M}",
            str(key.revoked_at or ""),
        )
    console.print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: str = typer.Argument(..., help="The key's id (see `list`).")) -> None:
    """Revoke an API key: it stops working at once."""
    from synth_pipelines.core.security.accounts import revoke_api_key

    try:
        revoke_api_key(_database(_settings()), key_id, actor="cli:apikeys revoke")
    except SynthError as exc:
        _fail(str(exc))
    console.print(f"revoked {key_id}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 naming every edited or deleted record."""
    from synth_pipelines.core.security.audit import verify

    result = verify(_database(_settings()))
    if not result.ok:
        for problem in result.problems:
            errors.print(f"[red]{problem}[/]")
        _fail(f"the audit log was tampered with: {len(result.problems)} problem(s)")
    console.print(f"audit log intact: {result.records} records, head {result.head_hash[:16]}…")
