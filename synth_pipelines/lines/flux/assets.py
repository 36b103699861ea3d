"""Flux LoRAs: subject_photos → flux_lora → flux_lora_samples, one partition per subject.

Thin assets over `core.flux`: photos and LoRAs stay encrypted in the object store; the metadata
holds counts, reasons, settings, losses and (unless SYNTH_FLUX_SAMPLES_IN_METADATA=false) small
sample thumbnails.
"""

import dagster as dg

from synth_pipelines.core.checks.names import FLUX_IDENTITY, PROMPT_RELEVANCE
from synth_pipelines.core.checks.outcome import ERROR, WARN
from synth_pipelines.core.markdown_images import png_markdown, thumbnail_png
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.execution import GPU_STEP_TAGS
from synth_pipelines.lines.run_config import env_default
from synth_pipelines.partitions import subjects
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.keys import MasterKeyResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.settings import FluxSettings, Settings

SAMPLES = "flux_lora_samples"


def _thumbnails(pngs: list[bytes], prompts: list[str], side: int = 128) -> str:
    return "\n\n".join(
        f"{png_markdown(thumbnail_png(png, side), prompt)} {prompt}"
        for png, prompt in zip(pngs, prompts, strict=True)
    )


def flux_lora_config(flux: FluxSettings) -> type[dg.Config]:
    """The run config of flux_lora, its defaults those of `flux` (the environment)."""

    class FluxLoraRunConfig(dg.Config):
        """Per-run training knobs of one subject's LoRA; the rest comes from SYNTH_FLUX_*."""

        train_steps: int = env_default(flux, "train_steps", "Training steps of this LoRA.")
        rank: int = env_default(flux, "rank", "LoRA rank (alpha stays SYNTH_FLUX_ALPHA).")

    return FluxLoraRunConfig


