"""A StyleGAN2 generator in plain PyTorch that loads the checkpoints of the widely used PyTorch
port (rosinality's `stylegan2-pytorch`, and the weights converted with its `convert_weight.py`).

The checkpoint is `torch.save`'d as `{"g_ema": state_dict, "latent_avg": tensor, ...}`; this
module's parameter and buffer names match that state dict one for one:

- `style.1 … style.{n_mlp}`: the mapping network (PixelNorm, then equalised linear layers with a
  learning-rate multiplier and a scaled leaky ReLU);
- `input.input`: the learned 4x4 constant; `conv1`, `to_rgb1`: the 4x4 block;
- `convs.{2k}` (upsampling) and `convs.{2k+1}`, `to_rgbs.{k}`: one block per resolution 8…size;
  each styled conv has `conv.weight`, `conv.modulation.weight/bias`, `noise.weight`,
  `activate.bias` (and `conv.blur.kernel` when it upsamples), each to-RGB `conv.*`, `bias` and
  `upsample.kernel` (the FIR kernel that upsamples the skip image);
- `noises.noise_{i}`: the fixed per-layer noise images.

Resampling uses `upfirdn2d`, written here in pure PyTorch (no CUDA extension), so the same code
runs on CPU and GPU. `load_stylegan2` infers size, style_dim, n_mlp and the channel widths from
the state dict; `StyleGAN2Generator.generate(seeds, psi)` gives uint8 images, one per seed.

torch is an optional dependency (the `ml` extra): it is imported when this module is, so import
the module inside the functions that need it.
"""

from __future__ import annotations

import argparse
import math
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipelines.core.errors import (
    InvalidInputError,
    MissingBackendError,
    MissingCheckpointError,
)

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as exc:  # pragma: no cover - torch is in the venv; this guards the extra
    raise MissingBackendError(
        f"the StyleGAN2 generator needs torch ({exc}): install torch==2.13.0 "
        "(the CPU build, or a CUDA build on GPU machines), then pip install 'synth_pipelines[ml]'"
    ) from exc

BLUR_KERNEL = (1.0, 3.0, 3.0, 1.0)
LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0)
MEAN_LATENT_SAMPLES = 4096  # mapped latents averaged for truncation when latent_avg is absent
_MEAN_LATENT_SEED = 0x5EED


def default_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """The channel width of each resolution 4…size in the StyleGAN2 configs (config-f is
    channel_multiplier 2): 512 up to 32 px, then halving with the multiplier."""
    widths = {4: 512, 8: 512, 16: 512, 32: 512}
    for log2 in range(6, 11):
        widths[2**log2] = (2 ** (14 - log2)) * channel_multiplier
    return {res: widths[res] for res in _resolutions(size)}


def _resolutions(size: int) -> list[int]:
    if size < 4 or size & (size - 1):
        raise InvalidInputError(f"StyleGAN2 size must be a power of two >= 4, got {size}")
    return [2**i for i in range(2, int(math.log2(size)) + 1)]


