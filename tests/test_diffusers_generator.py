import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the 'ml' extra")
pytest.importorskip("torch", reason="needs the 'ml' extra")

from synth_pipelines.core.errors import InvalidInputError, MissingCheckpointError
from synth_pipelines.core.faces.buckets import AGE_RANGES, Bucket
from synth_pipelines.core.faces.diffusers_generator import DiffusersFaceGenerator
from synth_pipelines.core.faces.generation import FaceGenerator
from tests.tiny_models import build_tiny_text_to_image_pipeline

SENIOR_WOMEN = Bucket("female", "senior")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return str(build_tiny_text_to_image_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd"))


@pytest.fixture(scope="module")
def generator(checkpoint) -> DiffusersFaceGenerator:
    # batch_size 2 makes 3 faces take two pipeline calls (2 + 1).
    return DiffusersFaceGenerator(checkpoint, num_inference_steps=2, batch_size=2, size=64)


def pixels(face) -> np.ndarray:
    return np.asarray(face.image)


def test_generates_rgb_faces_of_the_requested_size(generator):
    faces = generator.generate(SENIOR_WOMEN, 3, seed=7)

    assert isinstance(generator, FaceGenerator)
    assert generator.name == "diffusers:tiny-sd"
    assert len(faces) == 3
    for face in faces:
        assert face.image.mode == "RGB"
        assert face.image.size == (64, 64)
        assert face.bucket == SENIOR_WOMEN
        assert pixels(face).std() > 1.0  # an image, not a blank


def test_prompts_name_the_bucket_and_a_sampled_age(generator):
    faces = generator.generate(SENIOR_WOMEN, 3, seed=7)

    low, high = AGE_RANGES["senior"]
    for face in faces:
        attrs = face.attributes
        assert (attrs["gender"], attrs["age_group"]) == ("female", "senior")
        assert low <= attrs["age"] <= high
        assert "woman" in attrs["prompt"]
        assert "elderly" in attrs["prompt"]
        assert f"{attrs['age']}-year-old" in attrs["prompt"]
        assert {"hair", "expression", "lighting"} <= attrs.keys()
    assert len({face.seed for face in faces}) == 3


def test_same_seed_same_pixels_other_seed_other_pixels(generator):
    first = generator.generate(SENIOR_WOMEN, 3, seed=7)
    again = generator.generate(SENIOR_WOMEN, 3, seed=7)
    other = generator.generate(SENIOR_WOMEN, 3, seed=8)

    for a, b in zip(first, again, strict=True):
        assert a.seed == b.seed and a.attributes == b.attributes
        assert np.array_equal(pixels(a), pixels(b))
    for a, c in zip(first, other, strict=True):
        assert a.seed != c.seed
        assert not np.array_equal(pixels(a), pixels(c))


def test_each_face_is_reproducible_from_its_own_seed(generator):
    faces = generator.generate(SENIOR_WOMEN, 3, seed=7)

    (again,) = generator.generate_from_seeds(SENIOR_WOMEN, [faces[2].seed])

    assert again.attributes == faces[2].attributes
    assert np.array_equal(pixels(again), pixels(faces[2]))


def test_male_child_prompt(generator):
    (face,) = generator.generate(Bucket("male", "child"), 1, seed=1)

    assert "boy" in face.attributes["prompt"]
    assert AGE_RANGES["child"][0] <= face.attributes["age"] <= AGE_RANGES["child"][1]


def test_missing_checkpoint_names_the_path(tmp_path):
    missing = tmp_path / "no-such-model"
    generator = DiffusersFaceGenerator(str(missing))  # cheap: nothing is loaded yet

    with pytest.raises(MissingCheckpointError) as excinfo:
        generator.generate(SENIOR_WOMEN, 1, seed=0)

    assert str(missing) in str(excinfo.value)
    assert "model_index.json" in str(excinfo.value)


def test_directory_without_model_index_is_not_a_checkpoint(tmp_path):
    (tmp_path / "unet").mkdir()

    with pytest.raises(MissingCheckpointError, match=r"has no model_index\.json"):
        DiffusersFaceGenerator(str(tmp_path)).load()


def test_unloadable_checkpoint_says_why(tmp_path):
    (tmp_path / "model_index.json").write_text("{not json")

    with pytest.raises(MissingCheckpointError, match="could not be loaded") as excinfo:
        DiffusersFaceGenerator(str(tmp_path)).load()

    assert str(tmp_path) in str(excinfo.value)


def test_unknown_prompt_placeholder_is_invalid_input(checkpoint):
    with pytest.raises(InvalidInputError, match=r"\{ethnicity\}"):
        DiffusersFaceGenerator(checkpoint, prompt_template="a {ethnicity} {gender_word}")
