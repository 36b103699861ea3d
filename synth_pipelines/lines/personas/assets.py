"""Persona adapters: persona_corpus → persona_dataset → persona_adapter, one partition per persona.

The assets are thin: they read resources, call `core.persona.pipeline`, and report counts,
hashes and metrics. Nothing they return or log holds the person's text.
"""

import dagster as dg

from synth_pipelines.core.checks.names import PERPLEXITY, PII_LEAKAGE, STYLE_SIMILARITY
from synth_pipelines.core.checks.outcome import ERROR
from synth_pipelines.core.checks.personas import SEVERITY
from synth_pipelines.core.persona.adapter_store import resolve_base_model
from synth_pipelines.dbt_like_checks.results import check_result
from synth_pipelines.execution import GPU_STEP_TAGS
from synth_pipelines.lines.run_config import env_default
from synth_pipelines.partitions import personas
from synth_pipelines.resources.database import FactoryDatabaseResource
from synth_pipelines.resources.keys import MasterKeyResource
from synth_pipelines.resources.object_store import ObjectStoreResource
from synth_pipelines.resources.tabular import TextEmbedderResource
from synth_pipelines.settings import PersonaSettings, Settings

ADAPTER = "persona_adapter"
ADAPTER_CHECKS = {
    PERPLEXITY: "Validation perplexity of base+adapter is below the base model's",
    PII_LEAKAGE: "None of the sampled generations contains PII of the raw corpus (exact or fuzzy)",
    STYLE_SIMILARITY: (
        "Generations are closer (MiniLM) to the persona's held-out replies than the base model's"
    ),
}


def _md_table(rows: dict[str, object]) -> dg.MetadataValue:
    lines = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows.items())]
    return dg.MetadataValue.md("\n".join(lines))


def persona_adapter_config(personas: PersonaSettings) -> type[dg.Config]:
    """The run config of persona_adapter, its default that of `personas` (the environment)."""

    class PersonaAdapterRunConfig(dg.Config):
        """Per-run training knobs of one persona's adapter; the rest comes from SYNTH_PERSONA_*."""

        train_steps: int = env_default(personas, "train_steps", "Training steps of this adapter.")

    return PersonaAdapterRunConfig


