"""The three steps of a persona's pipeline as plain functions (the assets call them):
corpus (decrypt, parse, anonymize, pair, dedup, encrypt) → dataset (tokenize, split, encrypt) →
adapter (train, evaluate, register). Each checks consent first and again before it records
anything, so a revocation mid-run leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from synth_pipelines.core.checks.outcome import CheckOutcome
from synth_pipelines.core.errors import ConflictError
from synth_pipelines.core.persona.adapter_store import save_adapter
from synth_pipelines.core.persona.corpus import (
    build_corpus,
    corpus_keys,
    load_corpus,
    save_corpus,
)
from synth_pipelines.core.persona.personas import data_key, load_persona, require_consent
from synth_pipelines.core.persona.revocation import persona_work_dir
from synth_pipelines.core.persona.sources import list_sources, persona_prefix
from synth_pipelines.core.security import audit
from synth_pipelines.core.security.crypto import KeyWrapper, decrypt, encrypt
from synth_pipelines.core.storage.database import FactoryDatabase
from synth_pipelines.core.storage.models import PersonaAdapter
from synth_pipelines.core.storage.object_store import ObjectStore

PIPELINE_ACTOR = "pipeline"


@dataclass(frozen=True)
class CorpusBuilt:
    """What persona_corpus reports: counts and hashes, never text."""

    sha256: str
    consent_id: str
    object_key: str
    sources: int
    messages: int
    persona_messages: int
    pairs: int
    duplicates: int
    pii_replaced: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__}


@dataclass(frozen=True)
class DatasetBuilt:
    """What persona_dataset reports."""

    corpus_sha256: str
    object_key: str
    counts: dict[str, int]  # train/val examples, train tokens, train target tokens

    def as_dict(self) -> dict[str, Any]:
        return {"corpus_sha256": self.corpus_sha256, "object_key": self.object_key, **self.counts}


@dataclass(frozen=True)
class AdapterTrained:
    """The adapter just registered and its checks; `servable` when every blocking one passed."""

    id: str
    version: int
    method: str
    base_model: str
    corpus_sha256: str
    consent_id: str
    servable: bool
    metrics: dict[str, Any]  # training and evaluation figures, as the registry row keeps them
    hyperparameters: dict[str, Any]
    checks: list[CheckOutcome]


def _persona(db: FactoryDatabase, keys: KeyWrapper, persona_id: str):
    with db.session() as session:
        persona = load_persona(session, None, persona_id)
        consent = require_consent(session, persona_id, "training")
        return persona, consent, data_key(persona, keys)


def corpus_step(
    db: FactoryDatabase, store: ObjectStore, keys: KeyWrapper, persona_id: str
) -> CorpusBuilt:
    """Build and store the persona's anonymized corpus; returns its summary (no text)."""
    persona, consent, key = _persona(db, keys, persona_id)
    sources = list_sources(db, persona_id)
    if not sources:
        raise ConflictError(f"persona {persona_id} has no uploaded sources")
    corpus = build_corpus(store, key, list(persona.self_ids), persona.display_name, sources)
    if not corpus.records:
        raise ConflictError(f"persona {persona_id}: the sources hold no persona replies to learn")
    object_key = save_corpus(store, key, persona_id, corpus)
    with (
        _discard_on_error(store, corpus_keys(persona_id, corpus.sha256)),
        db.session(locking=True) as session,
    ):
        require_consent(session, persona_id, "training")
        load_persona(session, None, persona_id).corpus_sha256 = corpus.sha256
        summary = CorpusBuilt(
            sha256=corpus.sha256,
            consent_id=consent.id,
            object_key=object_key,
            sources=len(sources),
            messages=corpus.stats.get("messages", 0),
            persona_messages=corpus.stats.get("persona_messages", 0),
            pairs=corpus.stats.get("pairs", 0),
            duplicates=corpus.stats.get("duplicates", 0),
            pii_replaced=dict(corpus.pii_found),
        )
        audit.append(
            session,
            PIPELINE_ACTOR,
            "corpus.built",
            persona_id=persona_id,
            details=summary.as_dict(),
        )
    return summary


