"""Tiny randomly initialised models built offline from configs, to test the real code paths."""

from __future__ import annotations

from pathlib import Path

from synth_pipelines.core.flux.tiny_pipeline import (
    tiny_clip_text_encoder,
    tiny_clip_tokenizer,
    tiny_vae,
)


def build_tiny_text_to_image_pipeline(path: str | Path) -> Path:
    """Save a tiny random StableDiffusionPipeline (~7 MB) to `path` and return it.

    It loads back with `DiffusionPipeline.from_pretrained(path)` and draws a 64x64 image in
    2 steps in well under a second on CPU. Weights are random but the same on every call.
    """
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=32,
        )
        vae = tiny_vae()  # 8x downsampling like real SD: a 64 px image is an 8x8 latent
        text_encoder = tiny_clip_text_encoder(vocab_size=1000)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(path)
    return path


def build_tiny_clip(path: str | Path) -> Path:
    """Save a tiny random CLIP model + processor (~1 MB) that `CLIPModel.from_pretrained` and
    `CLIPProcessor.from_pretrained` load, for the prompt-relevance check's real loading path."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPVisionConfig,
    )

    path = Path(path)
    tokenizer = tiny_clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPModel(
            CLIPConfig(
                text_config=CLIPTextConfig(
                    vocab_size=len(tokenizer),
                    hidden_size=32,
                    intermediate_size=37,
                    num_hidden_layers=1,
                    num_attention_heads=2,
                    max_position_embeddings=77,
                    bos_token_id=0,
                    eos_token_id=1,
                    pad_token_id=1,
                ).to_dict(),
                vision_config=CLIPVisionConfig(
                    hidden_size=32,
                    intermediate_size=37,
                    num_hidden_layers=1,
                    num_attention_heads=2,
                    image_size=32,
                    patch_size=8,
                ).to_dict(),
                projection_dim=16,
            )
        )
    model.save_pretrained(path)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def build_tiny_inception(folder: str | Path, width: int = 64) -> Path:
    """A randomly initialised stand-in for NVIDIA's TorchScript Inception, saved as
    `<folder>/inception-2015-12-05.pt` and called the way FID calls that file:
    `model(float N x 3 x 299 x 299 in 0..255, return_features=True)` -> N x `width` features
    (the real one gives 2048). Loaded through the same `torch.jit.load` path."""
    import torch
    from torch import nn

    class TinyInception(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, width),
            )  # fmt: skip
            self.head = nn.Linear(width, 1008)

        def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            features = self.layers(img / 128.0 - 1.0)
            return features if return_features else self.head(features)

    torch.manual_seed(0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inception-2015-12-05.pt"
    torch.jit.script(TinyInception().eval()).save(str(path))
    return path
