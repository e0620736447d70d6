"""Monitoring: the cross-workflow execution list, run statistics and bulk actions."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.workflows import LIST_PARAMS, STATUSES, TRIGGERS, _choice, _limit, _only, _range, _when
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.engine.bulk import BulkService, parse_bulk
from chalicelib.engine.stats import workflow_stats
from chalicelib.engine.usage import add_token_sums
from chalicelib.engine.views import summary_view
from chalicelib.store.lists import ListFilter
from chalicelib.store.usage import usage_store_for

bp = Blueprint(__name__)


@endpoint(bp, "/executions")
def list_all_executions(ctx: RequestContext) -> dict[str, Any]:
    """Executions of every workflow (or of ``workflow_id``), newest first, filtered like the per-workflow list."""
    _only(ctx, "workflow_id", *LIST_PARAMS)
    workflow_id = ctx.query("workflow_id") or None  # a filter: an unknown workflow has no executions
    filters = ListFilter(workflow_id, _choice(ctx, "status", STATUSES), _choice(ctx, "trigger", TRIGGERS), *_range(ctx))
    page = ctx.engine.store.executions.list(
        filters, _limit(ctx), ctx.query("next_token"), iso(ctx.engine.executions.clock())
    )
    return {"items": [summary_view(s) for s in page.items], "next_token": page.next_token}


@endpoint(bp, "/workflows/{workflow_id}/stats")
def get_stats(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    ctx.engine.workflows.get(workflow_id)  # 404 for an unknown workflow
    _only(ctx, "from", "to", "bucket", "tz")
    start, end = _when(ctx, "from"), _when(ctx, "to")
    document = workflow_stats(
        ctx.engine.store.executions.stats,
        workflow_id,
        ctx.query("bucket") or "day",
        parse_iso(start) if start else None,
        parse_iso(end) if end else None,
        ctx.query("tz") or None,
        ctx.engine.executions.clock(),
    )
    return add_token_sums(document, usage_store_for(ctx.engine.settings), workflow_id)


@endpoint(bp, "/executions/bulk", ("POST",), role="operator")
def bulk(ctx: RequestContext) -> Any:
    request = parse_bulk(ctx.body())
    service = BulkService(ctx.engine)
    if request.dry_run:
        return service.preview(request)
    job = service.submit(request, ctx.who)
    return Response(body={"dry_run": False, **job.to_dict()}, status_code=202)


@endpoint(bp, "/executions/bulk/{job_id}")
def get_bulk_job(ctx: RequestContext, job_id: str) -> dict[str, Any]:
    """A bulk job's progress and its per-execution results (paginated with ``limit``/``next_token``)."""
    _only(ctx, "limit", "next_token")
    service = BulkService(ctx.engine)
    job = service.jobs.get(job_id)
    results, token = service.jobs.results(job_id, _limit(ctx), ctx.query("next_token"))
    return {**job.to_dict(), "results": results, "next_token": token}
