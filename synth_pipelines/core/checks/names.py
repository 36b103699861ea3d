"""Every asset check's name that code defines, once. A name is what the UI shows, what
`synth checks run --select` matches and what a delivery hold records: the computations, the
assets and checks that declare them, and the tests import it from here. (YAML tests are named
in their files: `<asset>__<column>__<test>` unless the YAML gives a `name:`.)"""

from __future__ import annotations

# face_inventory: stored objects, image quality, labels, privacy (core/checks/faces.py)
OBJECTS_PRESENT = "face_inventory__objects_present"
IMAGE_QUALITY = "face_inventory__image_quality"
NEAR_DUPLICATES = "face_inventory__near_duplicates"
LABEL_AGREEMENT = "face_inventory__label_agreement"
IDENTITY_LEAKAGE = "face_inventory__identity_leakage"
FACE_FRESHNESS = "face_inventory__freshness"

# dataset_package: the delivered archives (core/checks/datasets.py)
FILE_HASHES = "dataset_package__file_hashes"
MANIFEST_MATCHES_REQUEST = "dataset_package__manifest_matches_request"
LABEL_BALANCE = "dataset_package__label_balance"
DISTINCT_IDENTITIES = "dataset_package__distinct_identities"

# tabular_dataset: what the job's schema implies (core/checks/tabular_schema.py)
TABULAR_NOT_NULL = "tabular_dataset__not_null"
TABULAR_UNIQUE = "tabular_dataset__unique"
TABULAR_RANGES = "tabular_dataset__ranges"
TABULAR_ACCEPTED_CATEGORIES = "tabular_dataset__accepted_categories"
TABULAR_PATTERN = "tabular_dataset__pattern"

# persona_adapter (core/checks/personas.py). These two lines' checks carry no asset prefix:
# renaming them would orphan the check history recorded under the old names.
PERPLEXITY = "perplexity"
PII_LEAKAGE = "pii_leakage"
STYLE_SIMILARITY = "style_similarity"

# flux_lora_samples (core/checks/flux_samples.py)
FLUX_IDENTITY = "identity"
PROMPT_RELEVANCE = "prompt_relevance"
