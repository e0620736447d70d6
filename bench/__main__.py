"""``python -m bench`` (``make bench``): Stepline's cost and overhead on moto, in one run.

1. requests per step run and per execution, counted through botocore hooks;
2. cost per million steps against Step Functions Standard and Express;
3. engine transitions per second against plain conditional ``UpdateItem`` calls;
4. sweep, schedule tick and filtered list as the history grows;
5. ``make run``'s start latency on an empty store and after ``--local-fill`` executions
   (``bench/local_start.py``: the embedded moto server, real HTTP, workers running).

A benchmark, not a test: it asserts nothing about time. Figures go to stdout and to
``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench.metering import install_global

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"


#: Executions whose head changes (two each) fill one aggregator batch of the template's size.
FULL_BATCH_EXECUTIONS = 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=200, help="executions counted in part 1 (default 200)")
    parser.add_argument(
        "--timing-executions", type=int, default=50, help="executions timed in part 3 (default 50, i.e. 250 step runs)"
    )
    parser.add_argument(
        "--sizes",
        default="100,10000,100000",
        help="history sizes for part 4, comma-separated (default 100,10000,100000)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed repetitions per scale figure, fastest kept (default 5)"
    )
    parser.add_argument(
        "--plain-moto",
        action="store_true",
        help="do not index moto's Query (see bench/motofast.py); large sizes then take very long",
    )
    parser.add_argument(
        "--local-fill",
        type=int,
        default=10_000,
        help="executions stored before part 5 times make run's starts again (default 10000; 0 skips part 5)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())

    install_global()  # before any botocore session exists, so every one carries the meter
    from bench import cost, metering, prices, report, scenarios
    from bench.harness import ADMIN_KEY, Harness, environment
    from bench.motofast import indexed_moto
    from bench.scale import measure_scale
    from bench.transitions import count_requests, measure_throughput

    began = time.perf_counter()
    results: dict[str, Any] = {
        "environment": report.environment(ROOT),
        "prices": prices.as_dict(),
        "moto_indexed": not args.plain_moto,
    }
    memory = cost.lambda_memory_mb(ROOT)
    env = results["environment"]
    load = f", load average {env['load_average_1m']:.1f}" if env["load_average_1m"] is not None else ""
    print(
        f"Stepline bench: {args.executions} executions of a 5-step transform workflow, on moto "
        f"(Python {env['python']}, {env['cpu_count']} CPUs{load})\n",
        flush=True,
    )

    with indexed_moto() if not args.plain_moto else nullcontext():
        # ---------------------------------------------------------------- 1 + 2
        metering.FUNCTION_MEMORY_MB.update(cost.function_memory(ROOT))
        counted: dict[str, Any] = {}
        invocations: list[Any] = []
        logs = scenarios.LogBytes()
        with scenarios.loopback_server() as url:
            plan = [
                ("pure 5 steps, chained", scenarios.FIVE_STEPS, None, args.executions),
                ("pure 10 steps, chained", scenarios.ten_steps(), None, max(args.executions // 2, 2)),
                ("pure 5 steps, forced hop per step", scenarios.FIVE_STEPS, 1, args.executions),
                ("http 5 steps, chained", scenarios.http_steps(url), None, max(args.executions // 2, 2)),
            ]
            for name, definition, chain, runs in plan:
                with environment() as (client, engine, _clock), scenarios.max_chain(chain):
                    h = Harness.for_engine(client, engine, ADMIN_KEY)
                    with h.meter.active(), logs.counting():
                        logs.bytes = 0
                        counted[name] = count_requests(h, runs, definition=definition)
                        counted[name].log_bytes_per_step = logs.bytes / (runs * len(definition["steps"]))
                    invocations.extend(h.meter.invocations)
        # the aggregator at the template's batch size: 50 executions' 100 head changes in one batch
        with environment() as (client, engine, _clock):
            h = Harness.for_engine(client, engine, ADMIN_KEY)
            h.stream_read_limit = 1000
            with h.meter.active():
                full_batch = count_requests(h, FULL_BATCH_EXECUTIONS, aggregate_every=FULL_BATCH_EXECUTIONS)
            full_batch_invocations = list(h.meter.invocations)
        results["requests"] = {name: c.to_dict() for name, c in counted.items()}
        print_requests(counted, report)
        results["cost"] = print_cost(counted, memory, cost, prices, report)
        results["aggregator"] = print_aggregator(counted["pure 5 steps, chained"], full_batch, report)
        results["memory"] = print_memory(invocations + full_batch_invocations, report)

        # -------------------------------------------------------------------- 3
        with environment() as (client, engine, _clock):
            h = Harness.for_engine(client, engine, ADMIN_KEY)
            throughput = measure_throughput(h, args.timing_executions)
        results["overhead"] = throughput.to_dict()
        print_overhead(throughput, report)

        # -------------------------------------------------------------------- 4
        if sizes:
            with environment() as (client, engine, _clock):
                h = Harness.for_engine(client, engine, ADMIN_KEY)
                with h.meter.active():
                    scale = measure_scale(h, sizes, args.repeat)
            results["scale"] = scale.to_dict()
            print_scale(scale, report)

    # ------------------------------------------------------------------------ 5
    # Outside indexed_moto: this part measures local mode's own emulator (dynamo_isolation).
    if args.local_fill > 0:
        from bench.local_start import measure_local_start

        local = measure_local_start(args.local_fill)
        results["local_start"] = local
        print_local_start(local, report)

    results["runtime_seconds"] = round(time.perf_counter() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nDone in {results['runtime_seconds']} s; figures in {_shown(args.out)}")
    return 0


def print_local_start(local: dict[str, Any], report: Any) -> None:
    print(
        f"\n5. make run: start latency, empty store vs after {local['fill']:,} executions (HTTP, median of {local['samples']})"
    )
    print(
        f"   empty {local['empty']['median_ms']} ms (p90 {local['empty']['p90_ms']}), "
        f"after fill {local['after_fill']['median_ms']} ms (p90 {local['after_fill']['p90_ms']}): "
        f"ratio {local['ratio_median']} (target at most 1.5); fill took {local['fill_seconds']} s"
    )
    interleaved = local["interleaved"]
    print(
        f"   interleaved with a fresh empty make run: {interleaved['after_fill']['median_ms']} ms vs "
        f"{interleaved['reference_empty']['median_ms']} ms, ratio {local['ratio_interleaved']} "
        "(the store's own effect; the machine's load drift cancels out)"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def print_requests(counted: dict[str, Any], report: Any) -> None:
    print("1. Requests per execution and per step (start, every hop of the run)")
    head = ["", "hops", "DDB writes", "DDB reads", "WCU", "of which GSI", "RCU", "SQS calls", "Lambda inv."]

    def row(name: str, hops: float, t: Any) -> list[Any]:
        return [name, hops, t.ddb_writes, t.ddb_reads, t.write_units, t.gsi_wcu, t.rcu, t.sqs, t.invocations]

    rows = []
    for name, c in counted.items():
        rows.append(row(f"{name}: start, per execution", 0, c.start))
        rows.append(row(f"{name}: run, per execution", c.hops_per_execution, c.run))
        rows.append(row(f"{name}: per step, all in", c.hops_per_execution / c.steps_per_execution, c.per_step))
        if c.hot.invocations:
            rows.append(row(f"{name}: per hop that hands over", 1, c.hot))
    print(report.table(head, rows))
    print(
        "   (WCU includes GSI writes; transactional writes count double; SQS calls include the event source's\n"
        "    receive and delete.)\n"
    )
    for name, c in counted.items():
        for title, breakdown in c.breakdown.items():
            print(f"   {name}, {title}:")
            print(
                _indent(
                    report.table(
                        ["stage", "operation", "item", "calls", "WCU", "GSI WCU", "RCU"],
                        [
                            [r["stage"], r["operation"], r["item"], r["calls"], r["wcu"], r["gsi_wcu"], r["rcu"]]
                            for r in breakdown
                        ],
                    ),
                    3,
                )
            )
    print()


def print_cost(counted: dict[str, Any], memory: int, cost: Any, prices: Any, report: Any) -> dict[str, Any]:
    from bench import metering, scenarios

    pure5, pure10 = counted["pure 5 steps, chained"], counted["pure 10 steps, chained"]
    hop, http5 = counted["pure 5 steps, forced hop per step"], counted["http 5 steps, chained"]
    steps = pure5.steps_per_execution
    execution_seconds = pure5.run.billed_seconds
    express = cost.sfn_express_per_million_steps(steps, execution_seconds)
    standard = cost.sfn_standard_per_million_steps()
    marginal = pure10.per_execution.minus(pure5.per_execution).scaled(
        1 / (pure10.steps_per_execution - pure5.steps_per_execution)
    )
    rows_in = [
        ("Stepline, hot path only", hop.hot),
        ("Stepline, all in (start + finish spread over 5 steps)", pure5.per_step),
        ("Stepline, marginal step (10 vs 5 pure steps, chained)", marginal),
        ("Stepline, forced hop per step, all in", hop.per_step),
        ("Stepline, http steps, all in (5 side-effecting steps)", http5.per_step),
        ("  with SQS batches of 10, hot path", cost.batched(hop.hot, hop.hot.invocations)),
    ]
    scenario_rows = [cost.compare(name, tally, memory, express) for name, tally in rows_in]
    for s, (name, _t) in zip(scenario_rows, rows_in, strict=True):
        c = {
            "Stepline, all in (start + finish spread over 5 steps)": pure5,
            "Stepline, forced hop per step, all in": hop,
            "Stepline, http steps, all in (5 side-effecting steps)": http5,
        }.get(name)
        if c is not None:
            s["left_out"] = scenarios.left_out(c.steps_per_execution, getattr(c, "log_bytes_per_step", 0.0))
    memories = ", ".join(f"{k} {v} MB" for k, v in sorted(metering.FUNCTION_MEMORY_MB.items()))
    print(
        f"2. Orchestration cost per million steps (us-east-1 on-demand list prices read {prices.PRICES_READ_ON}; "
        f"Lambda x86 billed at each function's prod memory: {memories})"
    )
    rows = [
        [
            s["scenario"],
            s["cost"]["dynamodb_writes"],
            s["cost"]["dynamodb_reads"],
            s["cost"]["sqs"],
            s["cost"]["lambda_requests"],
            s["cost"]["lambda_duration"],
            s["cost"]["eventbridge"],
            s["per_million_steps"],
            s["ratio_to_standard"],
            s["ratio_to_express"],
        ]
        for s in scenario_rows
    ]
    rows.append(
        [
            "Step Functions Standard (1 transition per step)",
            None,
            None,
            None,
            None,
            None,
            None,
            standard,
            1.0,
            standard / express,
        ]
    )
    rows.append(
        [
            "Step Functions Express (64 MB, >= 100 ms per execution)",
            None,
            None,
            None,
            None,
            None,
            None,
            express,
            express / standard,
            1.0,
        ]
    )
    print(
        report.table(
            [
                "$ per million steps",
                "DDB write",
                "DDB read",
                "SQS",
                "Lambda req",
                "Lambda GB-s",
                "EventBridge",
                "total",
                "vs Standard",
                "vs Express",
            ],
            rows,
        )
    )
    print(
        "   Left out of the totals (per million steps): "
        + "; ".join(
            f"{s['scenario'].strip()}: API Gateway ${s['left_out']['api_gateway_start_requests']}, CloudWatch Logs "
            f"${s['left_out']['cloudwatch_logs_ingestion']} ({s['left_out']['log_bytes_per_step']:.0f} log bytes/step)"
            for s in scenario_rows
            if "left_out" in s
        )
    )
    per_invocation_ms = hop.hot.lambda_seconds * 1000 / max(hop.hot.invocations, 1)
    print(
        f"   Lambda duration measured in-process on moto: {per_invocation_ms:.1f} ms per hop invocation "
        f"(of which {hop.hot.aws_seconds * 1000 / max(hop.hot.invocations, 1):.1f} ms inside moto calls);"
        f" an approximation of AWS latency."
    )
    print(
        f"   Express duration taken as the engine's own time per execution ({execution_seconds * 1000:.0f} ms, "
        f"rounded up to 100 ms); Step Functions prices exclude the Lambda tasks it would invoke."
    )
    target = cost.TARGET_RATIO
    print(
        f"   Target <= {cost.TARGET_PURE:.2f} x Standard for pure steps, <= {target:.2f} x with side-effecting steps:"
    )
    for s in scenario_rows:
        print(
            f"     {s['scenario'].strip():<55} {s['ratio_to_standard']:.3f}  "
            f"{'met' if s['meets_target'] else 'NOT met'}"
        )
    print()
    return {
        "memory_mb": memory,
        "function_memory_mb": dict(metering.FUNCTION_MEMORY_MB),
        "steps_per_execution": steps,
        "scenarios": scenario_rows,
        "sfn_standard_per_million_steps": standard,
        "sfn_express_per_million_steps": round(express, 4),
        "express_execution_seconds": round(execution_seconds, 4),
        "target_ratio": target,
        "target_ratio_pure": cost.TARGET_PURE,
    }


def print_aggregator(observed: Any, full: Any, report: Any) -> dict[str, Any]:
    """The stream aggregator's share per execution, at the bench's batches and at the template's."""
    from chalicelib.local.stream import template_source

    source = template_source()
    settings = {k: source.get(k) for k in ("BatchSize", "MaximumBatchingWindowInSeconds", "TumblingWindowInSeconds")}
    print(
        "   Stream aggregator per execution of 5 pure steps (event source: "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + "):"
    )

    def row(name: str, c: Any) -> dict[str, Any]:
        t = c.aggregate
        return {
            "batch": name,
            "head_changes_per_invocation": c.aggregate_records_per_invocation,
            "invocations": round(t.invocations, 4),
            "writes": round(t.ddb_writes, 4),
            "write_units": round(t.write_units, 4),
            "reads": round(t.ddb_reads, 4),
            "rcu": round(t.rcu, 4),
            "eventbridge_entries": round(t.event_entries, 4),
        }

    rows = [row("bench's observed (waves of 10 executions)", observed), row("template's batch size", full)]
    print(
        _indent(
            report.table(
                ["batch", "head changes/inv.", "invocations", "writes", "WCU", "reads", "RCU", "events"],
                [list(r.values()) for r in rows],
            ),
            3,
        )
    )
    print()
    return {"event_source": settings, "per_execution": rows}


