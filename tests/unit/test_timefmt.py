from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.timefmt import iso, parse_iso


def test_iso_pads_early_years_so_the_text_parses_back() -> None:
    moment = datetime(218, 9, 12, 23, 52, 46, 226000, tzinfo=UTC)
    assert iso(moment) == "0218-09-12T23:52:46.226Z"
    assert parse_iso(iso(moment)) == moment


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_parse_iso_reports_timestamps_outside_utc_range_as_bad_values(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_iso(text)