def build_flux_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The three Flux assets, configured from `settings`; flux_lora's steps and rank also by
    run config."""
    FluxLoraRunConfig = flux_lora_config(settings.flux)

    @dg.asset(
        partitions_def=subjects,
        group_name="flux",
        owners=["team:synth-flux"],
        tags={"domain": "flux"},
        kinds={"python"},
        description=(
            "A subject's uploads: decoded with EXIF orientation, exactly one face each (dlib), "
            "cropped with margin, sorted into aspect buckets (512/768/1024), near-duplicates "
            "dropped, captioned with the trigger word, stored encrypted. Fewer than 4 usable "
            "photos fail the subject with every rejected photo and why."
        ),
    )
    def subject_photos(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        master_key: MasterKeyResource,
    ) -> dg.MaterializeResult:
        from synth_pipelines.core.flux.pipeline import photos_step

        summary = photos_step(
            factory_db.get_db(),
            object_store.get_store(),
            master_key.get_keys(),
            context.partition_key,
            settings.flux.caption_template,
            settings.flux.caption_model,
        )
        rejected = "\n".join(f"- {r['name']}: {r['reason']}" for r in summary.rejected)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(summary.photos_sha256),
            metadata={
                "uploaded": summary.uploaded,
                "accepted": summary.accepted,
                "rejected": dg.MetadataValue.md(rejected or "none"),
                "buckets": dg.MetadataValue.json(summary.buckets),
                "captions": (
                    settings.flux.caption_model or f"template: {settings.flux.caption_template}"
                ),
            },
        )

    @dg.asset(
        partitions_def=subjects,
        group_name="flux",
        owners=["team:synth-flux"],
        tags={"domain": "flux"},
        kinds={"pytorch"},
        deps=[subject_photos],
        pool="gpu",
        op_tags=GPU_STEP_TAGS,  # its Celery task goes to the gpu queue
        description=(
            "A peft LoRA on the Flux transformer at SYNTH_FLUX_BASE_MODEL: flow-matching loss on "
            "packed latents, VAE latents and text embeddings cached once, gradient checkpointing, "
            "8-bit Adam with bitsandbytes, bf16 on CUDA, checkpoints to resume from; saved as "
            "diffusers safetensors (pipe.load_lora_weights), encrypted, in the registry."
        ),
    )
    def flux_lora(
        context: dg.AssetExecutionContext,
        config: FluxLoraRunConfig,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        master_key: MasterKeyResource,
    ) -> dg.MaterializeResult:
        from synth_pipelines.core.flux.pipeline import lora_step, resolve_flux_model
        from synth_pipelines.core.flux.policy import ContentPolicy

        steps = config.train_steps
        policy = ContentPolicy.from_text(settings.flux.deny_terms)
        # Samples during training obey the content policy too.
        prompts = [p for p in settings.flux.validation_prompts if not policy.violation(p)]
        every = max(1, steps // 10)

        def on_log(event: dict) -> None:
            step = event.get("step", 0)
            if "loss" in event and (step % every == 0 or step == steps):
                context.log.info(f"step {step}/{steps}: loss {event['loss']:.4f}")

        trained = lora_step(
            factory_db.get_db(),
            object_store.get_store(),
            master_key.get_keys(),
            context.partition_key,
            resolve_flux_model(settings.flux.base_model, settings.home),
            {
                "rank": config.rank,
                "alpha": settings.flux.alpha,
                "target_modules": list(settings.flux.target_modules),
                "learning_rate": settings.flux.learning_rate,
                "max_steps": steps,
                "checkpoint_every": settings.flux.checkpoint_every,
                "sample_every": settings.flux.sample_every,
                "sample_steps": settings.flux.sample_steps,
                "sample_width": settings.flux.sample_size,
                "sample_height": settings.flux.sample_size,
                "validation_prompts": prompts,
            },
            settings.home,
            run_id=context.run_id,
            on_log=on_log,
            resolution=settings.flux.resolution,
        )
        metrics, losses = trained.metrics, trained.losses
        stride = max(1, len(losses) // 50)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{trained.photos_sha256}:{trained.version}"),
            metadata={
                "version": trained.version,
                "lora_id": trained.id,
                "base_model": trained.base_model,
                "steps": metrics["steps"],
                "final_loss": metrics["final_loss"],
                "steps_per_s": metrics["steps_per_s"],
                "optimizer": metrics["optimizer"],
                "resumed_from_step": metrics["resumed_from_step"] or 0,
                "trainable_params": metrics["trainable_params"],
                "loss_curve": dg.MetadataValue.json(
                    {str(i + 1): round(v, 5) for i, v in enumerate(losses) if i % stride == 0}
                ),
                "hyperparameters": dg.MetadataValue.json(trained.hyperparameters),
            },
        )

    check_specs = [
        dg.AssetCheckSpec(
            FLUX_IDENTITY,
            asset=SAMPLES,
            description=(
                "Mean dlib distance of the samples' faces to the subject's photos is below "
                "SYNTH_FLUX_IDENTITY_THRESHOLD (reported only on the tiny test pipeline)"
            ),
        )
    ]
    if settings.flux.clip_model:
        check_specs.append(
            dg.AssetCheckSpec(
                PROMPT_RELEVANCE,
                asset=SAMPLES,
                description="CLIP score of each sample against its prompt (SYNTH_CLIP_MODEL)",
            )
        )

    @dg.asset(
        name=SAMPLES,
        partitions_def=subjects,
        group_name="flux",
        owners=["team:synth-flux"],
        tags={"domain": "flux"},
        kinds={"pytorch"},
        deps=[flux_lora],
        pool="gpu",
        op_tags=GPU_STEP_TAGS,  # its Celery task goes to the gpu queue
        check_specs=check_specs,
        description=(
            "The validation prompts rendered with the newest LoRA (those the content policy "
            "allows), stored encrypted and shown here; identity and prompt-relevance checks."
        ),
    )
    def flux_lora_samples(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        master_key: MasterKeyResource,
    ):
        from synth_pipelines.core.flux.pipeline import TINY_TEST_MODEL, resolve_flux_model
        from synth_pipelines.core.flux.policy import ContentPolicy
        from synth_pipelines.core.flux.samples import samples_step

        # On the random tiny pipeline there is no likeness to find: report, do not alarm.
        tiny = settings.flux.base_model == TINY_TEST_MODEL
        report = samples_step(
            factory_db.get_db(),
            object_store.get_store(),
            master_key.get_keys(),
            context.partition_key,
            resolve_flux_model(settings.flux.base_model, settings.home),
            settings.flux.validation_prompts,
            settings.flux.sample_steps,
            settings.flux.identity_threshold,
            ContentPolicy.from_text(settings.flux.deny_terms),
            settings.flux.clip_model,
            size=settings.flux.sample_size,
            identity_severity=WARN if tiny else ERROR,
        )
        metadata: dict = {
            "lora_version": report.lora_version,
            "samples": len(report.pngs),
            "prompts": dg.MetadataValue.json(report.prompts),
            "refused_prompts": dg.MetadataValue.json(report.refused),
            "intermediate_samples_by_step": dg.MetadataValue.json(report.intermediate),
            "identity_mean_distance": report.identity.metadata.get("mean_distance"),
            "prompt_relevance": (
                report.clip_skipped
                if report.clip_scores is None
                else dg.MetadataValue.json([round(s, 2) for s in report.clip_scores])
            ),
        }
        if settings.flux.samples_in_metadata and report.pngs:
            metadata["preview"] = dg.MetadataValue.md(_thumbnails(report.pngs, report.prompts))
        yield dg.MaterializeResult(asset_key=SAMPLES, metadata=metadata)
        yield check_result(SAMPLES, report.identity)
        if report.prompt_relevance is not None:
            yield check_result(SAMPLES, report.prompt_relevance)

    return [subject_photos, flux_lora, flux_lora_samples]
