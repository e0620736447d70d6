"""``make run``: the whole of Stepline in one process, on an embedded AWS emulation.

``python -m chalicelib.local.server`` does, in order:

1. starts moto's ``ThreadedMotoServer`` on 127.0.0.1 (port ``STEPLINE_MOTO_PORT`` or a free
   one) and points ``AWS_ENDPOINT_URL`` at it, with dummy credentials and a region. This
   happens *before* the app is imported, so boto3 and PynamoDB (through botocore, which
   reads ``AWS_ENDPOINT_URL``) both talk to it. If the user set ``AWS_ENDPOINT_URL`` or
   ``STEPLINE_USE_REAL_AWS=1`` no moto is started and that endpoint (or real AWS) is used;
2. sets ``STEPLINE_ADMIN_KEY`` (a fresh ``sl_`` key, as ``POST /keys`` issues, unless already set)
   and ``STEPLINE_LOG_FORMAT=text`` (one readable console line per log record);
3. creates the tables, queues and bucket of ``infra/template.json`` (not for real AWS, where
   the deployed stack owns them);
4. imports ``app`` and serves it with Chalice's threaded local dev server on
   ``HOST``:``PORT`` (127.0.0.1:8000);
5. runs one SQS poller per ``@app.on_sqs_message`` handler, a ticker for every
   ``@app.schedule`` handler (see ``chalicelib.local.worker``) and, on the emulator, a
   reader of the executions table's stream for the ``@app.on_dynamodb_record`` aggregator
   (``chalicelib.local.stream``: counts and statistics follow within a second);
6. verifies the samples' sender in the embedded SES, creates the ``local-llm`` connection from
   ``STEPLINE_LLM_BASE_URL`` (default: Ollama on 127.0.0.1:11434/v1), ``STEPLINE_LLM_MODEL`` and
   ``STEPLINE_LLM_API_KEY``, seeds ``SAMPLE_WORKFLOWS`` through its own API and prints the URL, the
   admin key and a curl example. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.auth import new_key
from chalicelib.config import Settings
from chalicelib.outbound import ALLOW_PRIVATE_ENV

log = logging.getLogger("stepline.local")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
LISTEN_BACKLOG = 128
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that would send botocore somewhere other than the embedded moto.
_NOT_FOR_MOTO = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


@dataclass
class Runner:
    """What was started, so that ``stop`` can undo it in reverse order."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    moto: Any = None
    http: Any = None

    def stop(self) -> None:
        self.stop_event.set()
        if self.http is not None:
            self.http.server.shutdown()
            self.http.server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)
        if self.moto is not None:
            self.moto.stop()


# --- environment ----------------------------------------------------------------------------


def wants_real_aws(env: MutableMapping[str, str]) -> bool:
    return env.get("STEPLINE_USE_REAL_AWS", "").strip().lower() in ("1", "true", "yes")


def start_moto(env: MutableMapping[str, str]) -> tuple[Any, str]:
    """Start moto in this process and point botocore at it; return the server and its URL."""
    from moto.server import ThreadedMotoServer  # a dev dependency: local mode only

    from chalicelib.local.dynamo_isolation import install as isolate_dynamodb

    isolate_dynamodb()  # DynamoDB's isolation and per-item transaction cost (see that module)
    port = int(env.get("STEPLINE_MOTO_PORT") or 0)
    if port:
        _check_port_free(port)  # moto's thread would die on a taken port and start() wait forever
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # 0: any free port
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    env["AWS_ENDPOINT_URL"] = endpoint
    env.update(DUMMY_CREDENTIALS)
    for name in _NOT_FOR_MOTO:
        env.pop(name, None)
    return server, endpoint


def set_region(env: MutableMapping[str, str]) -> str:
    # Settings read AWS_REGION first; botocore reads AWS_DEFAULT_REGION. Make them agree.
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.setdefault("AWS_DEFAULT_REGION", region)
    env.setdefault("AWS_REGION", region)
    return region


