"""Sample workflow definitions, in the ``POST /workflows`` format of the REST contract.

Local mode (``make run``) seeds these into a fresh system so there is something to start,
approve and look at; the README's walk-through and the local runner's end-to-end test use
them too. They are plain dicts, exactly what a client would send as the request body.

``transform`` instructions are JMESPath over ``{"input", "prev", "steps"}``: ``input`` is the
execution input, ``prev`` the previous step's output (the input for the first step) and
``steps.<id>.output`` any earlier step's output.
"""
from __future__ import annotations

from typing import Any

__all__ = ["SAMPLE_WORKFLOWS", "ORDER_ENRICHMENT", "INVOICE_APPROVAL", "NIGHTLY_REPORT"]

ORDER_ENRICHMENT: dict[str, Any] = {
    "name": "Order enrichment",
    "description": (
        "Turns a customer and an amount into an order, enriches it with totals and a "
        "priority (python agent), then summarises it."
    ),
    "enabled": True,
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "customer", "type": "string", "required": True, "label": "Customer"},
            {"name": "amount", "type": "number", "required": True, "label": "Amount"},
            {"name": "priority", "type": "enum", "required": False, "options": ["low", "normal", "high"],
             "default": "normal", "label": "Requested priority"},
        ],
    },
    "steps": [
        {
            "id": "build_order",
            "name": "Build the order",
            "agent": "transform",
            # One line for the whole amount; `1` is a JMESPath literal.
            "instructions": (
                "{customer: input.customer, requested_priority: input.priority, "
                "items: [{sku: 'ORDER', qty: `1`, price: input.amount}]}"
            ),
            "timeout_seconds": 30,
        },
        {
            "id": "enrich",
            "name": "Enrich with totals and priority",
            "agent": "python",
            "config": {"callable": "chalicelib.samples.callables:enrich_order", "vip_threshold": 1000},
            "timeout_seconds": 60,
            "retry": {"max_attempts": 3, "backoff_seconds": 2},
        },
        {
            "id": "summary",
            "name": "Summarise",
            "agent": "transform",
            "instructions": (
                "{customer: prev.customer, total: prev.total, item_count: prev.item_count, "
                "priority: prev.priority, requested_priority: input.priority}"
            ),
            "timeout_seconds": 30,
        },
    ],
}

INVOICE_APPROVAL: dict[str, Any] = {
    "name": "Invoice approval",
    "description": "Drafts a credit note, waits for an operator to approve it, then books it.",
    "enabled": True,
    # under `make run` the emails land in the embedded moto's SES; the console logs each one
    "notify": [{"on": ["gate_waiting", "failed"], "email": "approvers@example.com"}],
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "amount", "type": "number", "required": True, "label": "Amount"},
            {"name": "customer", "type": "string", "required": False, "default": "ACME", "label": "Customer"},
        ],
    },
    "steps": [
        {
            "id": "draft",
            "name": "Draft the credit note",
            "agent": "transform",
            "instructions": "{customer: input.customer, total: input.amount, currency: 'EUR', kind: 'credit_note'}",
            "timeout_seconds": 30,
        },
        {
            "id": "approve",
            "name": "Operator approval",
            "agent": "transform",
            "instructions": "prev",
            "gate": {"type": "approval"},
        },
        {
            "id": "book",
            "name": "Book the note",
            "agent": "transform",
            "instructions": "{booked: `true`, customer: steps.approve.output.customer, total: steps.approve.output.total}",
            "timeout_seconds": 30,
        },
    ],
}

NIGHTLY_REPORT: dict[str, Any] = {
    "name": "Nightly report",
    "description": "Every night at 02:00 Paris time, builds a small report header and formats it.",
    "enabled": True,
    "trigger": {"type": "schedule", "cron": "0 2 * * *", "timezone": "Europe/Paris"},
    "steps": [
        {
            "id": "collect",
            "name": "Collect",
            "agent": "transform",
            "instructions": "{report: 'nightly', trigger_input: input}",
            "timeout_seconds": 30,
        },
        {
            "id": "format",
            "name": "Format",
            "agent": "transform",
            "instructions": "{title: 'Nightly report', body: prev}",
            "timeout_seconds": 30,
        },
    ],
}

SAMPLE_WORKFLOWS: list[dict[str, Any]] = [ORDER_ENRICHMENT, INVOICE_APPROVAL, NIGHTLY_REPORT]
