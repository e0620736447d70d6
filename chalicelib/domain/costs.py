"""Money for model usage: prices on model connections, the cost of an attempt, and sums.

Money is kept as whole **micro-dollars** (``int``, 1e-6 USD) from the moment an attempt's cost
is known: ``Decimal`` arithmetic computes ``tokens x price / 1e6`` exactly, and the result is
rounded once, half up, to the micro-dollar. Every sum after that (an execution's
``usage_total``, a stats bucket) adds integers, so totals never drift and always equal the
sum of the attempts they are made of. The API shows dollars (``cost_usd``) as JSON numbers
with at most six decimals (``usd``), which a float carries exactly enough to print back.

A price is ``{"<model>": {"input_per_million": <usd>, "output_per_million": <usd>}}`` on the
connection (``prices``). An attempt of a model without a price has no cost (``cost_usd``
null) and its model is listed in ``unpriced_models``, so a total never pretends to be
complete. Pure: stdlib only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from chalicelib.errors import FieldError

__all__ = [
    "MAX_PRICE_PER_MILLION",
    "PRICE_KEYS",
    "UsageTotal",
    "attempt_cost_micro",
    "micro",
    "price_of",
    "prices_errors",
    "usd",
]

PRICE_KEYS = ("input_per_million", "output_per_million")
#: No model costs more than this per million tokens; a bigger number is a typo (cents for dollars).
MAX_PRICE_PER_MILLION = 10_000
MAX_PRICED_MODELS = 100
_MICRO = Decimal("0.000001")
_MILLION = Decimal(1_000_000)


def _decimal(value: Any) -> Decimal | None:
    """A JSON number as an exact decimal (``str`` of a float is its shortest round-trip form)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def micro(value: Any) -> int | None:
    """Dollars (a JSON number, ``Decimal`` or numeric string) as whole micro-dollars, rounded half up."""
    number = _decimal(value)
    if number is None:
        return None
    return int((number / _MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def usd(micro_dollars: int | None) -> float | None:
    """Micro-dollars as the dollars the API shows (six decimals at most)."""
    if micro_dollars is None:
        return None
    return float(Decimal(micro_dollars) * _MICRO)


def prices_errors(raw: Any, path: str = "prices") -> list[FieldError]:
    """Why a connection's ``prices`` map is not usable, field by field (empty when it is)."""
    example = '{"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}'
    if not isinstance(raw, dict):
        return [FieldError(path, f"must be an object of model name to prices, e.g. {example}")]
    errors: list[FieldError] = []
    if len(raw) > MAX_PRICED_MODELS:
        errors.append(FieldError(path, f"may price at most {MAX_PRICED_MODELS} models"))
    for model, price in raw.items():
        at = f"{path}.{model}"
        if not model or len(model) > 200:
            errors.append(FieldError(at, "a model name is 1 to 200 characters"))
        if not isinstance(price, dict):
            errors.append(FieldError(at, 'must be {"input_per_million": <usd>, "output_per_million": <usd>}'))
            continue
        errors += [FieldError(f"{at}.{k}", "unknown field") for k in sorted(set(price) - set(PRICE_KEYS))]
        for key in PRICE_KEYS:
            number = _decimal(price.get(key)) if not isinstance(price.get(key), str) else None
            if number is None or number < 0 or number > MAX_PRICE_PER_MILLION:
                errors.append(
                    FieldError(f"{at}.{key}", f"required: US dollars per million tokens, 0 to {MAX_PRICE_PER_MILLION}")
                )
    return errors


def price_of(prices: Any, model: str) -> tuple[Decimal, Decimal] | None:
    """(input, output) dollars per million tokens of ``model`` on a connection's ``prices``, if priced."""
    if not isinstance(prices, Mapping):
        return None
    price = prices.get(model)
    if not isinstance(price, Mapping):
        return None
    pair = (_decimal(price.get("input_per_million")), _decimal(price.get("output_per_million")))
    if pair[0] is None or pair[1] is None:
        return None
    return pair[0], pair[1]


def attempt_cost_micro(prices: Any, model: str, input_tokens: int, output_tokens: int) -> int | None:
    """What the tokens cost at ``model``'s price, in micro-dollars (rounded half up once); None if unpriced."""
    price = price_of(prices, model)
    if price is None:
        return None
    dollars = (Decimal(int(input_tokens)) * price[0] + Decimal(int(output_tokens)) * price[1]) / _MILLION
    return int((dollars / _MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class UsageTotal:
    """Tokens and cost summed over attempts (an execution's ``usage_total``, a step's, a bucket's)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_micro: int = 0
    requests: int = 0
    unpriced_models: set[str] = field(default_factory=set)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, usage: Mapping[str, Any] | None) -> None:
        """Add one attempt's ``usage`` (``input_tokens``, ``output_tokens``, ``cost_usd``, ``model``)."""
        if not isinstance(usage, Mapping):
            return
        self.input_tokens += _count(usage.get("input_tokens"))
        self.output_tokens += _count(usage.get("output_tokens"))
        self.requests += _count(usage.get("requests"))
        cost = micro(usage.get("cost_usd")) if usage.get("cost_usd") is not None else None
        if cost is not None:
            self.cost_micro += cost
        elif (_count(usage.get("input_tokens")) or _count(usage.get("output_tokens"))) and usage.get("model"):
            self.unpriced_models.add(str(usage["model"]))

    def plus(self, usage: Mapping[str, Any] | None) -> UsageTotal:
        """A copy with ``usage`` added."""
        total = UsageTotal(
            self.input_tokens, self.output_tokens, self.cost_micro, self.requests, set(self.unpriced_models)
        )
        total.add(usage)
        return total

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd(self.cost_micro),
        }
        if self.unpriced_models:
            body["unpriced_models"] = sorted(self.unpriced_models)
        return body


def _count(value: Any) -> int:
    return int(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else 0