def ensure_admin_key(env: MutableMapping[str, str]) -> str:
    """The admin key: the one set, else a fresh one of the same ``sl_`` form as ``POST /keys`` keys."""
    if not env.get("STEPLINE_ADMIN_KEY"):
        env["STEPLINE_ADMIN_KEY"] = new_key()
    return env["STEPLINE_ADMIN_KEY"]


def chalice_config_from_disk(project_dir: Path) -> dict[str, Any]:
    path = project_dir / ".chalice" / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def apply_chalice_environment(env: MutableMapping[str, str], config: dict[str, Any], stage: str) -> None:
    """Like ``chalice local``, export the config's environment variables, but never over the user's."""
    variables = dict(config.get("environment_variables", {}))
    variables.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    for name, value in variables.items():
        env.setdefault(name, str(value))


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as error:
            raise SystemExit(f"STEPLINE_MOTO_PORT={port} is not free: {error}") from None


# --- the app --------------------------------------------------------------------------------


def load_app(project_dir: Path) -> Any:
    """Import ``app.app`` from the project directory (after the environment is set)."""
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    return importlib.import_module("app").app


def start_http(app: Any, config: dict[str, Any], stage: str, host: str, port: int) -> Any:
    """Serve the app with Chalice's threaded local dev server in a background thread."""
    from chalice.config import Config
    from chalice.local import create_local_server

    chalice_config = Config(chalice_stage=stage, config_from_disk=config, user_provided_params={"chalice_app": app})
    server = create_local_server(app, chalice_config, host, port)
    # socketserver listens with a backlog of 5: a burst of clients (a UI, a script starting
    # runs in parallel) would see "connection reset". Listening again only raises the backlog.
    server.server.socket.listen(LISTEN_BACKLOG)
    thread = threading.Thread(
        target=server.server.serve_forever, kwargs={"poll_interval": 0.2}, name="stepline-http", daemon=True
    )
    thread.start()
    return server


def start_workers(app: Any, settings: Settings, runner: Runner) -> list[str]:
    """One SQS poller per SQS handler and one ticker for all scheduled handlers."""
    import boto3

    from chalicelib.local.stream import StreamPump, stream_handlers
    from chalicelib.local.worker import QueueWorker, ScheduleTicker, queue_bindings, schedule_bindings

    started = []
    concurrency = max(1, int(os.environ.get("STEPLINE_LOCAL_CONCURRENCY", "2")))
    for binding in queue_bindings(app):
        for index in range(concurrency):
            # A client per thread: botocore clients are thread-safe, but one each keeps it simple.
            sqs = boto3.session.Session().client("sqs", region_name=settings.region, endpoint_url=settings.endpoint_url)
            worker = QueueWorker(binding, sqs, region=settings.region, wait_seconds=1)
            _start_thread(runner, f"sqs-{binding.name}-{index}", functools.partial(worker.run, runner.stop_event))
        started.append(f"{binding.name} <- SQS {binding.queue_name} (x{concurrency})")
    if settings.endpoint_url:  # on real AWS the deployed aggregate function reads the stream
        for name, handler in stream_handlers(app):
            pump = StreamPump(settings, functools.partial(_invoke, handler, name))
            _start_thread(runner, f"stream-{name}", functools.partial(pump.run, runner.stop_event))
            started.append(f"{name} <- DynamoDB stream of {settings.executions_table}")
    schedules = schedule_bindings(app)
    if schedules:
        ticker = ScheduleTicker(schedules, region=settings.region, start=_dt.datetime.now(_dt.UTC))
        _start_thread(runner, "ticker", lambda: ticker.run(runner.stop_event))
        started.extend(f"{b.name} <- {b.expression}" for b in schedules)
    return started