def fir_kernel(taps: Sequence[float] = BLUR_KERNEL) -> torch.Tensor:
    """The separable 2-D FIR kernel of 1-D `taps`, normalised to sum to one."""
    k = torch.tensor(taps, dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), filter with the FIR `kernel`,
    then keep every `down`-th pixel: the resampling primitive of StyleGAN2, per channel."""
    batch, channels, height, width = x.shape
    planes = x.reshape(batch * channels, 1, height, width)
    if up > 1:
        spread = planes.new_zeros(batch * channels, 1, height * up, width * up)
        spread[:, :, ::up, ::up] = planes
        planes = spread
    before, after = pad
    planes = F.pad(planes, (before, after, before, after))
    weight = torch.flip(kernel, (0, 1)).to(planes)[None, None]
    planes = F.conv2d(planes, weight)
    if down > 1:
        planes = planes[:, :, ::down, ::down]
    return planes.reshape(batch, channels, planes.shape[-2], planes.shape[-1])


def scaled_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) of x + bias (per channel, dim 1), times √2 to keep the variance."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), LEAKY_SLOPE) * LEAKY_GAIN


class PixelNorm(nn.Module):
    """Normalises each latent vector to unit root-mean-square."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """A linear layer with weights scaled at run time (equalised learning rate); with
    `activate`, a scaled leaky ReLU follows and the bias goes inside it."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activate: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul
        if self.activate:
            return scaled_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class Blur(nn.Module):
    """FIR filtering with fixed padding (after a transposed-conv upsample, gain 4)."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel() * gain)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the skip image."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel() * 4)
        taps = len(BLUR_KERNEL) - 2
        self.pad = ((taps + 1) // 2 + 1, taps // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """A convolution whose weights are scaled per input channel by the style (modulation), then
    optionally renormalised per output channel (demodulation); one weight set per sample, run
    as one grouped convolution over the batch."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            excess = (len(BLUR_KERNEL) - 2) - (kernel_size - 1)
            self.blur = Blur(pad=((excess + 1) // 2 + 1, excess // 2 + 1), gain=4.0)

    def _weights(self, style: torch.Tensor) -> torch.Tensor:
        batch = style.shape[0]
        scales = self.modulation(style).view(batch, 1, self.in_channels, 1, 1)
        weight = self.weight * self.scale * scales
        if self.demodulate:
            norm = torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)
            weight = weight * norm.view(batch, self.out_channels, 1, 1, 1)
        return weight  # batch, out, in, k, k

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        weight = self._weights(style)
        k = self.kernel_size
        grouped = x.reshape(1, batch * self.in_channels, height, width)
        if self.upsample:
            # Transposed conv weights are (in, out) per group.
            weight = weight.transpose(1, 2).reshape(
                batch * self.in_channels, self.out_channels, k, k
            )
            out = F.conv_transpose2d(grouped, weight, stride=2, groups=batch)
            out = out.reshape(batch, self.out_channels, out.shape[-2], out.shape[-1])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channels, self.in_channels, k, k)
        out = F.conv2d(grouped, weight, padding=k // 2, groups=batch)
        return out.reshape(batch, self.out_channels, height, width)


class NoiseInjection(nn.Module):
    """Adds a single-channel noise image, scaled by one learned weight."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 input, repeated over the batch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated 3x3 conv, noise, bias + scaled leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, style_dim: int, upsample: bool = False
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = _Bias(out_channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.noise(self.conv(x, style), noise)
        return scaled_leaky_relu(out, self.activate.bias)


class _Bias(nn.Module):
    """Holds the activation's per-channel bias (state dict key `activate.bias`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))


class ToRGB(nn.Module):
    """A modulated 1x1 conv to RGB (no demodulation), added to the upsampled skip image."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class StyleGAN2Generator(nn.Module):
    """The StyleGAN2 synthesis + mapping networks with the `stylegan2-pytorch` state dict layout.

    `channels` maps each resolution 4…size to its width (default: `default_channels(size,
    channel_multiplier)`, the published configs); small widths make tiny test models.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        lr_mlp: float = 0.01,
        channels: dict[int, int] | None = None,
    ) -> None:
        super().__init__()
        resolutions = _resolutions(size)
        if size < 8:
            raise InvalidInputError(f"StyleGAN2 size must be at least 8, got {size}")
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.channel_multiplier = channel_multiplier
        self.channels = dict(channels or default_channels(size, channel_multiplier))
        missing = [r for r in resolutions if r not in self.channels]
        if missing:
            raise InvalidInputError(f"StyleGAN2 channels has no width for resolutions {missing}")
        self.style = nn.Sequential(
            PixelNorm(),
            *(
                EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True)
                for _ in range(n_mlp)
            ),
        )
        width = self.channels[4]
        self.input = ConstantInput(width)
        self.conv1 = StyledConv(width, width, style_dim)
        self.to_rgb1 = ToRGB(width, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for res in resolutions[1:]:
            out = self.channels[res]
            self.convs.append(StyledConv(width, out, style_dim, upsample=True))
            self.convs.append(StyledConv(out, out, style_dim))
            self.to_rgbs.append(ToRGB(out, style_dim))
            width = out
        self.num_layers = 2 * len(resolutions) - 1
        self.n_latent = 2 * len(resolutions)
        self.noises = nn.Module()
        for index in range(self.num_layers):
            res = 2 ** ((index + 5) // 2)
            self.noises.register_buffer(f"noise_{index}", torch.randn(1, 1, res, res))
        self.register_buffer("truncation_latent", torch.zeros(style_dim), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.input.input.device

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """The mapping network: z (batch, style_dim) → w (batch, style_dim)."""
        return self.style(z)

    def mean_latent(self, samples: int = MEAN_LATENT_SAMPLES) -> torch.Tensor:
        """The mean of `samples` mapped latents of fixed random z: the truncation centre when a
        checkpoint carries no latent_avg."""
        gen = torch.Generator().manual_seed(_MEAN_LATENT_SEED)
        z = torch.randn(samples, self.style_dim, generator=gen).to(self.device)
        with torch.no_grad():
            return self.map(z).mean(dim=0)

    def synthesize(self, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """Images in about [-1, 1], (batch, 3, size, size), from w (batch, style_dim), the same
        w at every layer. `noise_mode` "const" uses the stored noise images, "none" none."""
        if noise_mode not in ("const", "none"):
            raise InvalidInputError(f"noise_mode must be 'const' or 'none', got {noise_mode!r}")
        batch = w.shape[0]
        noises = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if noise_mode == "none":
            noises = [torch.zeros_like(n) for n in noises]
        out = self.conv1(self.input(batch), w, noises[0])
        skip = self.to_rgb1(out, w)
        for index, to_rgb in enumerate(self.to_rgbs):
            up, conv = self.convs[2 * index], self.convs[2 * index + 1]
            out = up(out, w, noises[2 * index + 1])
            out = conv(out, w, noises[2 * index + 2])
            skip = to_rgb(out, w, skip)
        return skip

    def latents_for(self, seeds: Sequence[int]) -> torch.Tensor:
        """z for each seed: standard normal from a CPU torch.Generator seeded with it, so a seed
        gives the same z on every device."""
        rows = [
            torch.randn(self.style_dim, generator=torch.Generator().manual_seed(int(s)))
            for s in seeds
        ]
        return torch.stack(rows).to(self.device)

    def generate(
        self,
        seeds: Sequence[int],
        psi: float = 0.7,
        noise_mode: str = "const",
        batch_size: int = 8,
    ) -> np.ndarray:
        """One RGB image per seed, uint8 (n, size, size, 3). `psi` is the truncation ψ: w is
        pulled to the average latent by w_avg + ψ (w - w_avg); ψ = 1 is no truncation, ψ = 0
        the average image. The same (seed, ψ) always gives the same pixels, whatever the
        batch and the seeds beside it: each seed is mapped and synthesised on its own, since a
        batched matmul or grouped convolution picks its kernels by the batch's shape and so
        rounds a sample differently in another batch (by a level of a pixel, measured). On a
        CPU that is also faster (0.16-0.22 s against 0.39-0.60 s for 8 images of a 128 px
        model); `batch_size` is how many images are converted and moved at a time."""
        if any(isinstance(s, bool) or int(s) < 0 for s in seeds):
            raise InvalidInputError("StyleGAN2 seeds must be non-negative integers")
        if not 0.0 <= psi <= 2.0:
            raise InvalidInputError(f"truncation psi must be from 0 to 2, got {psi}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        chunks = []
        with torch.no_grad():
            for start in range(0, len(seeds), batch_size):
                images = []
                for seed in seeds[start : start + batch_size]:
                    w = self.map(self.latents_for([seed]))
                    w = self.truncation_latent + psi * (w - self.truncation_latent)
                    images.append(self.synthesize(w, noise_mode))
                image = torch.cat(images)
                pixels = (image.clamp(-1, 1) + 1) * 127.5
                chunks.append(pixels.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.concatenate(chunks)


_STYLE_KEY = re.compile(r"^style\.(\d+)\.weight$")
_CONV_KEY = re.compile(r"^convs\.(\d+)\.conv\.weight$")


def _architecture(state: dict[str, Any]) -> dict[str, Any]:
    """size, style_dim, n_mlp, channels and channel_multiplier read off a g_ema state dict."""
    required = ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight")
    missing = [key for key in required if key not in state]
    if missing:
        raise InvalidInputError(
            "not a stylegan2-pytorch generator state dict: missing keys " + ", ".join(missing)
        )
    n_mlp = sum(1 for key in state if _STYLE_KEY.match(key))
    style_dim = int(state["style.1.weight"].shape[1])
    convs = sum(1 for key in state if _CONV_KEY.match(key))  # two per resolution above 4 px
    channels = {4: int(state["input.input"].shape[1])}
    for block in range(convs // 2):
        key = f"convs.{2 * block}.conv.weight"
        if key not in state:
            raise InvalidInputError(f"not a stylegan2-pytorch generator: missing keys {key}")
        channels[2 ** (block + 3)] = int(state[key].shape[1])
    size = max(channels)
    multiplier = channels[64] // 256 if 64 in channels and channels[64] % 256 == 0 else 2
    return {
        "size": size,
        "style_dim": style_dim,
        "n_mlp": n_mlp,
        "channels": channels,
        "channel_multiplier": max(multiplier, 1),
    }


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingCheckpointError(
            f"StyleGAN2 checkpoint '{path}' does not exist: expected a torch.save file with "
            "'g_ema' (a stylegan2-pytorch generator state dict) and optionally 'latent_avg'"
        )
    try:
        # Training checkpoints also hold the run's argparse.Namespace; nothing else is unpickled.
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise MissingCheckpointError(
            f"StyleGAN2 checkpoint '{path}' could not be read: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(checkpoint, dict):
        raise InvalidInputError(f"StyleGAN2 checkpoint '{path}' is not a dict")
    return checkpoint


def load_stylegan2(
    path: str | Path, device: str | None = None, lr_mlp: float = 0.01
) -> StyleGAN2Generator:
    """Load the `g_ema` generator of a stylegan2-pytorch checkpoint at `path` onto `device`
    (default cuda when available), in eval mode, truncation centred on `latent_avg` (else the
    mean of 4,096 mapped latents). A bare state dict (no `g_ema`) is accepted too.

    Raises MissingCheckpointError when the file is missing or unreadable, InvalidInputError
    (naming the keys) when its layout is not a stylegan2-pytorch generator's.
    """
    path = Path(path)
    checkpoint = _read_checkpoint(path)
    state = checkpoint.get("g_ema", checkpoint)
    if not isinstance(state, dict):
        raise InvalidInputError(f"StyleGAN2 checkpoint '{path}': 'g_ema' is not a state dict")
    arch = _architecture(state)
    generator = StyleGAN2Generator(lr_mlp=lr_mlp, **arch)
    expected = set(generator.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing keys " + ", ".join(missing[:12]))
        if unexpected:
            parts.append("unexpected keys " + ", ".join(unexpected[:12]))
        raise InvalidInputError(
            f"StyleGAN2 checkpoint '{path}' does not match the stylegan2-pytorch layout for "
            f"size {arch['size']}: " + "; ".join(parts)
        )
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InvalidInputError(f"StyleGAN2 checkpoint '{path}': {exc}") from exc
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = generator.to(device).eval()
    latent_avg = checkpoint.get("latent_avg") if "g_ema" in checkpoint else None
    if latent_avg is not None:
        centre = torch.as_tensor(latent_avg, dtype=torch.float32).reshape(-1)
        if centre.numel() != generator.style_dim:
            raise InvalidInputError(
                f"StyleGAN2 checkpoint '{path}': latent_avg has {centre.numel()} values, "
                f"style_dim is {generator.style_dim}"
            )
    else:
        centre = generator.mean_latent()
    generator.truncation_latent = centre.to(device)
    return generator
