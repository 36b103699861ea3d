"""Image set generation throughput per backend, through `build_generator(...).generate(...)`
(render, statistics matching, blur/noise finishing, PNG encoding): simulation scenes and
simulation faces at 256 px, and the GAN and diffusion backends on tiny random checkpoints built
here (at their own size: 32 px StyleGAN2, 64 px Stable-Diffusion-like, 2 steps). Prints a table:
`python benchmarks/imagesets_generate.py`.

Target: simulation scenes >= 50 images/s at 256 px on one core (`--cores 1`, the default, pins
the process to one CPU and torch to one thread).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from synth_pipelines.core.cpus import cpu_description

QUANTILES = {"p1": 1, "p5": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95, "p99": 99}


def _feature(rng: np.random.Generator, mean: float, std: float) -> dict[str, Any]:
    values = np.clip(rng.normal(mean, std, 500), 0, None)
    counts, edges = np.histogram(values, bins=20)
    return {
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": {k: float(np.percentile(values, q)) for k, q in QUANTILES.items()},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def bench_profile(size: int, faces: bool) -> dict[str, Any]:
    """A profile of an imaginary set of `size` px photos, in the profile JSON layout."""
    rng = np.random.default_rng(0)
    features = {
        "brightness": _feature(rng, 115, 30),
        "contrast": _feature(rng, 55, 12),
        "colourfulness": _feature(rng, 40, 15),
        "sharpness": _feature(rng, 400, 150),
        "noise": _feature(rng, 1.5, 0.5),
    }
    for name in ("width", "height"):
        features[name] = _feature(rng, size, 0)
    features["aspect"] = _feature(rng, 1.0, 0)
    return {
        "features": features,
        "sizes": [{"width": size, "height": size, "count": 500}],
        "counts": {"images": 500},
        "labels": {"cat": 300, "dog": 200},
        "faces": {"images_with_faces": 500 if faces else 0},
    }


def rate(
    generator: Any, profile: dict[str, Any], count: int, repeats: int = 3, warmup: int = 2
) -> tuple[float, float]:
    """Images per wall-clock second and per CPU second of this process over `count` images,
    the best of `repeats` runs, after `warmup` (model load). On a machine other jobs share,
    CPU seconds and the best run are the fairer figures."""
    list(generator.generate(profile, warmup, seed=99))
    best_wall = best_cpu = 0.0
    for run in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        made = sum(1 for _ in generator.generate(profile, count, seed=run))
        best_wall = max(best_wall, made / (time.perf_counter() - wall))
        best_cpu = max(best_cpu, made / max(time.process_time() - cpu, 1e-9))
    return best_wall, best_cpu


def bench_scene_render(count: int, size: int, repeats: int = 3) -> tuple[float, float]:
    from synth_pipelines.core.imagesets.scenes import SceneSimulator

    simulator = SceneSimulator()
    best_wall = best_cpu = 0.0
    for run in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for seed in range(count):
            simulator.render(size, size, run * count + seed)
        best_wall = max(best_wall, count / (time.perf_counter() - wall))
        best_cpu = max(best_cpu, count / max(time.process_time() - cpu, 1e-9))
    return best_wall, best_cpu


def _row(name: str, rates: tuple[float, float], target: str = "") -> tuple[str, str, str, str]:
    return name, f"{rates[0]:.1f}", f"{rates[1]:.1f}", target


def _tiny_checkpoints(folder: Path) -> tuple[Path, Path | None]:
    import torch

    from synth_pipelines.core.imagesets.stylegan2 import StyleGAN2Generator

    torch.manual_seed(0)
    gan = StyleGAN2Generator(32, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16, 32: 16})
    gan_path = folder / "tiny_stylegan2.pt"
    torch.save({"g_ema": gan.state_dict(), "latent_avg": gan.mean_latent(512)}, gan_path)
    try:
        from tests.tiny_models import build_tiny_text_to_image_pipeline
    except ImportError:  # run outside the repository root
        return gan_path, None
    return gan_path, build_tiny_text_to_image_pipeline(folder / "tiny_sd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="images per simulation run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (best is shown)")
    parser.add_argument("--model-count", type=int, default=32, help="images per model row")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cores", type=int, default=1, help="CPUs to pin to (0: all)")
    parser.add_argument("--device", default=None, help="torch device for the model rows")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    import torch

    if args.cores:
        torch.set_num_threads(args.cores)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")

    from synth_pipelines.core.imagesets.generate import build_generator

    scenes = bench_profile(args.size, faces=False)
    faces = bench_profile(args.size, faces=True)
    px = f"@ {args.size}px"
    rows = [
        _row(f"scene render only {px}", bench_scene_render(args.count, args.size, args.repeats)),
        _row(
            f"simulation scenes {px}, PNG",
            rate(build_generator("simulation"), scenes, args.count, args.repeats),
        ),
        _row(
            f"simulation scenes {px}, JPEG",
            rate(
                build_generator("simulation", image_format="jpeg"), scenes, args.count, args.repeats
            ),
            ">= 50",
        ),
        _row(
            f"simulation faces {px}, PNG",
            rate(build_generator("simulation"), faces, args.count, args.repeats),
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="synth_bench_gen_") as folder:
        gan_path, sd_path = _tiny_checkpoints(Path(folder))
        gan = build_generator("gan", checkpoint_path=str(gan_path), device=device, batch_size=16)
        tiny = bench_profile(32, False)
        rows.append(_row(f"gan tiny (32px StyleGAN2, {device})", rate(gan, tiny, args.model_count)))
        if sd_path is not None:
            diffusion = build_generator(
                "diffusion",
                checkpoint_path=str(sd_path),
                device=device,
                num_inference_steps=2,
                size=64,
                batch_size=8,
            )
            small = bench_profile(64, False)
            rows.append(
                _row(
                    f"diffusion tiny (64px, 2 steps, {device})",
                    rate(diffusion, small, args.model_count),
                )
            )
    cores = f"{args.cores} core(s)" if args.cores else "all cores"
    print(f"image set generation, {cores}, best of {args.repeats} runs — {cpu_description()}")
    width = max(len(r[0]) for r in rows)
    print(f"{'backend':<{width}}  {'images/s':>9}  {'per CPU s':>9}  target")
    for name, wall, cpu, target in rows:
        print(f"{name:<{width}}  {wall:>9}  {cpu:>9}  {target}")


if __name__ == "__main__":
    main()
