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

__all__ = [
    "INVOICE_APPROVAL",
    "NIGHTLY_REPORT",
    "ORDER_ENRICHMENT",
    "SAMPLE_LLM_CONNECTION",
    "SAMPLE_SENDER",
    "SAMPLE_WORKFLOWS",
    "SUPPORT_TRIAGE",
]

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
            {
                "name": "priority",
                "type": "enum",
                "required": False,
                "options": ["low", "normal", "high"],
                "default": "normal",
                "label": "Requested priority",
            },
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

#: The connection ``make run`` creates from STEPLINE_LLM_BASE_URL / _MODEL / _API_KEY, and the
#: sender identity it verifies in the embedded SES, so the triage sample works out of the box.
SAMPLE_LLM_CONNECTION = "local-llm"
SAMPLE_SENDER = "support@stepline.example"
TRIAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"enum": ["billing", "bug", "account", "other"]},
        "priority": {"enum": ["low", "normal", "urgent"]},
        "summary": {"type": "string", "description": "One sentence for the support team"},
        "reply_draft": {"type": "string", "description": "A short, polite reply to the customer"},
    },
    "required": ["category", "priority", "summary", "reply_draft"],
}

SUPPORT_TRIAGE: dict[str, Any] = {
    "name": "Support ticket triage",
    "description": (
        "An AI agent classifies a support ticket and drafts a reply (llm with an output schema), a "
        "person reviews and may amend the draft, then the reply is emailed to the customer."
    ),
    "enabled": True,
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "customer_email", "type": "string", "required": True, "label": "Customer email"},
            {"name": "subject", "type": "string", "required": True, "label": "Subject"},
            {"name": "message", "type": "string", "required": True, "label": "Message"},
        ],
    },
    "steps": [
        {
            "id": "triage",
            "name": "Classify and draft a reply",
            "agent": "llm",
            "instructions": (
                "Read the customer's support ticket (input.subject and input.message). Classify it, "
                "set its priority (urgent only when the customer cannot work or lost money), summarise "
                "it in one sentence, and draft a short, polite reply signed 'The support team'. Do not "
                "promise refunds."
            ),
            "config": {
                "connection": SAMPLE_LLM_CONNECTION,
                "model": "llama3.2",
                "output_schema": TRIAGE_SCHEMA,
                "temperature": 0.2,
            },
            "timeout_seconds": 120,
            "retry": {"max_attempts": 2, "backoff_seconds": 10},
        },
        {
            "id": "review",
            "name": "Review the reply",
            "agent": "transform",
            "instructions": "prev",
            "gate": {"type": "review"},
        },
        {
            "id": "reply",
            "name": "Email the customer",
            "agent": "email",
            "config": {
                "to": ["{{ input.customer_email }}"],
                "from": SAMPLE_SENDER,
                "subject": "Re: {{ input.subject }}",
                "body": "{{ steps.review.output.reply_draft }}",
            },
        },
    ],
}

SAMPLE_WORKFLOWS: list[dict[str, Any]] = [ORDER_ENRICHMENT, INVOICE_APPROVAL, NIGHTLY_REPORT, SUPPORT_TRIAGE]
