"""Admin routes the web UI's pages use: workflow versions, templates, listing and revoking keys."""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.samples.workflows import INVOICE_APPROVAL, SAMPLE_WORKFLOWS


def test_versions_are_listed_newest_first_with_who_and_when(api: Any, clock: Any) -> None:
    definition = copy.deepcopy(INVOICE_APPROVAL)
    workflow_id = api.create_workflow(definition)
    clock.advance(60)
    definition["description"] = "second"
    assert api.put(f"/workflows/{workflow_id}", definition)[0] == 200
    status, body = api.get(f"/workflows/{workflow_id}/versions")
    assert status == 200, body
    assert body["current_version"] == 2
    assert [(v["version"], v["created_by"]) for v in body["items"]] == [(2, "admin"), (1, "admin")]
    assert body["items"][0]["created_at"] > body["items"][1]["created_at"]
    old = api.get(f"/workflows/{workflow_id}/versions/1")[1]["definition"]
    assert old.get("description") != "second"
    assert api.get("/workflows/wf_nope/versions")[0] == 404


def test_templates_are_the_samples_and_each_creates_a_workflow(api: Any) -> None:
    status, body = api.get("/templates")
    assert status == 200
    assert [t["name"] for t in body["items"]] == [d["name"] for d in SAMPLE_WORKFLOWS]
    for template in body["items"]:
        status, created = api.post("/workflows", template["definition"])
        if template["name"] == "Support ticket triage":  # needs its model connection first
            assert status == 400 and [e["field"] for e in created["errors"]] == ["steps[0].config.connection"]
        else:
            assert status == 201, (template["name"], created)


def test_keys_are_listed_without_secrets_and_a_revoked_key_is_refused(api: Any) -> None:
    status, created = api.post("/keys", {"name": "ci-bot", "role": "operator"})
    assert status == 201
    key = created["key"]
    assert api.get("/me", key=key) == (200, {"name": "ci-bot", "role": "operator"})
    assert api.post("/keys", {"name": "ci-bot", "role": "viewer"})[0] == 409  # names identify keys
    status, listed = api.get("/keys")
    assert status == 200
    assert [(k["name"], k["role"], k["created_by"]) for k in listed["items"]] == [("ci-bot", "operator", "admin")]
    assert key not in str(listed)
    assert api.get("/keys", key=key)[0] == 403  # admins only
    assert api.call("DELETE", "/keys/ci-bot", key=key)[0] == 403
    assert api.call("DELETE", "/keys/ci-bot")[0] == 204
    assert api.get("/me", key=key)[0] == 401
    assert api.get("/keys")[1]["items"] == []
    assert api.call("DELETE", "/keys/ci-bot")[0] == 404
    # the name is free again
    assert api.post("/keys", {"name": "ci-bot", "role": "viewer"})[0] == 201
