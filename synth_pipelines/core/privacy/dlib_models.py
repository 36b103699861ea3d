"""dlib's face models: where they are, loading them once per process, and the face recognition
ResNet (`dlib_face_recognition_resnet_model_v1.dat`) run by torch.

The models come from the `face-recognition-models` package, found by path because the package
itself cannot be imported (it needs `pkg_resources`).

The dlib-bin wheel has no BLAS: its ResNet forward pass takes ~120 ms per face on one core,
which caps an identity scan at ~8 faces/s per core. The same weights run by torch take ~12 ms
per face in batches and give the same 128-d descriptors (within 1e-5 of dlib's own
`compute_face_descriptor`).

The .dat file is read as dlib writes it: the loss layer, then one version number per layer, then
the input layer and each layer's details from the input up (a conv's filters and biases, an
affine's gamma and beta, a pool's window), each followed by its (empty) training state.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synth_pipelines.core.errors import MissingBackendError, MissingCheckpointError

LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # the network's input: an aligned face chip from dlib.get_face_chip
DESCRIPTOR_SIZE = 128


class _Reader:
    """dlib's serialisation primitives over a byte buffer."""

    def __init__(self, data: bytes, start: int = 0) -> None:
        self.data = data
        self.pos = start

    def integer(self) -> int:
        # One control byte (length in the low nibble, 0x80 = negative), then little-endian bytes.
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def text(self) -> str:
        size = self.integer()
        value = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        return float(np.ldexp(float(mantissa), exponent))

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:  # version 2 stores raw little-endian float32
            raise ValueError(f"tensor format version {version}, expected 2")
        count = int(np.prod([self.integer() for _ in range(4)]))
        values = np.frombuffer(self.data, "<f4", count, self.pos)
        self.pos += 4 * count
        return values.astype(np.float32)

    def alias_shape(self) -> tuple[int, ...]:
        self.integer()  # alias_tensor version
        return tuple(self.integer() for _ in range(4))

    def skip_training_state(self, first_layer: bool) -> None:
        self.pos += 3  # three bools, '0' or '1'
        for _ in range(3):  # gradient and output caches, empty in a saved model
            self.tensor()
        if first_layer:
            self.integer()  # sample_expansion_factor of the layer above the input


@dataclass
class _Conv:
    weight: torch.Tensor
    bias: torch.Tensor
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


@dataclass
class _Affine:
    gamma: torch.Tensor
    beta: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


@dataclass
class _Pool:
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


Layer = tuple[str, Any]  # ("con", _Conv), ("affine", _Affine), ("max"/"avg", _Pool), ...


def _read_layers(data: bytes) -> tuple[list[float], list[Layer]]:
    """The input layer's channel means and the layers from the input up."""
    marker = b"\x01\x15input_rgb_image_sized"
    start = data.find(marker)
    if start < 0:
        raise ValueError("no input_rgb_image_sized layer")
    reader = _Reader(data, start)
    reader.text()
    means = [reader.real() for _ in range(3)]
    if (reader.integer(), reader.integer()) != (CHIP_SIZE, CHIP_SIZE):
        raise ValueError(f"input is not {CHIP_SIZE}x{CHIP_SIZE}")
    layers: list[Layer] = []
    while reader.pos < len(data):
        name = reader.text()
        if name == "con_4":
            params = reader.tensor()
            filters, rows, cols = reader.integer(), reader.integer(), reader.integer()
            stride = (reader.integer(), reader.integer())
            padding = (reader.integer(), reader.integer())
            shape = reader.alias_shape()
            reader.alias_shape()
            for _ in range(4):  # learning-rate and weight-decay multipliers
                reader.real()
            size = int(np.prod(shape))
            if shape[0] != filters or shape[2:] != (rows, cols):
                raise ValueError(
                    f"conv filter shape {shape} disagrees with {filters}x{rows}x{cols}"
                )
            weight = torch.from_numpy(params[:size].reshape(shape))
            layers.append(("con", _Conv(weight, torch.from_numpy(params[size:]), stride, padding)))
        elif name == "affine_":
            params = reader.tensor()
            reader.alias_shape()
            reader.alias_shape()
            reader.integer()  # mode: per channel for a conv net
            half = params.size // 2
            gamma, beta = (
                torch.from_numpy(v).view(1, -1, 1, 1) for v in (params[:half], params[half:])
            )
            layers.append(("affine", _Affine(gamma, beta)))
        elif name in ("max_pool_2", "avg_pool_2"):
            rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(6))
            layers.append((name[:3], _Pool((rows, cols), (stride_y, stride_x), (pad_y, pad_x))))
        elif name in ("relu_", "add_prev_"):
            layers.append(("relu" if name == "relu_" else "add", None))
        elif name == "fc_2":
            outputs, _inputs = reader.integer(), reader.integer()
            params = reader.tensor()
            reader.alias_shape()
            reader.alias_shape()
            if reader.integer() != 1:  # 1 = FC_NO_BIAS, as this network is built
                raise ValueError("fc layer with a bias")
            for _ in range(4):
                reader.real()
            layers.append(("fc", torch.from_numpy(params.reshape(-1, outputs))))
        else:
            raise ValueError(f"unexpected layer {name!r}")
        reader.skip_training_state(first_layer=len(layers) == 1)
    return means, layers


