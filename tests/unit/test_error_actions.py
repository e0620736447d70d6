"""Every step error carries the recommended operator action (API.md v2)."""

from __future__ import annotations

import pytest

from chalicelib.domain.actions import ACTIONS, recommended_action, with_action


@pytest.mark.parametrize(
    "error,action",
    [
        ({"kind": "integration", "retryable": True, "details": {"status": 503}}, "retry"),
        ({"kind": "integration", "retryable": False, "details": {"status": 401}}, "update_connection"),
        ({"kind": "integration", "retryable": False, "status": 403}, "update_connection"),
        ({"kind": "integration", "retryable": False, "details": {"status": 400}}, "edit_and_retry"),
        ({"kind": "agent", "retryable": False}, "edit_and_retry"),
        ({"kind": "agent", "retryable": True}, "retry"),
        ({"kind": "timeout", "retryable": True}, "retry"),
        ({"kind": "internal", "retryable": False}, "retry"),
        ({"kind": "rejected", "message": "rejected by ann"}, "skip_or_cancel"),
        ({"kind": "agent", "retryable": False, "action": "skip_or_cancel"}, "skip_or_cancel"),
        ({"kind": "something-new"}, "skip_or_cancel"),
    ],
)
def test_recommended_action_follows_kind_status_and_retryable(error: dict, action: str) -> None:
    assert recommended_action(error) == action
    assert with_action(error) == {**error, "action": action}
    assert action in ACTIONS


def test_no_error_has_no_action() -> None:
    assert with_action(None) is None