#: Memory sizes the cost of each function is shown at (MB).
MEMORY_SIZES = (128, 256, 512, 1024, 1769)


def print_memory(invocations: list[Any], report: Any) -> dict[str, Any]:
    """Per function: its measured time per invocation (CPU and waiting on AWS) and what a
    million invocations would cost at each memory size, beside its prod memory."""
    from bench import metering, prices

    by_function: dict[str, list[Any]] = {}
    for i in invocations:
        by_function.setdefault(metering.FUNCTION_NAMES.get(i.function, i.function), []).append(i)
    rows, out = [], {}
    for name, calls in sorted(by_function.items()):
        n = len(calls)
        cpu = sum(i.cpu_seconds for i in calls) / n
        wait = sum(i.aws_seconds for i in calls) / n
        costs = {
            m: sum(metering.billed_seconds_at(i.cpu_seconds, i.aws_seconds, m) for i in calls)
            / n
            * m
            / 1024
            * prices.LAMBDA_GB_SECOND
            * 1e6
            for m in MEMORY_SIZES
        }
        prod = metering.FUNCTION_MEMORY_MB.get(name, 128)
        rows.append([name, n, cpu * 1000, wait * 1000, prod, *(costs[m] for m in MEMORY_SIZES)])
        out[name] = {
            "invocations": n,
            "cpu_ms": round(cpu * 1000, 2),
            "wait_ms": round(wait * 1000, 2),
            "prod_memory_mb": prod,
            "duration_cost_per_million_invocations": {str(m): round(c, 4) for m, c in costs.items()},
        }
    print(
        "   Lambda memory: duration cost per million invocations at each size ($), from the measured CPU\n"
        "   (stretched below 1,769 MB, where Lambda gives a share of a vCPU) and time waiting on AWS calls:"
    )
    print(
        _indent(
            report.table(
                ["function", "invocations", "CPU ms", "wait ms", "prod MB", *(f"{m} MB" for m in MEMORY_SIZES)], rows
            ),
            3,
        )
    )
    print()
    return out