def _invoke(handler: Callable[[dict[str, Any], Any], Any], name: str, event: dict[str, Any]) -> Any:
    """Call a Lambda handler with ``event`` and a context, as Lambda invokes the function."""
    from chalicelib.local.worker import lambda_context

    return handler(event, lambda_context(name))


def _start_thread(runner: Runner, name: str, target: Callable[[], None]) -> None:
    thread = threading.Thread(target=target, name=f"stepline-{name}", daemon=True)
    thread.start()
    runner.threads.append(thread)


# --- seeding and the banner -----------------------------------------------------------------


def call_api(base_url: str, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _json_or_text(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json_or_text(error.read())


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode("utf-8", "replace")


DEFAULT_LLM_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama's OpenAI-compatible endpoint
DEFAULT_LLM_MODEL = "llama3.2"


def seed_llm_connection(base_url: str, key: str, env: MutableMapping[str, str]) -> None:
    """Create (or update) the sample's ``openai`` connection from STEPLINE_LLM_BASE_URL, _API_KEY.

    Any OpenAI-compatible server works: Ollama (the default), vLLM, LM Studio, OpenAI itself.
    With no server answering, the triage sample's first step fails with an integration error
    that says how to connect one.
    """
    from chalicelib.samples.workflows import SAMPLE_LLM_CONNECTION

    fields: dict[str, Any] = {"base_url": env.get("STEPLINE_LLM_BASE_URL") or DEFAULT_LLM_BASE_URL}
    if env.get("STEPLINE_LLM_API_KEY"):
        fields["api_key"] = env["STEPLINE_LLM_API_KEY"]
    status, answer = call_api(
        base_url, "POST", "/connections", key, {"name": SAMPLE_LLM_CONNECTION, "kind": "openai", **fields}
    )
    if status == 409:
        status, answer = call_api(base_url, "PUT", f"/connections/{SAMPLE_LLM_CONNECTION}", key, fields)
    if status in (200, 201):
        log.info("connection %s points at %s", SAMPLE_LLM_CONNECTION, fields["base_url"])
    else:
        log.warning("could not create connection %s: %s %s", SAMPLE_LLM_CONNECTION, status, answer)


def verify_sample_sender(settings: Settings) -> None:
    """Verify the sample's sender in the embedded SES (moto refuses unverified senders, as SES does)."""
    import boto3

    from chalicelib.samples.workflows import SAMPLE_SENDER

    client = boto3.client("sesv2", region_name=settings.region, endpoint_url=settings.endpoint_url)
    try:
        client.create_email_identity(EmailIdentity=SAMPLE_SENDER)
    except client.exceptions.AlreadyExistsException:
        pass


def seed_samples(base_url: str, key: str, model: str | None = None) -> dict[str, str]:
    """POST each sample workflow whose name is not there yet; return name -> workflow id.

    ``model`` (STEPLINE_LLM_MODEL) replaces the model of the samples' llm steps.
    """
    import copy

    from chalicelib.samples.workflows import SAMPLE_WORKFLOWS

    status, listing = call_api(base_url, "GET", "/workflows", key)
    if status != 200 or not isinstance(listing, dict):
        log.warning("not seeding the sample workflows: GET /workflows answered %s %s", status, listing)
        return {}
    ids = {item.get("name"): item.get("workflow_id") for item in listing.get("items", [])}
    for sample in SAMPLE_WORKFLOWS:
        if sample["name"] in ids:
            continue
        sample = copy.deepcopy(sample)
        for step in sample["steps"]:
            if step["agent"] == "llm" and model:
                step["config"]["model"] = model
        status, created = call_api(base_url, "POST", "/workflows", key, sample)
        if status == 201 and isinstance(created, dict):
            ids[sample["name"]] = created.get("workflow_id")
            log.info("seeded sample workflow %r as %s", sample["name"], created.get("workflow_id"))
        else:
            log.warning("could not seed sample workflow %r: %s %s", sample["name"], status, created)
    return {name: wid for name, wid in ids.items() if wid}


def banner(base_url: str, key: str, aws: str, workflows: dict[str, str], handlers: list[str]) -> str:
    example_id = workflows.get("Order enrichment", "<workflow_id>")
    lines = [
        "",
        "Stepline is running locally.",
        f"  Web UI:     {base_url}/  (sign in with the admin key)",
        f"  API:        {base_url}",
        f"  Admin key:  {key}",
        f"  AWS:        {aws}",
    ]
    lines += [f"  Handler:    {h}" for h in handlers]
    lines += [f"  Workflow:   {wid}  {name}" for name, wid in workflows.items()]
    lines += [
        "",
        "Try it:",
        f"  export STEPLINE_URL={base_url} STEPLINE_KEY={key}",
        '  curl -s -H "Authorization: Bearer $STEPLINE_KEY" $STEPLINE_URL/workflows',
        '  curl -s -X POST -H "Authorization: Bearer $STEPLINE_KEY" -H "Content-Type: application/json" \\',
        f'       -d \'{{"inputs": {{"customer": "ACME", "amount": 120}}}}\' '
        f"$STEPLINE_URL/workflows/{example_id}/executions",
        '  curl -s -H "Authorization: Bearer $STEPLINE_KEY" $STEPLINE_URL/executions/<execution_id>',
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local.server", description=__doc__.split("\n")[0])
    parser.add_argument("--project-dir", type=Path, default=ROOT, help="directory holding app.py (default: the repo)")
    parser.add_argument("--no-seed", action="store_true", help="do not create the sample workflows")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "pynamodb"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_interrupt)

    env = os.environ
    # one readable line per log record in the console (JSON stays the format in Lambda)
    env.setdefault("STEPLINE_LOG_FORMAT", "text")
    project_dir = args.project_dir.resolve()
    runner = Runner()
    try:
        stage = env.get("STEPLINE_STAGE", "dev")
        config = chalice_config_from_disk(project_dir)
        apply_chalice_environment(env, config, stage)
        # Local services are the point of local mode: the http agent may call loopback and
        # private addresses here (a deployed stage does not set this; see chalicelib/outbound.py).
        env.setdefault(ALLOW_PRIVATE_ENV, "1")
        set_region(env)
        if wants_real_aws(env):
            aws = "real AWS (STEPLINE_USE_REAL_AWS=1): using the deployed stack's tables and queues"
        elif env.get("AWS_ENDPOINT_URL"):
            for name, value in DUMMY_CREDENTIALS.items():
                env.setdefault(name, value)
            aws = f"{env['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL)"
        else:
            runner.moto, endpoint = start_moto(env)
            aws = f"moto at {endpoint} (in memory; gone on exit)"
        key = ensure_admin_key(env)
        settings = Settings.from_env(env)
        if not wants_real_aws(env):
            from chalicelib.local.resources import create_resources

            create_resources(settings)
            verify_sample_sender(settings)
        # Loopback model servers (Ollama on 127.0.0.1) are allowed in local mode only.
        env.setdefault("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")

        app = load_app(project_dir)
        host = env.get("HOST") or DEFAULT_HOST
        port = int(env.get("PORT") or DEFAULT_PORT)
        try:
            runner.http = start_http(app, config, stage, host, port)
        except OSError as error:
            raise SystemExit(f"cannot serve on {host}:{port} ({error}); set PORT to another port") from None
        port = runner.http.server.server_address[1]
        base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        handlers = start_workers(app, settings, runner)
        if not args.no_seed:
            seed_llm_connection(base_url, key, env)
        workflows = (
            {} if args.no_seed else seed_samples(base_url, key, env.get("STEPLINE_LLM_MODEL") or DEFAULT_LLM_MODEL)
        )
        print(banner(base_url, key, aws, workflows, handlers), flush=True)
        while not runner.stop_event.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("\nStopping Stepline...", flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abort the clean-up
        runner.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
