"""The master key behind persona encryption, as a resource: a KMS-backed one can replace it."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from synth_pipelines.core.security.crypto import Keyring, KeyWrapper


class MasterKeyResource(dg.ConfigurableResource):
    """Wraps and unwraps persona data keys with SYNTH_MASTER_KEY (AES-256-GCM key wrap).

    During a rotation, old keys go in SYNTH_MASTER_KEYS_PREVIOUS until `synth keys rotate` has
    re-wrapped every data key under the new one. Both arrive via `dg.EnvVar`, never run config.
    """

    master_key: str = Field(default="", description="SYNTH_MASTER_KEY, base64 or hex")
    previous_keys: str = Field(
        default="", description="SYNTH_MASTER_KEYS_PREVIOUS, comma-separated"
    )

    def get_keys(self) -> KeyWrapper:
        return Keyring.from_text(self.master_key, self.previous_keys)