def build_persona_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """The three persona assets, configured from `settings`; persona_adapter's training steps
    also by run config."""
    PersonaAdapterRunConfig = persona_adapter_config(settings.personas)

    @dg.asset(
        partitions_def=personas,
        group_name="personas",
        owners=["team:synth-personas"],
        tags={"domain": "personas"},
        kinds={"python"},
        description=(
            "A persona's uploads decrypted, parsed, anonymized (names, emails, phones, URLs, "
            "IPs, cards, IBANs, addresses) into deduplicated (context → reply) pairs, stored "
            "encrypted under the persona's key. Checks consent first."
        ),
    )
    def persona_corpus(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        master_key: MasterKeyResource,
    ) -> dg.MaterializeResult:
        from synth_pipelines.core.persona.pipeline import corpus_step

        summary = corpus_step(
            factory_db.get_db(),
            object_store.get_store(),
            master_key.get_keys(),
            context.partition_key,
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(summary.sha256),
            metadata={
                "corpus_sha256": summary.sha256,
                "consent_id": summary.consent_id,
                "sources": summary.sources,
                "messages": summary.messages,
                "persona_messages": summary.persona_messages,
                "pairs": summary.pairs,
                "duplicates_dropped": summary.duplicates,
                "pii_replaced": _md_table(summary.pii_replaced),
                "object_key": dg.MetadataValue.path(summary.object_key),
            },
        )

    @dg.asset(
        partitions_def=personas,
        group_name="personas",
        owners=["team:synth-personas"],
        tags={"domain": "personas"},
        kinds={"python"},
        deps=[persona_corpus],
        description=(
            "The corpus tokenized with the base model's tokenizer (reply tokens only in the "
            "loss) and split train/validation by a seeded hash; stored encrypted."
        ),
    )
    def persona_dataset(
        context: dg.AssetExecutionContext,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        master_key: MasterKeyResource,
    ) -> dg.MaterializeResult:
        from synth_pipelines.core.persona.pipeline import dataset_step

        base_model = resolve_base_model(settings.personas.base_model, settings.home)
        summary = dataset_step(
            factory_db.get_db(),
            object_store.get_store(),
            master_key.get_keys(),
            context.partition_key,
            base_model,
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(summary.corpus_sha256),
            metadata={
                "corpus_sha256": summary.corpus_sha256,
                **summary.counts,
                "base_model": str(base_model),
                "object_key": dg.MetadataValue.path(summary.object_key),
            },
        )

    @dg.asset(
        name=ADAPTER,
        partitions_def=personas,
        group_name="personas",
        owners=["team:synth-personas"],
        tags={"domain": "personas"},
        kinds={"pytorch"},
        deps=[persona_dataset],
        pool="gpu",
        op_tags=GPU_STEP_TAGS,  # its Celery task goes to the gpu queue
        check_specs=[
            dg.AssetCheckSpec(
                name, asset=ADAPTER, blocking=SEVERITY[name] == ERROR, description=description
            )
            for name, description in ADAPTER_CHECKS.items()
        ],
        description=(
            "A PEFT adapter (LoRA, or a Houlsby bottleneck adapter) of the persona's style on "
            "the base model at SYNTH_PERSONA_BASE_MODEL, seeded and resumable from checkpoints, "
            "registered with its corpus, consent, hyper-parameters and metrics. Served only "
            "when its blocking checks pass."
        ),
    )
    def persona_adapter(
        context: dg.AssetExecutionContext,
        config: PersonaAdapterRunConfig,
        factory_db: FactoryDatabaseResource,
        object_store: ObjectStoreResource,
        master_key: MasterKeyResource,
        text_embedder: TextEmbedderResource,
    ):
        from synth_pipelines.core.persona.pipeline import adapter_step

        base_model = resolve_base_model(settings.personas.base_model, settings.home)
        steps = config.train_steps
        every = max(1, steps // 10)

        def on_log(event: dict) -> None:
            if event.get("event") == "train" and (
                event["step"] % every == 0 or event["step"] == steps
            ):
                context.log.info(
                    f"step {event['step']}/{steps}: loss {event['loss']:.4f}, "
                    f"{event.get('tokens_per_s', 0):.0f} tokens/s"
                )
            elif event.get("event") == "eval":
                context.log.info(
                    f"step {event['step']}: validation perplexity {event['val_perplexity']:.2f}"
                )

        embedder = text_embedder.get_embedder()
        trained = adapter_step(
            factory_db.get_db(),
            object_store.get_store(),
            master_key.get_keys(),
            context.partition_key,
            base_model,
            {
                "method": settings.personas.method,
                "max_steps": steps,
                "checkpoint_every": max(1, steps // 5),
                "log_every": 1,
            },
            settings.home,
            settings.personas.samples,
            embedder,
            run_id=context.run_id,
            on_log=on_log,
        )
        metrics = trained.metrics
        yield dg.MaterializeResult(
            asset_key=ADAPTER,
            data_version=dg.DataVersion(f"{trained.corpus_sha256}:{trained.version}"),
            metadata={
                "version": trained.version,
                "adapter_id": trained.id,
                "method": trained.method,
                "base_model": trained.base_model,
                "corpus_sha256": trained.corpus_sha256,
                "consent_id": trained.consent_id,
                "servable": trained.servable,
                "steps": metrics["steps"],
                "val_perplexity": metrics["val_perplexity"],
                "base_val_perplexity": metrics["base_val_perplexity"],
                "tokens_per_s": metrics["tokens_per_s"],
                "trainable_params": metrics["trainable_params"],
                "resumed_from_step": metrics["resumed_from_step"] or 0,
                "hyperparameters": dg.MetadataValue.json(trained.hyperparameters),
            },
        )
        for outcome in trained.checks:
            yield check_result(ADAPTER, outcome)

    return [persona_corpus, persona_dataset, persona_adapter]
