"""Callables for sample workflows and tests, run by the ``python`` agent as ``fn(ctx)``.

Each is deterministic given its context (``flaky`` keys on the attempt number, not on
chance), so tests that drive retries and timeouts through them are repeatable.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.agents.base import AgentContext, AgentError

__all__ = ["always_fails", "big_output", "echo", "enrich_order", "fails_permanently", "flaky", "slow"]

MAX_SLEEP_SECONDS = 900.0


def echo(ctx: AgentContext) -> Any:
    """Output ``prev`` unchanged."""
    return ctx.data.get("prev")


def big_output(ctx: AgentContext) -> dict[str, Any]:
    """Output ``{"blob": <config.bytes characters>, "bytes": n}`` (default 1 MB, at most 5 MB).

    For exercising large payloads: DynamoDB keeps 400 KB per item, so the store moves an
    output this size to S3 and keeps a reference.
    """
    size = min(max(int(ctx.config.get("bytes", 1_000_000)), 0), 5_000_000)
    return {"blob": "x" * size, "bytes": size}


def enrich_order(ctx: AgentContext) -> dict[str, Any]:
    """Add line totals, a total and a priority to the order in ``prev`` (or ``input``).

    An order looks like ``{"id": "o-1", "customer": "ACME", "items": [{"sku": "A",
    "qty": 2, "price": 9.5}]}``; ``config.vip_threshold`` (default 1000) sets the total
    above which the order is ``"high"`` priority. A missing or malformed order is a
    non-retryable ``AgentError``: the same data would fail again.
    """
    order = ctx.data.get("prev") or ctx.data.get("input")
    if not isinstance(order, dict):
        raise AgentError("enrich_order expects an order object in prev or input", retryable=False)
    items = order.get("items") or []
    if not isinstance(items, list):
        raise AgentError("enrich_order: items must be a list", retryable=False)
    lines = []
    for index, item in enumerate(items):
        try:
            quantity, price = float(item.get("qty", 1)), float(item["price"])
        except (AttributeError, KeyError, TypeError, ValueError):
            message = f"enrich_order: items[{index}] needs a numeric price and qty"
            raise AgentError(message, retryable=False) from None
        lines.append({**item, "line_total": round(quantity * price, 2)})
    total = round(sum(line["line_total"] for line in lines), 2)
    threshold = float(ctx.config.get("vip_threshold", 1000))
    return {
        **order,
        "items": lines,
        "item_count": len(lines),
        "total": total,
        "priority": "high" if total >= threshold else "normal",
        "enriched_by": ctx.step_id,
    }


def always_fails(ctx: AgentContext) -> Any:
    """Raise a plain exception, which the python agent reports as a retryable ``AgentError``."""
    message = ctx.config.get("message") or "this step always fails"
    raise RuntimeError(message)


def fails_permanently(ctx: AgentContext) -> Any:
    """Raise a non-retryable ``AgentError`` (the step fails on its first attempt)."""
    raise AgentError(ctx.config.get("message") or "this step fails and retrying will not help", retryable=False)


def flaky(ctx: AgentContext) -> dict[str, Any]:
    """Fail with a retryable error until attempt ``config.succeed_on_attempt`` (default 2)."""
    succeed_on = int(ctx.config.get("succeed_on_attempt", 2))
    if ctx.attempt < succeed_on:
        raise AgentError(f"flaky: attempt {ctx.attempt} fails, attempt {succeed_on} will succeed", retryable=True)
    return {"attempt": ctx.attempt, "prev": ctx.data.get("prev")}


def slow(ctx: AgentContext) -> dict[str, Any]:
    """Sleep ``config.seconds`` (default 1; at most 900) and output how long it slept.

    It does not shorten the sleep to the step's limit: its purpose is to overrun it.
    """
    seconds = min(max(float(ctx.config.get("seconds", 1)), 0.0), MAX_SLEEP_SECONDS)
    time.sleep(seconds)
    return {"slept_seconds": seconds, "prev": ctx.data.get("prev")}
