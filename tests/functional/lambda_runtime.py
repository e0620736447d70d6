"""A stand-in for Lambda's Python runtime, run as its own interpreter (``python -I -S -B``).

    python -I -S -B lambda_runtime.py <task dir> <runtime dir> <module.function>

``sys.path`` is the standard library, the task dir (the unzipped deployment package, as in
/var/task) and the runtime dir (only what Lambda's runtime adds: boto3, botocore,
s3transfer); no site-packages, no source tree. The environment is the function's, from the
stack. Each stdin line is one invocation's event as JSON; each answer is one stdout line
``RESULT <json>`` ({"ok": result} or {"error": ...}); anything else on stdout is the
function's own output (its JSON logs). Imports only the standard library before the handler.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid

MARK = "\x1eRESULT "


class Context:
    """The attributes of Lambda's context object that handlers read."""

    def __init__(self, deadline: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("STEPLINE_TEST_FUNCTION_ARN", "")
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "test"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    task, runtime, handler = sys.argv[1:4]
    sys.path[:0] = [task, runtime]
    os.chdir(task)
    module_name, _, attribute = handler.rpartition(".")
    started = time.perf_counter()
    try:
        module = __import__(module_name, fromlist=[attribute])
        function = getattr(module, attribute)
    except Exception:  # an import error is what a broken package looks like: report, exit
        print(MARK + json.dumps({"init_error": traceback.format_exc()}), flush=True)
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    print(
        MARK
        + json.dumps(
            {
                "ready": True,
                "init_ms": init_ms,
                "outside": sorted(
                    {
                        m.__file__
                        for m in list(sys.modules.values())
                        if _outside(getattr(m, "__file__", None), task, runtime)
                    }
                ),
            }
        ),
        flush=True,
    )
    timeout = float(os.environ.get("STEPLINE_TEST_TIMEOUT", "60"))
    for line in sys.stdin:
        event = json.loads(line)
        try:
            result = function(event, Context(time.monotonic() + timeout))
            answer = {"ok": result}
        except Exception as error:  # Lambda reports the error; the SQS message is not deleted
            answer = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
        print(MARK + json.dumps(answer, default=str), flush=True)
    return 0


def _outside(path: str | None, task: str, runtime: str) -> bool:
    """A module loaded from somewhere that is neither the package, the runtime nor the stdlib."""
    if not path or os.path.abspath(path) == os.path.abspath(__file__):
        return False
    stdlib = os.path.dirname(os.__file__)
    return not any(os.path.abspath(path).startswith(os.path.abspath(root) + os.sep) for root in (task, runtime, stdlib))


if __name__ == "__main__":
    sys.exit(main())
