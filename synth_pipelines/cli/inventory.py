"""`synth inventory`: the face inventory per bucket against the targets."""

from __future__ import annotations

from rich.table import Table

from synth_pipelines.cli.common import _database, _settings, console


def inventory_table(settings, db, extra: dict[str, dict[str, str]] | None = None) -> Table:
    """A rich table of inventory levels per bucket, with optional extra columns per bucket."""
    from synth_pipelines.core.faces.inventory import inventory_status_counts

    counts = inventory_status_counts(db)
    extra = extra or {}
    extra_columns = sorted({column for row in extra.values() for column in row})
    table = Table(title=f"Face inventory ({db.describe()})")
    for column in ("bucket", "available", "reserved", "delivered", "target", "low-water", "fill"):
        table.add_column(column, justify="left" if column == "bucket" else "right")
    for column in extra_columns:
        table.add_column(column, justify="right")
    totals = {"available": 0, "reserved": 0, "delivered": 0, "target": 0}
    for bucket, row in counts.items():
        target = settings.faces.targets[bucket]
        fill = row["available"] / target if target else 1.0
        style = "red" if row["available"] < settings.faces.low_water_mark(bucket) else "green"
        table.add_row(
            bucket,
            f"[{style}]{row['available']}[/]",
            str(row["reserved"]),
            str(row["delivered"]),
            str(target),
            str(settings.faces.low_water_mark(bucket)),
            f"{fill:.0%}",
            *(extra.get(bucket, {}).get(column, "") for column in extra_columns),
        )
        for key in ("available", "reserved", "delivered"):
            totals[key] += row[key]
        totals["target"] += target
    table.add_section()
    table.add_row(
        "total", *(str(totals[k]) for k in ("available", "reserved", "delivered", "target"))
    )
    return table


def inventory() -> None:
    """Print the face inventory: faces per bucket and status, against the targets."""
    settings = _settings()
    console.print(inventory_table(settings, _database(settings)))
