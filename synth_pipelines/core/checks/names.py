"""Every asset check's name that code defines, once. A name is what the UI shows, what
`synth checks run --select` matches and what a delivery hold records (with its asset): the
computations, the assets and checks that declare them, and the tests import it from here.

Dagster groups a check under its asset and keys it by (asset, name), so a name says only what
the check tests: `near_duplicates` on face_inventory, not `face_inventory__near_duplicates`.
A name is unique per asset, not across assets (`id__not_null` is on face_inventory and on
dataset_package). YAML tests are named in their files: `<column>__<test>`, or `<test>` for a
table-level test, unless the YAML gives a `name:` (see core/checks/spec.py)."""

from __future__ import annotations

FACE_INVENTORY, DATASET_PACKAGE, TABULAR_DATASET = (
    "face_inventory",
    "dataset_package",
    "tabular_dataset",
)

# face_inventory: stored objects, image quality, labels, privacy (core/checks/faces.py)
OBJECTS_PRESENT = "objects_present"
IMAGE_QUALITY = "image_quality"
NEAR_DUPLICATES = "near_duplicates"
LABEL_AGREEMENT = "label_agreement"
IDENTITY_LEAKAGE = "identity_leakage"
FACE_FRESHNESS = "freshness"

# dataset_package: the delivered archives (core/checks/datasets.py)
FILE_HASHES = "file_hashes"
MANIFEST_MATCHES_REQUEST = "manifest_matches_request"
LABEL_BALANCE = "label_balance"
DISTINCT_IDENTITIES = "distinct_identities"

# tabular_dataset: what the job's schema implies (core/checks/tabular_schema.py)
TABULAR_NOT_NULL = "not_null"
TABULAR_UNIQUE = "unique"
TABULAR_RANGES = "ranges"
TABULAR_ACCEPTED_CATEGORIES = "accepted_categories"
TABULAR_PATTERN = "pattern"
# tabular_dataset of a job fitted to a real sample (core/tabular/fitted/checks.py); skipped for
# prompt-drafted jobs. Privacy blocks: a job over its limits is not delivered.
FITTED_QUALITY = "fitted_quality"
FITTED_DCR = "fitted_dcr_share"
FITTED_IDENTICAL = "fitted_identical_matches"
# tabular_dataset of a job fitted to several samples joined by keys: every foreign key value is
# a generated parent key (blocks); skipped for one-table jobs.
FITTED_KEYS = "fitted_foreign_keys"

# persona_adapter (core/checks/personas.py)
PERPLEXITY = "perplexity"
PII_LEAKAGE = "pii_leakage"
STYLE_SIMILARITY = "style_similarity"

# flux_lora_samples (core/checks/flux_samples.py)
FLUX_IDENTITY = "identity"
PROMPT_RELEVANCE = "prompt_relevance"

# image_validation: the synthetic image set against its real one (core/imagesets/pipeline.py)
IMAGE_VALIDATION = "image_validation"
SET_QUALITY = "quality"
SET_FIDELITY = "fidelity"
SET_PRIVACY = "privacy"

# The names code gives checks on the assets YAML tests too: a YAML test may not take one.
CODE_CHECKS: dict[str, tuple[str, ...]] = {
    FACE_INVENTORY: (
        OBJECTS_PRESENT,
        IMAGE_QUALITY,
        NEAR_DUPLICATES,
        LABEL_AGREEMENT,
        IDENTITY_LEAKAGE,
        FACE_FRESHNESS,
    ),
    DATASET_PACKAGE: (FILE_HASHES, MANIFEST_MATCHES_REQUEST, LABEL_BALANCE, DISTINCT_IDENTITIES),
    TABULAR_DATASET: (
        TABULAR_NOT_NULL,
        TABULAR_UNIQUE,
        TABULAR_RANGES,
        TABULAR_ACCEPTED_CATEGORIES,
        TABULAR_PATTERN,
    ),
}
# Until issue 21 the checks on these assets were named `<asset>__<name>`; holds recorded then,
# and hold runs requested then, still spell them so (see `unprefixed`).
PREFIXED_BEFORE = tuple(CODE_CHECKS)


def unprefixed(asset: str, name: str) -> str:
    """`name` without a redundant `<asset>__` prefix: `face_inventory__near_duplicates` on
    face_inventory is `near_duplicates`; any other name is returned as it is."""
    prefix = f"{asset}__"
    return name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else name


def legacy_asset(name: str) -> str | None:
    """The asset a name from before issue 21 (`face_inventory__near_duplicates`) names, if any."""
    return next((a for a in PREFIXED_BEFORE if name.startswith(f"{a}__")), None)
