"""The flow-matching loss of diffusers' `train_dreambooth_lora_flux.py`, on cached latents and
prompt embeddings, with every random draw of a step seeded by (seed, step)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from synth_pipelines.core.flux.training_config import TrainingPlan
from synth_pipelines.core.flux.training_set import TrainingSet, batch_indices


def step_generator(seed: int, micro_step: int) -> torch.Generator:
    """The CPU generator of one micro-step: resuming needs no data-loader state, and CPU and
    CUDA runs draw the same numbers."""
    state = np.random.SeedSequence([seed, micro_step]).generate_state(1, np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state) >> 1)


class FlowMatchingLoss:
    """loss(transformer, micro_step): sample a batch, a latent from each cached posterior,
    noise and timesteps (uniform or `weighting_scheme`), noise the latents along the straight
    path z_t = (1 - sigma) x + sigma * noise, and regress the packed transformer output onto
    the velocity noise - x, weighted as in SD3."""

    def __init__(
        self, plan: TrainingPlan, data: TrainingSet, scheduler_config: Any, vae_scale: int
    ):
        from diffusers import FlowMatchEulerDiscreteScheduler

        # Our own scheduler, as configured: sampling's set_timesteps never touches it.
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
        self.timesteps, self.sigmas = scheduler.timesteps.clone(), scheduler.sigmas.clone()
        self.num_train_timesteps = scheduler.config.num_train_timesteps
        self.plan, self.data, self.vae_scale = plan, data, vae_scale

    def _batch(self, indices: list[int], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        config, data, device = self.plan.config, self.data, self.plan.device
        latents, prompts = [], []
        for index in indices:
            side = int(torch.randint(2, (1,), generator=generator)) if config.random_flip else 0
            mean, std = data.latent_mean[index][side], data.latent_std[index][side]
            noise = torch.randn(mean.shape, generator=generator).to(device)
            latents.append(mean + std * noise)  # a fresh sample of the cached posterior
            dropped = config.caption_dropout and (
                torch.rand(1, generator=generator).item() < config.caption_dropout
            )
            prompts.append("" if dropped else data.captions[index])
        embeds = torch.cat([data.embeddings[p].prompt_embeds for p in prompts])
        pooled = torch.cat([data.embeddings[p].pooled_prompt_embeds for p in prompts])
        return torch.stack(latents).to(self.plan.dtype), embeds, pooled

    def __call__(self, transformer: Any, micro_step: int) -> torch.Tensor:
        from diffusers import FluxPipeline
        from diffusers.training_utils import (
            compute_density_for_timestep_sampling,
            compute_loss_weighting_for_sd3,
        )

        config, device, dtype = self.plan.config, self.plan.device, self.plan.dtype
        generator = step_generator(config.seed, micro_step)
        indices = batch_indices(micro_step, self.data.sizes, config.batch_size, config.seed)
        model_input, prompt_embeds, pooled = self._batch(indices, generator)
        bsz, channels, height, width = model_input.shape
        noise = torch.randn(model_input.shape, generator=generator).to(device, dtype)
        u = compute_density_for_timestep_sampling(
            weighting_scheme=config.weighting_scheme,
            batch_size=bsz,
            logit_mean=config.logit_mean,
            logit_std=config.logit_std,
            mode_scale=config.mode_scale,
            generator=generator,
        )
        t_indices = (u * self.num_train_timesteps).long()
        timesteps = self.timesteps[t_indices].to(device)
        sigmas = self.sigmas[t_indices].to(device, dtype).view(-1, 1, 1, 1)
        noisy = (1.0 - sigmas) * model_input + sigmas * noise
        packed = FluxPipeline._pack_latents(noisy, bsz, channels, height, width)
        image_ids = FluxPipeline._prepare_latent_image_ids(
            bsz, height // 2, width // 2, device, dtype
        )
        guidance = None
        if self.plan.guidance_embeds:
            guidance = torch.full((bsz,), config.guidance_scale, device=device)
        autocast = (
            torch.autocast(device.type, dtype=dtype)
            if device.type == "cuda" and dtype != torch.float32
            else contextlib.nullcontext()
        )
        with autocast:
            prediction = transformer(
                hidden_states=packed,
                timestep=timesteps / 1000,
                guidance=guidance,
                pooled_projections=pooled,
                encoder_hidden_states=prompt_embeds,
                txt_ids=self.data.text_ids,
                img_ids=image_ids,
                return_dict=False,
            )[0]
        prediction = FluxPipeline._unpack_latents(
            prediction, height * self.vae_scale, width * self.vae_scale, self.vae_scale
        )
        weighting = compute_loss_weighting_for_sd3(config.weighting_scheme, sigmas=sigmas)
        target = noise - model_input
        squared = weighting.float() * (prediction.float() - target.float()) ** 2
        return squared.reshape(bsz, -1).mean(1).mean()