@dataclass
class DatasetBundle:
    """The tokenized split and, for the checks, the validation turns and replies."""

    train: bytes
    val: bytes
    val_contexts: list[list[list[str]]]
    val_targets: list[str]
    corpus_sha256: str
    base_model: str
    max_length: int
    counts: dict[str, int] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body = {**self.__dict__}
        body["train"] = base64.b64encode(self.train).decode()
        body["val"] = base64.b64encode(self.val).decode()
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> DatasetBundle:
        body = json.loads(raw)
        body["train"] = base64.b64decode(body["train"])
        body["val"] = base64.b64decode(body["val"])
        return cls(**body)


def dataset_step(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    persona_id: str,
    base_model: Path,
    max_length: int = 256,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetBuilt:
    """Tokenize the newest corpus with the base model's tokenizer and split it; stored encrypted."""
    from transformers import AutoTokenizer

    from synth_pipelines.core.persona.dataset import (
        TrainingExample,
        split_examples,
        tokenize_examples,
    )

    persona, _, key = _persona(db, keys, persona_id)
    if not persona.corpus_sha256:
        raise ConflictError(f"persona {persona_id} has no corpus yet: materialize persona_corpus")
    records, _ = load_corpus(store, key, persona_id, persona.corpus_sha256)
    examples = [
        TrainingExample(tuple((s, t) for s, t in r["context"]), r["target"]) for r in records
    ]
    train, val = split_examples(examples, val_fraction=val_fraction, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    train_ds = tokenize_examples(train, tokenizer, max_length)
    val_ds = tokenize_examples(val, tokenizer, max_length)
    bundle = DatasetBundle(
        train=train_ds.to_bytes(),
        val=val_ds.to_bytes(),
        val_contexts=[[list(turn) for turn in ex.context] for ex in val],
        val_targets=[ex.target for ex in val],
        corpus_sha256=persona.corpus_sha256,
        base_model=str(base_model),
        max_length=max_length,
        counts={
            "train_examples": len(train),
            "val_examples": len(val),
            "train_tokens": int(sum(len(ids) for ids in train_ds.input_ids)),
            "train_target_tokens": int(train_ds.n_target_tokens),
        },
    )
    object_key = f"{persona_prefix(persona_id)}dataset/{persona.corpus_sha256}.json.enc"
    store.put_bytes(
        object_key, encrypt(key, bundle.to_bytes(), f"persona/{persona_id}/{object_key}")
    )
    with _discard_on_error(store, [object_key]), db.session(locking=True) as session:
        require_consent(session, persona_id, "training")
        load_persona(session, None, persona_id).dataset_key = object_key
        summary = DatasetBuilt(persona.corpus_sha256, object_key, dict(bundle.counts))
        audit.append(
            session,
            PIPELINE_ACTOR,
            "dataset.built",
            persona_id=persona_id,
            details=summary.as_dict(),
        )
    return summary


def load_dataset(store: ObjectStore, key: bytes, persona_id: str, object_key: str) -> DatasetBundle:
    raw = decrypt(key, store.get_bytes(object_key), f"persona/{persona_id}/{object_key}")
    return DatasetBundle.from_bytes(raw)


def adapter_step(
    db: FactoryDatabase,
    store: ObjectStore,
    keys: KeyWrapper,
    persona_id: str,
    base_model: Path,
    config: dict[str, Any],
    home: Path,
    samples: int,
    embedder: Callable[[list[str]], Any] | None,
    run_id: str | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> AdapterTrained:
    """Train an adapter on the newest dataset (resuming from a checkpoint of the same data and
    settings), evaluate it, store it encrypted and register it. The registry row's
    `metrics.checks_passed` says whether serving may use it."""
    from synth_pipelines.core.checks.personas import evaluate_adapter
    from synth_pipelines.core.persona.training import TrainConfig, train_adapter

    persona, consent, key = _persona(db, keys, persona_id)
    if not persona.dataset_key:
        raise ConflictError(f"persona {persona_id} has no dataset yet: materialize persona_dataset")
    bundle = load_dataset(store, key, persona_id, persona.dataset_key)
    _, pii = load_corpus(store, key, persona_id, bundle.corpus_sha256)
    train_config = TrainConfig.model_validate({"max_length": bundle.max_length, **config})
    work = persona_work_dir(home, persona_id)
    # Keyed by data and settings: a retry resumes, a changed setting starts afresh.
    fingerprint = hashlib.sha256(
        json.dumps(
            [bundle.corpus_sha256, str(base_model), train_config.model_dump(mode="json")]
        ).encode()
    ).hexdigest()[:16]
    checkpoints = work / f"checkpoints-{fingerprint}"
    with tempfile.TemporaryDirectory(dir=_mkdir(work)) as scratch:
        result = train_adapter(
            base_model,
            bundle.train,
            bundle.val,
            train_config,
            Path(scratch) / "adapter",
            checkpoint_dir=checkpoints,
            on_log=on_log,
        )
        outcomes = evaluate_adapter(result, base_model, bundle, pii, samples, embedder)
        passed = all(o.passed for o in outcomes if o.blocking)
        metrics = {
            "steps": result.steps,
            "final_train_loss": result.train_losses[-1] if result.train_losses else None,
            "base_val_perplexity": result.base_val_perplexity,
            "val_perplexity": result.val_perplexity,
            "tokens_per_s": round(result.tokens_per_s, 1),
            "train_tokens": result.train_tokens,
            "trainable_params": result.trainable_params,
            "total_params": result.total_params,
            "resumed_from_step": result.resumed_from_step,
            "device": result.device,
            "checks": {o.name: o.passed for o in outcomes},
            "checks_skipped": [o.name for o in outcomes if o.skipped],  # nothing to measure
            "checks_passed": passed,
            **{k: v for o in outcomes for k, v in o.metadata.items() if _scalar(v)},
        }
        with db.session(locking=True) as session:
            version = (
                session.scalar(
                    select(func.max(PersonaAdapter.version)).where(
                        PersonaAdapter.persona_id == persona_id
                    )
                )
                or 0
            ) + 1
        object_key, size = save_adapter(store, key, persona_id, version, result.adapter_dir)
    with _discard_on_error(store, [object_key]), db.session(locking=True) as session:
        require_consent(session, persona_id, "training")
        row = PersonaAdapter(
            persona_id=persona_id,
            version=version,
            corpus_sha256=bundle.corpus_sha256,
            consent_id=consent.id,
            base_model=str(base_model),
            method=train_config.method,
            hyperparameters=train_config.model_dump(mode="json"),
            metrics={**metrics, "adapter_bytes": size},
            object_key=object_key,
            run_id=run_id,
        )
        session.add(row)
        session.flush()
        audit.append(
            session,
            PIPELINE_ACTOR,
            "adapter.trained",
            persona_id=persona_id,
            target=row.id,
            details={"version": version, "method": row.method, "checks_passed": passed},
        )
        trained = AdapterTrained(
            id=row.id,
            version=version,
            method=row.method,
            base_model=row.base_model,
            corpus_sha256=row.corpus_sha256,
            consent_id=row.consent_id,
            servable=passed,
            metrics=row.metrics,
            hyperparameters=row.hyperparameters,
            checks=outcomes,
        )
    shutil.rmtree(checkpoints, ignore_errors=True)  # done: nothing left to resume
    return trained


@contextmanager
def _discard_on_error(store: ObjectStore, keys: Iterable[str]) -> Iterator[None]:
    """Objects written before the step records them are deleted again if recording fails (a
    consent revoked mid-run, say): nothing is left that no row points to."""
    try:
        yield
    except BaseException:
        store.delete_many(list(keys))
        raise


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool) or value is None
