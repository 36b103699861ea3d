"""Flux benchmark: tiny-model training steps/s on CPU (gradient checkpointing on and off),
generation latency through the API with 1, 2 and 4 concurrent requests, and on a CUDA GPU a
full-size Flux.1 transformer (random init, bf16) with a rank-16 LoRA at 512 px: step time and
peak memory with and without gradient checkpointing. Prints markdown tables.

    python benchmarks/flux.py [--steps 30] [--requests 8] [--gpu-steps 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from synth_pipelines.core.cpus import cpu_description

sys.path.insert(0, str(Path(__file__).parent.parent))


def _images(n: int = 4, side: int = 64) -> list[tuple[bytes, str]]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pixels = (rng.random((side, side, 3)) * 255).astype("uint8")
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        out.append((buffer.getvalue(), f"a photo of [trigger], pose {i}"))
    return out


def tiny_training(steps: int, device: str = "cpu") -> None:
    """Our trainer (`train_flux_lora`) end to end on the tiny test pipeline: on CUDA this runs its
    bf16 and peak-memory paths."""
    import torch

    from synth_pipelines.core.flux.tiny_pipeline import build_tiny_flux_pipeline
    from synth_pipelines.core.flux.training import FluxLoraConfig, train_flux_lora

    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"## Training on {where}: tiny test Flux pipeline, 4 images of 64x64, {steps} steps\n")
    print("| gradient checkpointing | steps/s | caching s | total s | optimizer | dtype | "
          "peak memory GiB |\n|---|---|---|---|---|---|---|")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_flux_pipeline(Path(tmp) / "tiny")
        for checkpointing in (True, False):
            config = FluxLoraConfig(
                max_steps=steps,
                gradient_checkpointing=checkpointing,
                checkpoint_every=0,
                trigger_word="sks",
                device=device,
            )
            result = train_flux_lora(base, _images(), config, Path(tmp) / f"out-{checkpointing}")
            assert result.lora_path.exists() and result.device.startswith(device)
            print(f"| {'on' if checkpointing else 'off'} | {result.steps_per_s:.1f} | "
                  f"{result.cache_seconds:.2f} | {result.seconds:.2f} | {result.optimizer} | "
                  f"{result.dtype} | {result.peak_memory_gib or '-'} |")  # fmt: skip
    print()


def concurrent_generation(requests: int) -> None:
    """A trained tiny LoRA served by the API; `requests` generations sent by 1, 2 and 4 users."""
    import httpx

    from synth_pipelines.api.app import create_app
    from synth_pipelines.api.server import running_server
    from synth_pipelines.core.flux.demo_photos import subject_photos
    from synth_pipelines.core.flux.pipeline import lora_step, photos_step
    from synth_pipelines.core.flux.subjects import create_subject
    from synth_pipelines.core.security.accounts import authenticate, create_api_key
    from synth_pipelines.core.security.crypto import generate_master_key, keyring_from_env
    from synth_pipelines.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        os.environ.update(
            SYNTH_HOME=home,
            SYNTH_MASTER_KEY=generate_master_key(),
            SYNTH_FLUX_BASE_MODEL="tiny-test",
            SYNTH_FLUX_SAMPLE_SIZE="64",
        )
        settings = Settings.from_env()
        from synth_pipelines.api.app import build_store
        from synth_pipelines.core.flux.pipeline import resolve_flux_model
        from synth_pipelines.core.storage.database import FactoryDatabase

        db = FactoryDatabase(settings.database_url)
        db.upgrade()
        store, keys = build_store(settings), keyring_from_env()
        token = create_api_key(db, "bench", "owner")
        owner = authenticate(db, token)
        subject = create_subject(
            db, store, keys, owner, list(subject_photos().items()), "sks", True
        )
        photos_step(db, store, keys, subject.id, "a photo of [trigger]")
        base = resolve_flux_model("tiny-test", settings.home)
        lora_step(db, store, keys, subject.id, base, {"max_steps": 5}, settings.home, resolution=64)
        print(
            "## Generation through the API: tiny LoRA, 64x64, 4 steps, SYNTH_FLUX_CONCURRENCY=1\n"
        )
        print("| concurrent users | requests | p50 latency s | max latency s | images/s |")
        print("|---|---|---|---|---|")
        with running_server(create_app(settings)) as url:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
            client.post(f"/subjects/{subject.id}/generate", json={"prompt": "warm-up"})
            for users in (1, 2, 4):
                latencies: list[float] = []
                lock = threading.Lock()

                def user(count: int, seed0: int, latencies: list, lock: threading.Lock) -> None:
                    with httpx.Client(
                        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600
                    ) as http:
                        for k in range(count):
                            started = time.perf_counter()
                            http.post(
                                f"/subjects/{subject.id}/generate",
                                json={"prompt": "[trigger] smiling", "seed": seed0 + k},
                            ).raise_for_status()
                            with lock:
                                latencies.append(time.perf_counter() - started)

                per_user = max(1, requests // users)
                threads = [
                    threading.Thread(target=user, args=(per_user, 100 * u, latencies, lock))
                    for u in range(users)
                ]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - started
                print(f"| {users} | {len(latencies)} | {statistics.median(latencies):.3f} | "
                      f"{max(latencies):.3f} | {len(latencies) / wall:.1f} |")  # fmt: skip
    print()


def gpu_training(steps: int, checkpointing: list[str], cudnn_attention: bool) -> None:
    import torch

    if not torch.cuda.is_available():
        print("## Full-size Flux.1 transformer on CUDA\n\nskipped: no CUDA device here\n")
        return
    name = torch.cuda.get_device_name()
    print(f"## Full-size Flux.1 transformer (random init, bf16) on {name}: LoRA rank 16, 512 px\n")
    print("| gradient checkpointing | s/step | peak memory GiB |\n|---|---|---|")
    for label in checkpointing:
        try:
            seconds, peak = _full_size_steps(steps, label == "on", cudnn_attention)
        except torch.cuda.OutOfMemoryError:
            total = torch.cuda.get_device_properties(0).total_memory / 2**30
            print(f"| {label} | out of memory | > {total:.0f} |")
        else:
            print(f"| {label} | {seconds:.3f} | {peak:.1f} |")
        torch.cuda.empty_cache()
    print(
        "\nPublished: diffusers' DreamBooth LoRA Flux README notes rank-16 LoRA can exceed 40 GB "
        "without memory optimisations; kohya sd-scripts trains Flux LoRA in 24 GB at batch 2.\n"
    )


def _full_size_steps(steps: int, checkpointing: bool, cudnn_attention: bool) -> tuple[float, float]:
    """Median seconds per LoRA step (after a first, warm-up step) and peak GiB allocated, with
    the attention backends `train_flux_lora` uses (or PyTorch's defaults, cuDNN included)."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig

    from synth_pipelines.core.flux.training import training_attention

    device = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats()
    # FluxTransformer2DModel's defaults are Flux.1's dimensions (19 + 38 blocks, 3072 wide).
    # Built on the GPU in bf16 (an fp32 copy would be 48 GB, and its CPU init takes minutes).
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with device:
            transformer = FluxTransformer2DModel(guidance_embeds=True)
    finally:
        torch.set_default_dtype(previous)
    transformer.requires_grad_(False)
    transformer.add_adapter(
        LoraConfig(r=16, lora_alpha=16, target_modules=["to_k", "to_q", "to_v", "to_out.0"])
    )
    for param in transformer.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    if checkpointing:
        transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    latents = torch.randn(1, 16, 64, 64, device=device, dtype=torch.bfloat16)
    packed = FluxPipeline._pack_latents(latents, 1, 16, 64, 64)
    image_ids = FluxPipeline._prepare_latent_image_ids(1, 32, 32, device, torch.bfloat16)
    text = torch.randn(1, 512, 4096, device=device, dtype=torch.bfloat16)
    pooled = torch.randn(1, 768, device=device, dtype=torch.bfloat16)
    text_ids = torch.zeros(512, 3, device=device, dtype=torch.bfloat16)
    times = []
    attention = contextlib.nullcontext() if cudnn_attention else training_attention()
    with attention:
        for step in range(steps + 1):
            torch.cuda.synchronize()
            started = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = transformer(
                    hidden_states=packed,
                    timestep=torch.full((1,), 0.5, device=device),
                    guidance=torch.full((1,), 3.5, device=device),
                    pooled_projections=pooled,
                    encoder_hidden_states=text,
                    txt_ids=text_ids,
                    img_ids=image_ids,
                    return_dict=False,
                )[0]
            loss = out.float().pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            if step:  # the first step pays for allocation and kernel selection
                times.append(time.perf_counter() - started)
    return statistics.median(times), torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--gpu-steps", type=int, default=5)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["cpu", "generation", "gpu-tiny", "gpu-full"]
    )
    parser.add_argument(
        "--checkpointing", nargs="*", default=["on", "off"], choices=["on", "off"],
        help="full-size rows to run: gradient checkpointing on and/or off",
    )  # fmt: skip
    parser.add_argument(
        "--cudnn-attention", action="store_true",
        help="full-size rows with PyTorch's default attention backends, cuDNN included (its "
        "backward crashed on PyTorch 2.11/CUDA 13), not the ones train_flux_lora uses",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"# flux benchmark, {date.today()}, "
          f"{cpu_description()}\n")  # fmt: skip
    if "cpu" not in args.skip:
        tiny_training(args.steps)
    if "generation" not in args.skip:
        concurrent_generation(args.requests)
    if "gpu-tiny" not in args.skip:
        import torch

        if torch.cuda.is_available():
            tiny_training(args.steps, "cuda")
    if "gpu-full" not in args.skip:
        gpu_training(args.gpu_steps, args.checkpointing, args.cudnn_attention)


if __name__ == "__main__":
    main()
