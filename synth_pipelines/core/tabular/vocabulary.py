"""Vocabularies for the tabular generator: Faker's en_US provider data, loaded once per process.

Names, cities, countries, country and currency codes, companies, jobs, street suffixes, email
domains, TLDs and lorem words are arrow string arrays built from Faker's provider modules the
first time `faker_vocab()` is called (then cached for the life of the process); names keep
Faker's frequencies (cumulative weights, sampled with `searchsorted`). `iban_formats()` reads the
BBAN formats of Faker's bank providers the same way. `FAKER_MODULES` lists the modules read, so a
process pool can import them before it forks its workers.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["FAKER_MODULES", "Vocab", "Words", "faker_vocab", "iban_formats"]


@dataclass(frozen=True)
class Words:
    """A vocabulary as an arrow array, optionally weighted (cumulative weights)."""

    values: pa.Array
    cum: np.ndarray | None = None

    @classmethod
    def of(cls, items: Any) -> Words:
        if hasattr(items, "items"):  # Faker's OrderedDict of value → frequency
            keys = list(items.keys())
            cum = np.cumsum(np.asarray(list(items.values()), dtype=np.float64))
            return cls(pa.array(keys, pa.string()), cum / cum[-1])
        return cls(pa.array(list(items), pa.string()))

    def __len__(self) -> int:
        return len(self.values)

    def index(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cum is None:
            return rng.integers(0, len(self.values), n)
        return np.minimum(np.searchsorted(self.cum, rng.random(n), side="right"), len(self) - 1)

    def sample(self, rng: np.random.Generator, n: int) -> pa.Array:
        return self.values.take(self.index(rng, n))


@dataclass(frozen=True)
class Vocab:
    first: Words
    first_lower: pa.Array  # ascii-lowercase twins, same order (for emails, usernames)
    last: Words
    last_lower: pa.Array
    street_suffix: Words
    city_prefix: Words
    city_suffix: Words
    country: Words
    country_code: Words
    currency: Words
    company_suffix: Words
    job: Words
    tld: Words
    email_domain: Words
    word: Words
    sentence_words: pa.Array  # word, Word, word., Word. (4 x len(word))
    number_suffix: Words  # "" half the time, else 1..99


FAKER_MODULES = [
    "faker.providers.address.en_US",
    "faker.providers.company.en_US",
    "faker.providers.currency",
    "faker.providers.internet.en_US",
    "faker.providers.job.en_US",
    "faker.providers.lorem.en_US",
    "faker.providers.person.en_US",
]
# Bank locales whose BBAN format Faker knows (the IBAN country is the locale's).
_IBAN_LOCALES = (
    *("de_DE", "en_GB", "es_ES", "fr_FR", "it_IT", "nl_NL", "pl_PL", "pt_PT", "nl_BE"),
    *("de_AT", "de_CH", "fi_FI", "no_NO", "da_DK", "cs_CZ", "ro_RO", "en_IE"),
)


@functools.cache
def iban_formats() -> tuple[tuple[str, str], ...]:
    """(country code, BBAN format of "#" digits and "?" letters) from Faker's bank providers."""
    formats = set()
    for locale in _IBAN_LOCALES:
        provider = importlib.import_module(f"faker.providers.bank.{locale}").Provider
        code, fmt = provider.country_code, provider.bban_format
        if locale.endswith(code) and set(fmt) <= set("#?"):
            formats.add((code, fmt))
    return tuple(sorted(formats))


def _lower_ascii(values: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(values)
    return pc.replace_substring_regex(lowered, pattern="[^a-z]+", replacement="")


@functools.cache
def faker_vocab() -> Vocab:
    from faker.providers import currency
    from faker.providers.address import en_US as address_us
    from faker.providers.company import en_US as company_us
    from faker.providers.internet import en_US as internet_us
    from faker.providers.job import en_US as job_us
    from faker.providers.lorem import en_US as lorem_us
    from faker.providers.person import en_US as person_us

    first = Words.of(person_us.Provider.first_names)
    last = Words.of(person_us.Provider.last_names)
    words = list(lorem_us.Provider.word_list)
    capital = [w[:1].upper() + w[1:] for w in words]
    sentence_words = pa.array(
        words + capital + [w + "." for w in words] + [w + "." for w in capital]
    )
    internet_p = internet_us.Provider
    email_domains = list(internet_p.free_email_domains) + list(internet_p.safe_domain_names)
    return Vocab(
        first=first,
        first_lower=_lower_ascii(first.values),
        last=last,
        last_lower=_lower_ascii(last.values),
        street_suffix=Words.of(address_us.Provider.street_suffixes),
        city_prefix=Words.of(address_us.Provider.city_prefixes),
        city_suffix=Words.of(address_us.Provider.city_suffixes),
        country=Words.of(address_us.Provider.countries),
        country_code=Words.of(address_us.Provider.alpha_2_country_codes),
        currency=Words.of(code for code, _name in currency.Provider.currencies),
        company_suffix=Words.of(company_us.Provider.company_suffixes),
        job=Words.of(job_us.Provider.jobs),
        tld=Words.of(internet_p.tlds),
        email_domain=Words.of(email_domains),
        word=Words.of(words),
        sentence_words=sentence_words,
        number_suffix=Words.of([""] * 99 + [str(i) for i in range(1, 100)]),
    )
