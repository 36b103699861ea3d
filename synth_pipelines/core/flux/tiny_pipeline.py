"""A tiny, randomly initialised FluxPipeline built offline from configs, for tests and demos.

It is saved like a real Flux.1 directory (model_index.json plus one folder per component), so
`FluxPipeline.from_pretrained(path)` loads it through the same code path as [schnell]/[dev].
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

README = """# TEST MODEL — tiny, random-init

A FluxPipeline with randomly initialised weights (seed {seed}), built from configs by
`synth_pipelines.core.flux.tiny_pipeline.build_tiny_flux_pipeline`. It draws noise-like images
in milliseconds and exists only to exercise the real Flux training and generation code paths.
It is NOT a usable image model.

- transformer: FluxTransformer2DModel, 1 double + 1 single block, 2 heads of 16, no guidance
  embeddings (schnell-like)
- vae: AutoencoderKL, 4 latent channels, 8x downsampling (a 64x64 image is an 8x8 latent)
- text_encoder / tokenizer: CLIPTextModel (hidden 32) with a byte-level vocabulary
- text_encoder_2 / tokenizer_2: T5EncoderModel (d_model 32) with a character-level unigram vocab
- scheduler: FlowMatchEulerDiscreteScheduler (shift 1.0, as schnell)
"""


def tiny_clip_tokenizer() -> Any:
    """A CLIPTokenizer over the byte-level alphabet (every text tokenizes), built without files."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in alphabet:
            vocab[char + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_t5_tokenizer() -> Any:
    """A T5 (unigram) tokenizer over single characters, with and without the word marker."""
    from transformers import T5Tokenizer

    chars = string.ascii_letters + string.digits + string.punctuation
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + char, -3.0) for char in chars]
    vocab += [(char, -4.0) for char in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_vae(**options: Any) -> Any:
    """A tiny AutoencoderKL with four blocks: 8x downsampling like the real ones, so a 64x64
    image is an 8x8 latent of 4 channels. `options` are further AutoencoderKL settings."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=64,
        **options,
    )


def tiny_clip_text_encoder(vocab_size: int) -> Any:
    """A tiny CLIPTextModel (2 layers, hidden 32) for `tiny_clip_tokenizer`-style vocabularies."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=vocab_size,
            projection_dim=32,
            layer_norm_eps=1e-5,
        )
    )


def build_tiny_flux_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny random FluxPipeline (a few MB) to `path` and return `path`.

    The weights depend only on `seed`. A 64x64 image (an 8x8 latent, 16 packed tokens) takes
    4 steps in about 0.1 s on CPU. The directory carries a README saying it is a test model.
    """
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    path = Path(path)
    clip_tokenizer, t5_tokenizer = tiny_clip_tokenizer(), tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # in_channels = 4 VAE latent channels x a 2x2 patch; sum(axes_dims_rope) = head dim.
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            guidance_embeds=False,
            axes_dims_rope=(4, 6, 6),
        )
        # Flux's VAE has no quant convs, and its own latent shift and scale.
        vae = tiny_vae(
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        )
        text_encoder = tiny_clip_text_encoder(len(clip_tokenizer))
        text_encoder_2 = T5EncoderModel(
            T5Config(
                vocab_size=len(t5_tokenizer),
                d_model=32,
                d_kv=8,
                d_ff=37,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            )
        )
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    pipeline = FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
    pipeline.save_pretrained(path)
    (path / "README.md").write_text(README.format(seed=seed), encoding="utf-8")
    return path
