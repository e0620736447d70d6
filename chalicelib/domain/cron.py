"""Schedule triggers: five-field Unix cron plus an IANA time zone.

Stepline evaluates schedules itself (the ticker), with croniter, in the workflow's time
zone. That is why it takes Unix cron (``minute hour day-of-month month day-of-week``) and
not the six-field EventBridge form: the two disagree on day-of-week numbers (Unix 0 = Sunday,
AWS 1 = Sunday), and AWS adds ``?``, ``L``, ``W`` and ``#``. Accepting both would make
``0 9 * * 1`` mean Monday or Sunday depending on a guess, so AWS-style is refused with a
hint. See https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html

Pure: no clock (the "does it ever fire" probe starts from a fixed date), no environment.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import zoneinfo

__all__ = ["cron_error", "timezone_error"]

UNIX_FORM = "minute hour day-of-month month day-of-week"
_AWS_REFUSED = (
    "Stepline uses five-field Unix cron (" + UNIX_FORM + "); "
    "AWS-style expressions (six fields, '?', 'L', 'W', '#', cron(...), rate(...)) are not accepted"
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = {3: _MONTHS, 4: _DAYS}  # field index -> names allowed there
_PLAIN = re.compile(r"[0-9*,/\-]+")
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", re.IGNORECASE)
_HOST_LINKS = frozenset({"localtime", "posixrules"})  # per-machine files, not zones
# A fixed start for the "does it ever fire" probe: the domain never reads the clock.
_PROBE_START = _dt.datetime(2000, 1, 1)


def cron_error(expression: object) -> str | None:
    """Why ``expression`` is not an acceptable five-field Unix cron, or None if it is."""
    if not isinstance(expression, str) or not expression.strip():
        return "must be a non-empty string: five-field Unix cron (" + UNIX_FORM + ")"
    text = expression.strip()
    lowered = text.lower()
    if lowered in _ALIASES:
        return f"write the five-field form '{_ALIASES[lowered]}' instead of '{text}'"
    if lowered.startswith("@"):
        return "is not supported: use five-field Unix cron (" + UNIX_FORM + ")"
    if lowered.startswith(("cron(", "rate(")):
        return _aws_refusal(text)
    fields = text.split()
    if len(fields) == 6 or len(fields) == 7 or any(_has_aws_token(f) for f in fields):
        return _aws_refusal(text)
    if len(fields) != 5:
        return f"must have five fields ({UNIX_FORM}), found {len(fields)}"
    for index, value in enumerate(fields):
        if not _PLAIN.fullmatch(_strip_names(value, index)):
            names = {3: " and month names (JAN-DEC)", 4: " and day names (SUN-SAT)"}.get(index, "")
            return f"field {index + 1} ('{value}') may only hold numbers, '*', ',', '-', '/'{names}"
    from croniter import CroniterError, croniter  # here: only definition checks need it

    try:
        croniter(text, _PROBE_START).get_next(_dt.datetime)
    except CroniterError as exc:
        if "next date" in str(exc):
            return "never fires (no such date, e.g. 30 February)"
        return f"is not a valid cron expression ({exc})"
    except (ValueError, KeyError) as exc:  # croniter lets a few of these escape on odd input
        return f"is not a valid cron expression ({exc})"
    return None


def timezone_error(name: object) -> str | None:
    """Why ``name`` is not an IANA time zone name, or None if it is."""
    if not isinstance(name, str) or not name:
        return "must be an IANA time zone name such as 'Europe/Paris' or 'UTC'"
    # Membership first: ZoneInfo also opens host files such as 'localtime', which differ per machine.
    if name not in _known_zones() or name in _HOST_LINKS:
        return f"unknown time zone '{name}': use an IANA name such as 'Europe/Paris' or 'UTC'"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone '{name}': use an IANA name such as 'Europe/Paris' or 'UTC'"
    return None


@functools.lru_cache(maxsize=1)
@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zones() -> tuple[str, ...]:
    """Every zone name ``timezone_error`` accepts, sorted (the OpenAPI lists them as an enum)."""
    return tuple(sorted(_known_zones() - _HOST_LINKS))


def _strip_names(value: str, index: int) -> str:
    for name in _NAMES.get(index, ()):
        value = re.sub(name, "0", value, flags=re.IGNORECASE)
    return value


def _has_aws_token(value: str) -> bool:
    rest = value.upper()
    for name in _MONTHS + _DAYS:  # 'JUL' and 'WED' are names, not AWS 'L' and 'W'
        rest = rest.replace(name, "0")
    return any(token in rest for token in ("?", "L", "W", "#"))


def _aws_refusal(text: str) -> str:
    suggestion = _unix_equivalent(text)
    return _AWS_REFUSED + (f"; write '{suggestion}' instead" if suggestion else "")


def _unix_equivalent(text: str) -> str | None:
    """The Unix form of an AWS expression, only when the translation is unambiguous."""
    rate = _RATE.fullmatch(text.strip())
    if rate:
        return _rate_equivalent(int(rate.group(1)), rate.group(2).lower().rstrip("s"))
    inner = text.strip()
    if inner.lower().startswith("cron(") and inner.endswith(")"):
        inner = inner[5:-1]
    fields = inner.split()
    if len(fields) != 6 or fields[5] != "*":
        return None
    minute, hour, dom, month, dow = fields[:5]
    if (dom == "?") == (dow == "?"):
        return None
    if any(ch.isdigit() for ch in dow):  # AWS counts days 1-7 from Sunday, Unix 0-6: not obvious
        return None
    candidate = " ".join((minute, hour, "*" if dom == "?" else dom, month, "*" if dow == "?" else dow))
    return candidate if cron_error(candidate) is None else None


def _rate_equivalent(amount: int, unit: str) -> str | None:
    if unit == "minute" and amount and 60 % amount == 0:
        return "* * * * *" if amount == 1 else f"*/{amount} * * * *"
    if unit == "hour" and amount and 24 % amount == 0:
        return "0 * * * *" if amount == 1 else f"0 */{amount} * * *"
    if unit == "day" and amount == 1:
        return "0 0 * * *"
    return None
