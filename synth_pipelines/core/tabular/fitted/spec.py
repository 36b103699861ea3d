"""The fitted model's parts as data: what a `TableSchema` carries (`schema.fitted`), with no
numeric code, so that the schema, and everything that imports it (the generator, the API, the
CLI), loads without pandas or scipy. Fitting is `model.fit_model`, sampling `sampler`; the
module docstring of `model` says what the parts mean and what is kept.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

__all__ = [
    "FITTED_TYPES",
    "Combination",
    "Component",
    "FittedColumn",
    "FittedModel",
    "Marginal",
    "Seasonality",
    "fittable",
]

FITTED_TYPES = ("integer", "float", "boolean", "category", "date", "datetime")


class Marginal(BaseModel):
    """`quantiles` (continuous) or `probs` (discrete, codes 0..k-1; `values` when the codes
    stand for numbers)."""

    quantiles: list[float] | None = None
    probs: list[float] | None = None
    values: list[float] | None = None


class Seasonality(BaseModel):
    """Datetime shares: weekday (Monday first; None when near uniform), hour of day, and the
    resolution of the times (seconds: 1, 60, 3600 or 86400)."""

    weekday: list[float] | None = None
    hour: list[float] | None = None
    resolution_seconds: int = 1


class FittedColumn(BaseModel):
    name: str
    type: str
    variable: int | None = Field(default=None, description="index of its value variable")
    null_variable: int | None = None
    categories: list[str] | None = Field(default=None, description="category codes' values")
    decimals: int | None = None
    difference_of: str | None = Field(
        default=None, description="inequality: this column is difference_of + its variable"
    )
    fallback: Marginal | None = Field(
        default=None, description="a difference column's own values, for rows whose low is null"
    )
    combination: int | None = None
    seasonality: Seasonality | None = None


class Combination(BaseModel):
    columns: list[str]
    values: list[list[str]]  # code -> one value per column
    variable: int


class Component(BaseModel):
    level: int | None = Field(default=None, description="the conditioning column's level")
    weight: float
    rows: int
    marginals: list[Marginal]
    correlation: list[list[float]]


class FittedModel(BaseModel):
    """A table's fitted model (JSON-serialisable; no raw rows)."""

    sample_rows: int
    seed: int
    variables: list[str]
    columns: list[FittedColumn]
    combinations: list[Combination] = Field(default_factory=list)
    condition: str | None = None
    levels: list[Any] | None = Field(default=None, description="the conditioning levels")
    components: list[Component]
    _compiled: dict = PrivateAttr(default_factory=dict)

    def column(self, name: str) -> FittedColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def fittable(column: Any) -> bool:
    """A schema column the model samples: a typed value that is not an id or text (PII and
    text come from the semantic generators, never from the sample)."""
    return column.type in FITTED_TYPES and column.semantic_type is None and column.source != "llm"
