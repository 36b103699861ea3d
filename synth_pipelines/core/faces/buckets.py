"""The ten inventory buckets: gender x age group, and how ages map onto them."""

from __future__ import annotations

from dataclasses import dataclass

from synth_pipelines.core.errors import UnknownBucketError

GENDERS: tuple[str, ...] = ("female", "male")
AGE_GROUPS: tuple[str, ...] = ("child", "teen", "young_adult", "adult", "senior")

# Inclusive age ranges in years; the simulator samples inside them, the classifier maps back.
AGE_RANGES: dict[str, tuple[int, int]] = {
    "child": (4, 12),
    "teen": (13, 19),
    "young_adult": (20, 29),
    "adult": (30, 59),
    "senior": (60, 85),
}


@dataclass(frozen=True, order=True)
class Bucket:
    """One inventory bucket, written `gender/age_group` (e.g. `female/adult`)."""

    gender: str
    age_group: str

    def __post_init__(self) -> None:
        if self.gender not in GENDERS or self.age_group not in AGE_GROUPS:
            accepted = ", ".join(ALL_BUCKET_KEYS)
            raise UnknownBucketError(
                f"bucket '{self.gender}/{self.age_group}' is not one of: {accepted}"
            )

    @property
    def key(self) -> str:
        return f"{self.gender}/{self.age_group}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, text: str) -> Bucket:
        """Parse `female/adult` (also `female|adult`, `adult|female`) into a Bucket."""
        parts = [p.strip().lower() for p in str(text).replace("|", "/").split("/")]
        if len(parts) == 2:
            a, b = parts
            if a in GENDERS and b in AGE_GROUPS:
                return cls(a, b)
            if b in GENDERS and a in AGE_GROUPS:
                return cls(b, a)
        raise UnknownBucketError(f"bucket '{text}' is not one of: {', '.join(ALL_BUCKET_KEYS)}")


ALL_BUCKET_KEYS: tuple[str, ...] = tuple(f"{g}/{a}" for g in GENDERS for a in AGE_GROUPS)
ALL_BUCKETS: tuple[Bucket, ...] = tuple(Bucket(g, a) for g in GENDERS for a in AGE_GROUPS)


def age_group_for_age(age: float) -> str:
    """Map an age in years to its age group; ages past either end clamp to child or senior."""
    for group in AGE_GROUPS:
        if age < AGE_RANGES[group][1] + 1:
            return group
    return AGE_GROUPS[-1]
