"""`synth flux`: generate images of a subject's Flux LoRA through the API."""

from __future__ import annotations

from pathlib import Path

import typer

from synth_pipelines.cli.common import API_OPTION, _fail, console

flux_app = typer.Typer(help="Flux LoRAs of subjects: generate images.", no_args_is_help=True)


@flux_app.command("generate")
def flux_generate(
    subject: str = typer.Argument(..., help="The subject's id."),
    prompt: str = typer.Argument(..., help="What to draw; [trigger] stands for the subject."),
    n: int = typer.Option(1, min=1, help="Images to draw."),
    seed: int = typer.Option(0, min=0, help="Seed of the first image."),
    steps: int = typer.Option(None, min=1, max=100, help="Inference steps (default: setting)."),
    out: Path = typer.Option(Path("."), help="Folder for the PNG files."),
    api: str = API_OPTION,
    api_key: str = typer.Option(
        ..., envvar="SYNTH_API_KEY", help="Your API key (or SYNTH_API_KEY).", show_default=False
    ),
) -> None:
    """Generate images of a subject through the API and save them as PNG files."""

    import httpx

    body = {"prompt": prompt, "n": n, "seed": seed, **({"steps": steps} if steps else {})}
    try:
        response = httpx.post(
            f"{api.rstrip('/')}/subjects/{subject}/generate",
            json=body,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=3600,
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the API at {api}: {exc}")
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        _fail(f"HTTP {response.status_code}: {detail}")
    result = response.json()
    stem = f"{subject[:8]}-v{result['lora_version']}-seed{seed}"
    for path in _save_images(result["images"], out, stem):
        console.print(str(path))
    console.print(
        f"{len(result['images'])} image(s) in {result['seconds']:.2f} s "
        f"(queued {result['queue_seconds']:.2f} s)"
    )


def _save_images(images: list[str], out: Path, stem: str) -> list[Path]:
    """Base64 PNGs from the API as `<stem>-<i>.png` files in `out`."""
    import base64

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = out / f"{stem}-{i}.png"
        path.write_bytes(base64.b64decode(image))
        paths.append(path)
    return paths
