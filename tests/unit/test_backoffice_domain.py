"""The workspace's pure rules: what a response carries to staff, search, throttling, charts, settings."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from services.backoffice.domain import (
    bar_chart,
    daily_series,
    latest_per_respondent,
    normalise,
    spreadsheet_safe,
    texts_of,
    throttled_until,
)
from services.backoffice.settings import BackofficeSettings
from tests.backoffice_builders import T0, written

PARIS = ZoneInfo("Europe/Paris")


def test_texts_carry_comments_suggestions_and_feedback_but_no_respondent() -> None:
    response = written(
        "r1",
        "secret-key",
        0,
        comments={"d1": "Une API à jour", "d2": None},
        suggestions=[("Registre des fanfares", "Les fanfares", "DRAC")],
        platform=(4, None),
    )
    texts = texts_of(response, PARIS)
    assert [t["kind"] for t in texts] == ["improvement", "suggestion", "platform"]
    improvement, suggestion, platform = texts
    assert (improvement["dataset_id"], improvement["dataset_title"], improvement["kinds"]) == (
        "d1",
        "Titre d1",
        ["api_access"],
    )
    assert improvement["search"] == "une api a jour"
    assert (suggestion["group_key"], suggestion["holder"]) == ("title:registre des fanfares", "DRAC")
    assert "drac" in suggestion["search"]
    assert (platform["satisfaction"], platform["comment"]) == (4, None)
    assert all("secret-key" not in str(value) for text in texts for value in text.values())
    assert {t["day"] for t in texts} == {"2026-12-01"}


def test_a_response_without_text_or_feedback_gives_nothing() -> None:
    assert texts_of(written("r1", "a", 0, comments={"d1": None}, platform=(None, None)), PARIS) == []


def test_the_day_is_the_staff_time_zone_s() -> None:
    late = written("r1", "a", timedelta(hours=14, minutes=30).total_seconds(), platform=(3, None))  # 23:30 UTC
    assert texts_of(late, PARIS)[0]["day"] == "2026-12-02"


def test_latest_submission_per_respondent() -> None:
    chosen = latest_per_respondent(
        [written("r2", "a", 5), written("r1", "a", 1), written("r3", "b", 2), written("r0", "a", 5)]
    )
    assert sorted(r.response.response_id for r in chosen) == ["r2", "r3"]


def test_search_ignores_accents_case_and_spacing() -> None:
    assert normalise("  Données   ÉTÉ  ") == "donnees ete"


def test_sign_in_is_throttled_after_the_limit_within_the_window() -> None:
    window, now = timedelta(minutes=15), T0
    failures = [now - timedelta(minutes=m) for m in (20, 10, 8, 6, 4)]
    assert throttled_until(failures, now, window, limit=5) is None  # one of them is outside the window
    failures.append(now - timedelta(minutes=1))
    assert throttled_until(failures, now, window, limit=5) == now - timedelta(minutes=10) + window


def test_days_without_respondents_are_listed_with_a_running_total() -> None:
    start = T0.date()
    assert daily_series({"2026-12-01": 2, "2026-12-03": 1}, start, start + timedelta(days=2)) == [
        ("2026-12-01", 2, 2),
        ("2026-12-02", 0, 2),
        ("2026-12-03", 1, 3),
    ]


def test_bars_are_proportional_to_the_largest() -> None:
    chart = bar_chart([("a", 2), ("b", 4), ("c", 0)])
    assert [bar.width for bar in chart.bars] == [chart.plot_width / 2, chart.plot_width, 0]
    assert bar_chart([("a", 0)]).bars[0].width == 0


def test_exported_cells_never_run_as_formulas() -> None:
    assert spreadsheet_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert spreadsheet_safe("Données") == "Données"


def test_production_refuses_the_development_staff_account() -> None:
    key = SecretStr(Fernet.generate_key().decode())
    with pytest.raises(ValidationError, match="COD_STAFF_BOOTSTRAP"):
        BackofficeSettings(environment="production", admin_token=SecretStr("x" * 40), followup_key=key)
    chosen = BackofficeSettings(
        environment="production",
        admin_token=SecretStr("x" * 40),
        staff_bootstrap=SecretStr("chef:long-password-1"),
        followup_key=key,
    )
    assert chosen.secure_cookies
    assert not BackofficeSettings().secure_cookies
    with pytest.raises(ValidationError, match="name:password"):
        BackofficeSettings(staff_bootstrap=SecretStr("no-colon"))