def print_overhead(t: Any, report: Any) -> None:
    print("3. Engine overhead against the store (same moto backend, meter off)")
    print(
        report.table(
            ["", "count", "seconds", "per second"],
            [
                [
                    "engine step runs (receive, claim, run, hand over, delete)",
                    t.step_runs,
                    t.engine_seconds,
                    t.engine_per_second,
                ],
                ["plain conditional UpdateItem", t.raw_writes, t.raw_seconds, t.raw_per_second],
            ],
        )
    )
    print(
        f"   ratio engine transitions/s / raw conditional writes/s = {t.ratio:.3f}\n"
        f"   (a step run is 6 AWS calls: receive, query, 2 conditional puts, send, delete; and a Lambda invocation)\n"
    )


def print_scale(s: Any, report: Any) -> None:
    print("4. Scale: cost of the sweep, the tick and a filtered list as finished executions accumulate")
    rows = [
        [
            r["operation"],
            r["executions"],
            r["wall_ms"],
            r["engine_ms"],
            r["calls"],
            r["rcu"],
            r["wall_ratio"],
            r["engine_ratio"],
            r["rcu_ratio"],
            r["detail"],
        ]
        for r in s.ratios()
    ]
    print(
        report.table(
            ["operation", "executions", "wall ms", "engine ms", "calls", "RCU", "wall x", "engine x", "RCU x", ""], rows
        )
    )
    fills = ", ".join(f"{k:,}: {v:.1f} s" for k, v in s.fill_seconds.items())
    print(
        f"   (x = ratio to the {s.samples[0].size:,} case; engine ms = wall minus time inside AWS calls; "
        f"fastest of the timed runs: the machine's load adds noise to times, calls and RCU are exact.\n"
        f"    Set-up written straight into moto's backend: {fills}.)"
    )
    print(
        "   moto's Query is narrowed to the queried partition (bench/motofast.py), as DynamoDB reads it;"
        " run with --plain-moto to see moto's own full-table walks."
    )
    for note in s.notes:
        print(f"   note: {note}")


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
