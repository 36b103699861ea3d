"""The name gazetteer: first and last names from Faker's person providers, with the locale and
gender each came from, and per (locale, role, gender) the pools pseudonyms are drawn from."""

from __future__ import annotations

import functools
import importlib
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

from synth_pipelines.core.persona.pii_wordlists import (
    COMMON_WORDS,
    FUNCTION_WORDS,
    MONTHS_DAYS,
    NATIONALITIES,
    PARTICLES,
    PLACES,
)

# Every Faker person provider with Latin-script (or romanized) names, most specific first: the
# first locale that has a name decides which locale's names replace it. "en" (a long US list of
# rare names) comes last so that "Kenji" counts as Japanese, not American.
NAME_LOCALES = (
    "en_US", "en_GB", "en_IE", "en_IN", "en_NG", "en_PK", "en_KE", "en_NZ", "de_DE", "de_AT",
    "de_CH", "fr_FR", "fr_CA", "es_ES", "es_MX", "es_AR", "it_IT", "pt_BR", "pt_PT", "nl_NL",
    "nl_BE", "pl_PL", "tr_TR", "sv_SE", "da_DK", "no_NO", "fi_FI", "cs_CZ", "sk_SK", "ro_RO",
    "hu_HU", "hr_HR", "id_ID", "yo_NG", "ig_NG", "ha_NG", "sw", "tw_GH", "zu_ZA", "vi_VN",
    "ga_IE", "ja_JP", "zh_CN", "zh_TW", "en_TH", "de_LI", "de_LU", "es_CA", "es_CL", "es_CO",
    "et_EE", "fr_BE", "fr_CH", "fr_DZ", "fr_QC", "is_IS", "lt_LT", "lv_LV", "sl_SI", "uz_UZ",
    "az_AZ", "en",
)  # fmt: skip
NOT_NAMES = FUNCTION_WORDS | COMMON_WORDS | MONTHS_DAYS | NATIONALITIES | PLACES | PARTICLES
MIN_POOL = 30  # a smaller pool repeats too often: fall back to a wider one


def fold(word: str) -> str:
    """Case- and accent-insensitive key: "Siobhán" and "SIOBHAN" both give "siobhan"."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold().replace("\u2019", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class NameEntry:
    locale: str
    role: str  # "first" or "last"
    gender: str | None  # "female", "male", or None when the locale lists it for both or neither


@dataclass(frozen=True)
class Gazetteer:
    """`entries`: folded name word -> where it occurs, in `NAME_LOCALES` order. `pools`:
    (locale, role, gender) -> replacement names (plain single words, no English words)."""

    entries: dict[str, tuple[NameEntry, ...]]
    first: frozenset[str]
    last: frozenset[str]
    pools: dict[tuple[str, str, str | None], tuple[str, ...]]

    def pool(self, locale: str, role: str, gender: str | None) -> tuple[str, ...]:
        """The best pool of at least `MIN_POOL` names: this locale and gender, then any gender,
        then en_US."""
        for key in ((locale, role, gender), (locale, role, None), ("en_US", role, gender)):
            names = self.pools.get(key, ())
            if len(names) >= MIN_POOL:
                return names
        return self.pools[("en_US", role, None)]


def _is_latin(word: str) -> bool:
    return word.isascii() or all(
        c.isascii() or "LATIN" in unicodedata.name(c, "") for c in word if c.isalpha()
    )


def _provider_names(provider: type, role: str) -> dict[str | None, set[str]]:
    """{None: all, "female": ..., "male": ...} names of one role a Faker provider lists."""
    by_gender: dict[str | None, set[str]] = {None: set(), "female": set(), "male": set()}
    for attr in dir(provider):
        if not attr.startswith((f"{role}_names", f"{role}_romanized_names")):
            continue
        values = getattr(provider, attr)
        if not isinstance(values, list | tuple | dict | set | frozenset):
            continue
        names = {str(v) for v in values if _is_latin(str(v))}
        by_gender[None] |= names
        for gender in ("female", "male"):
            if attr.endswith(f"_{gender}"):
                by_gender[gender] |= names
    return by_gender


@functools.cache
def load_gazetteer() -> Gazetteer:
    """Read every `NAME_LOCALES` person provider once per process (about 0.5 s)."""
    entries: dict[str, list[NameEntry]] = defaultdict(list)
    pools: dict[tuple[str, str, str | None], tuple[str, ...]] = {}
    folded = functools.cache(fold)  # the same names recur across locales and genders
    for locale in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for role in ("first", "last"):
            by_gender = _provider_names(provider, role)
            genders: dict[str, set[str]] = defaultdict(set)
            for gender in ("female", "male"):
                for name in by_gender[gender]:
                    genders[folded(name)].add(gender)
            plain = {
                n
                for n in by_gender[None]
                if n.isalpha() and 3 <= len(n) <= 12 and n[0].isupper()
                and folded(n) not in NOT_NAMES
            }  # fmt: skip
            for gender, names in by_gender.items():
                pools[(locale, role, gender)] = tuple(sorted(plain & names))
            seen: set[str] = set()
            for name in sorted(by_gender[None]):  # set order follows PYTHONHASHSEED
                g = genders.get(folded(name), ())
                gender = next(iter(g)) if len(g) == 1 else None
                for token in name.split():
                    key = folded(token)
                    if len(key) < 2 or key in PARTICLES or key in FUNCTION_WORDS:
                        continue
                    keys = [key]
                    if "-" in key:
                        keys += [p for p in key.split("-") if len(p) >= 3 and p not in NOT_NAMES]
                    for k in keys:
                        if k not in seen:
                            seen.add(k)
                            entries[k].append(NameEntry(locale, role, gender))
    frozen = {k: tuple(v) for k, v in entries.items()}
    first = frozenset(k for k, v in frozen.items() if any(e.role == "first" for e in v))
    last = frozenset(k for k, v in frozen.items() if any(e.role == "last" for e in v))
    return Gazetteer(frozen, first, last, pools)
