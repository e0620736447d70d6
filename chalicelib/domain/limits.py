"""What a workflow definition may hold: its closed word lists and its size limits, stated once.

``definition.py`` enforces them, ``api/schemas.py`` publishes them in the OpenAPI document,
docs/api.md lists them, and ``GET /vocabulary.json`` serves them (``served()``) to the UI and
the CLI. A definition is stored in one DynamoDB item (400 KB), which bounds the sizes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GATE_TYPES",
    "INPUT_TYPES",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF_SECONDS",
    "MAX_CONFIG_BYTES",
    "MAX_DEFINITION_BYTES",
    "MAX_DESCRIPTION",
    "MAX_GATE_TIMEOUT_SECONDS",
    "MAX_INPUTS",
    "MAX_INSTRUCTIONS",
    "MAX_NAME",
    "MAX_STEPS",
    "MAX_TIMEOUT_SECONDS",
    "ON_TIMEOUT",
    "served",
]

#: The types a manual trigger's input may declare.
INPUT_TYPES = ("string", "number", "integer", "boolean", "enum", "date")
#: ``approval`` decides yes or no; ``review`` may also amend the step's output.
GATE_TYPES = ("approval", "review")
#: What the sweep decides for a gate nobody answered within its ``timeout_seconds``.
ON_TIMEOUT = ("fail", "approve", "reject")

MAX_NAME, MAX_DESCRIPTION, MAX_STEPS, MAX_INPUTS = 200, 2000, 100, 100
#: A step runs at most a day; a retry waits at most a day; at most 20 attempts.
MAX_TIMEOUT_SECONDS, MAX_ATTEMPTS, MAX_BACKOFF_SECONDS = 86400, 20, 86400.0
MAX_INSTRUCTIONS = 20_000
MAX_CONFIG_BYTES = 64_000
MAX_DEFINITION_BYTES = 256_000
#: A gate waits for people, so it may wait longer than a step may run: up to 30 days.
MAX_GATE_TIMEOUT_SECONDS = 30 * 86400


def served() -> dict[str, Any]:
    """The limits as ``GET /vocabulary.json`` serves them."""
    return {
        "input_types": list(INPUT_TYPES),
        "gate_types": list(GATE_TYPES),
        "on_timeout": list(ON_TIMEOUT),
        "max_name": MAX_NAME,
        "max_description": MAX_DESCRIPTION,
        "max_steps": MAX_STEPS,
        "max_inputs": MAX_INPUTS,
        "max_timeout_seconds": MAX_TIMEOUT_SECONDS,
        "max_attempts": MAX_ATTEMPTS,
        "max_backoff_seconds": MAX_BACKOFF_SECONDS,
        "max_instructions": MAX_INSTRUCTIONS,
        "max_config_bytes": MAX_CONFIG_BYTES,
        "max_definition_bytes": MAX_DEFINITION_BYTES,
        "max_gate_timeout_seconds": MAX_GATE_TIMEOUT_SECONDS,
    }