def _pad_to(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return F.pad(x, (0, shape[3] - x.shape[3], 0, shape[2] - x.shape[2], 0, shape[1] - x.shape[1]))


class DlibFaceResNet:
    """The 128-d descriptor network: `describe(chips)` for chips from dlib.get_face_chip."""

    def __init__(self, means: list[float], layers: list[Layer]) -> None:
        kinds = [kind for kind, _ in layers]
        if kinds[:4] != ["con", "affine", "relu", "max"] or kinds[-2:] != ["avg", "fc"]:
            raise ValueError(f"unexpected layer sequence: {kinds[:4]} ... {kinds[-2:]}")
        if layers[-2][1].window != (0, 0):
            raise ValueError("the last pool does not average over the whole image")
        self._means = torch.tensor(means, dtype=torch.float32).view(1, 3, 1, 1)
        self._layers = layers

    @classmethod
    def from_file(cls, path: Path) -> DlibFaceResNet:
        """Load `dlib_face_recognition_resnet_model_v1.dat`; MissingCheckpointError if `path` is
        missing or is not that network."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise MissingCheckpointError(
                f"cannot read the dlib face ResNet at '{path}': {exc}"
            ) from exc
        try:
            network = cls(*_read_layers(data))
            # One blank chip walks every layer: a file of another shape fails here, not later.
            blank = network.describe(np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), np.uint8))
            if blank.shape != (1, DESCRIPTOR_SIZE):
                raise ValueError(f"output is {blank.shape[1]}-d, not {DESCRIPTOR_SIZE}-d")
        except (ValueError, IndexError, RuntimeError, UnicodeDecodeError) as exc:
            raise MissingCheckpointError(
                f"'{path}' is not dlib_face_recognition_resnet_model_v1.dat ({exc}): reinstall "
                "face-recognition-models==0.3.0 or point models_dir at an intact copy"
            ) from exc
        return network

    def describe(self, chips: np.ndarray, threads: int = 1) -> np.ndarray:
        """(n, 150, 150, 3) uint8 RGB face chips -> (n, 128) float32 descriptors.

        Runs on `threads` torch threads (restored afterwards): one per process by default, as
        torch's default of every core slows to a crawl when another process holds one.
        """
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (n, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}")
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
                x = (x - self._means) / 256.0  # dlib's input layer: mean-subtracted, over 256
                return self._forward(x).numpy().astype(np.float32, copy=False)
        finally:
            torch.set_num_threads(before)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = [value for _, value in self._layers]
        kinds = [kind for kind, _ in self._layers]
        pool = layers[3]
        x = F.max_pool2d(F.relu(layers[1](layers[0](x))), pool.window, pool.stride, pool.padding)
        i = 4
        # Residual blocks: con, affine, relu, con, affine, [avg_pool of the input], add, relu.
        while kinds[i] == "con":
            y = layers[i + 4](layers[i + 3](F.relu(layers[i + 1](layers[i](x)))))
            i += 5
            if kinds[i] == "avg":
                pool = layers[i]
                x = F.avg_pool2d(x, pool.window, pool.stride, pool.padding)
                i += 1
            if kinds[i : i + 2] != ["add", "relu"]:
                raise ValueError(f"layer {i} is {kinds[i]!r}, expected the end of a residual block")
            # dlib adds tensors of different shapes by zero-padding both to the larger one.
            shape = tuple(max(a, b) for a, b in zip(x.shape, y.shape, strict=True))
            x = F.relu(_pad_to(x, shape) + _pad_to(y, shape))
            i += 2
        return x.mean(dim=(2, 3)) @ layers[i + 1]  # avg_pool_everything, then fc without bias


def default_models_dir() -> Path:
    """The `models/` folder of the installed face-recognition-models package.

    MissingBackendError, saying what to install, when the package is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBackendError(
            "identity embeddings need the dlib models from face-recognition-models: "
            "pip install face-recognition-models==0.3.0, or pass models_dir= a folder holding "
            f"{LANDMARKS_FILE} and {RESNET_FILE}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass(frozen=True)
class FaceModels:
    """dlib's HOG face detector, its 5-point landmark model and the descriptor ResNet."""

    detector: Any
    landmarks: Any
    resnet: DlibFaceResNet


_MODELS: dict[Path, FaceModels] = {}
_LOCK = threading.Lock()


def load_face_models(models_dir: Path) -> FaceModels:
    """The models in `models_dir`, loaded once per process (~1 s) and shared.

    MissingBackendError naming the missing files; MissingCheckpointError for a broken ResNet.
    """
    key = Path(models_dir).resolve()
    with _LOCK:
        if key not in _MODELS:
            missing = [name for name in (LANDMARKS_FILE, RESNET_FILE) if not (key / name).is_file()]
            if missing:
                raise MissingBackendError(
                    f"models_dir '{key}' lacks {', '.join(missing)}: reinstall "
                    "face-recognition-models==0.3.0 or copy the files there"
                )
            import dlib  # the dlib-bin wheel: only once models are wanted

            _MODELS[key] = FaceModels(
                detector=dlib.get_frontal_face_detector(),
                landmarks=dlib.shape_predictor(str(key / LANDMARKS_FILE)),
                resnet=DlibFaceResNet.from_file(key / RESNET_FILE),
            )
        return _MODELS[key]


def _forget_models_after_fork() -> None:
    # A forked child loads its own models: native thread pools do not survive a fork.
    global _LOCK
    _MODELS.clear()
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_models_after_fork)
