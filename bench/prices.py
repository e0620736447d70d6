"""AWS us-east-1 on-demand list prices the cost figures use. One place; change them here.

List prices as published on the pages below, checked on 2026-11-25 (DynamoDB on-demand
after its 1 November 2024 price cut of 50%). Free tiers are ignored. When AWS changes a
price, change it here and the date with it.
"""

from __future__ import annotations

PRICES_READ_ON = "2026-11-25"
REGION = "us-east-1"

SOURCES = {
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "step_functions": "https://aws.amazon.com/step-functions/pricing/",
    "eventbridge": "https://aws.amazon.com/eventbridge/pricing/",
}

#: DynamoDB on-demand, standard table class: per write / read request unit.
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1e6
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1e6
#: SQS standard queue, per request (each 64 KB chunk of a payload is one request).
SQS_REQUEST = 0.40 / 1e6
#: Lambda, x86: per request and per GB-second (billed in 1 ms increments).
LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND = 0.0000166667
#: EventBridge custom events put on a bus (PutEvents): per entry (each 64 KB chunk of one).
EVENTBRIDGE_PUT_EVENT = 1.00 / 1e6
#: Step Functions Standard: per state transition.
SFN_STANDARD_TRANSITION = 25.00 / 1e6
#: Step Functions Express: per request (execution) plus duration per GB-second (first
#: 1,000 GB-hours tier: $0.06 per GB-hour), duration rounded up to 100 ms, memory in 64 MB chunks.
SFN_EXPRESS_REQUEST = 1.00 / 1e6
SFN_EXPRESS_GB_SECOND = 0.00001667
SFN_EXPRESS_MIN_MEMORY_MB = 64
SFN_EXPRESS_DURATION_ROUND_S = 0.1


def as_dict() -> dict[str, object]:
    return {
        "read_on": PRICES_READ_ON,
        "region": REGION,
        "sources": SOURCES,
        "dynamodb_per_million_wru": DYNAMODB_WRITE_REQUEST_UNIT * 1e6,
        "dynamodb_per_million_rru": DYNAMODB_READ_REQUEST_UNIT * 1e6,
        "sqs_per_million_requests": SQS_REQUEST * 1e6,
        "lambda_per_million_requests": LAMBDA_REQUEST * 1e6,
        "lambda_per_gb_second": LAMBDA_GB_SECOND,
        "eventbridge_per_million_events": EVENTBRIDGE_PUT_EVENT * 1e6,
        "sfn_standard_per_million_transitions": SFN_STANDARD_TRANSITION * 1e6,
        "sfn_express_per_million_requests": SFN_EXPRESS_REQUEST * 1e6,
        "sfn_express_per_gb_second": SFN_EXPRESS_GB_SECOND,
    }
