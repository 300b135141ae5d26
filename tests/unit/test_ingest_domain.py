import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.ingest.domain import (
    ClientSignals,
    RateLimiter,
    Window,
    accept,
    agent_family,
    client_fingerprint,
    fill_seconds,
    form_errors,
    form_stamp,
    network_of,
    respondent_key,
    respondent_token,
    response_id_for,
    token_nonce,
    token_of,
    token_valid,
    window_at,
)
from shared.contracts import PRIVACY_NOTICE, ConsultationDefined, DatasetStatus, ResponseForm
from shared.edge import client_key

OPENS = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CLOSES = datetime(2027, 1, 31, 23, 59, tzinfo=UTC)
SECRET = b"k"
CONSULTATION = ConsultationDefined(
    event_id="e", occurred_at=OPENS, consultation_id="c1", title="t", opens_at=OPENS, closes_at=CLOSES
)
MS = timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("instant", "window"),
    [
        (OPENS - MS, Window.NOT_YET_OPEN),
        (OPENS, Window.OPEN),
        (CLOSES - MS, Window.OPEN),
        (CLOSES, Window.CLOSED),
        (CLOSES + MS, Window.CLOSED),
    ],
)
def test_the_window_includes_its_opening_and_excludes_its_closing_instant(instant: datetime, window: Window) -> None:
    assert window_at(CONSULTATION, instant) is window


def form(**fields: object) -> ResponseForm:
    body = {
        "respondent": {"profile": "journalist"},
        "open_requests": [{"dataset_id": "d1", "priority": "useful"}],
        "consent": {"accepted": True, "notice": PRIVACY_NOTICE},
    }
    return ResponseForm.model_validate(body | fields)


def test_without_a_token_a_retry_keeps_the_same_respondent() -> None:
    first, token1 = accept(form(), "c1", "rid-1", OPENS, SECRET)
    retry, token2 = accept(form(), "c1", "rid-1", OPENS + MS, SECRET)
    other, token3 = accept(form(), "c1", "rid-2", OPENS, SECRET)
    assert token1 == token2 != token3
    assert first.respondent_key == retry.respondent_key != other.respondent_key


def test_a_token_makes_submissions_one_respondent_and_never_travels_in_clear() -> None:
    token = respondent_token(SECRET, "c1", "r0")
    one, returned = accept(form(respondent={"profile": "journalist", "token": token}), "c1", "r1", OPENS, SECRET)
    two, _ = accept(form(respondent={"profile": "journalist", "token": token}), "c1", "r2", OPENS, SECRET)
    assert returned == token
    assert one.respondent_key == two.respondent_key == respondent_key(SECRET, "c1", token)
    assert token not in one.model_dump_json()


def test_idempotency_keys_map_to_stable_response_ids() -> None:
    assert response_id_for("key-1", "random") == response_id_for("key-1", "other")
    assert response_id_for(None, "random") == "random"
    assert respondent_token(SECRET, "c1", "r") != respondent_token(SECRET, "c2", "r")
    assert respondent_token(SECRET, "c1", "r") == respondent_token(SECRET, "c1", "r")  # a retried POST


def test_only_tokens_ingest_issued_are_valid() -> None:
    issued = respondent_token(SECRET, "c1", "r1")
    assert token_valid(SECRET, "c1", issued)
    assert not token_valid(SECRET, "c2", issued)  # bound to its consultation
    assert not token_valid(b"another secret", "c1", issued)
    for invented in ("aaaaaaaaaaaaaaaa", "A" * 32, issued[:-1] + ("A" if issued[-1] != "A" else "B"), "!!!"):
        assert not token_valid(SECRET, "c1", invented), invented
    assert token_of(SECRET, "c1", token_nonce(issued)) == issued


@pytest.mark.parametrize(
    "fields",
    [
        {"open_requests": []},
        {"open_requests": [{"dataset_id": "d1", "priority": "useful"}] * 2},
        {"improvement_requests": [{"dataset_id": "d1", "kinds": ["licence"]}]},
        {"improvement_requests": [{"dataset_id": "o1", "kinds": []}]},
        {"improvement_requests": [{"dataset_id": "o1", "kinds": ["licence", "licence"]}]},
        {"suggestions": [{"title": "x" * 201}]},
        {"open_requests": [{"dataset_id": f"d{i}", "priority": "useful"} for i in range(51)]},
        {"respondent": {"profile": "astronaut"}},
        {"respondent": {"profile": "student", "departement": "20"}},
        {"respondent": {"profile": "student", "region": "99"}},
        {"respondent": {"profile": "student", "departement": "75", "region": "84"}},
        {"respondent": {"profile": "student", "email": "not an address"}},
        {"consent": {"accepted": False, "notice": PRIVACY_NOTICE}},
        {"platform": {"satisfaction": 6}},
        {"unexpected": True},
    ],
)
def test_invalid_forms_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        form(**fields)


def test_an_email_is_never_an_identity() -> None:
    respondent = {"profile": "researcher", "email": "Jeanne.Martin@example.org"}
    first, token1 = accept(form(respondent=respondent), "c1", "r1", OPENS, SECRET)
    again = {"profile": "researcher", "email": " jeanne.martin@EXAMPLE.org "}
    second, token2 = accept(form(respondent=again), "c1", "r2", OPENS + MS, SECRET)
    assert token1 != token2
    assert first.respondent_key != second.respondent_key
    assert "jeanne" not in first.model_dump_json().lower()


def test_the_event_carries_no_organisation_territory_or_email() -> None:
    respondent = {"profile": "tourism", "departement": "2A", "organisation": "Office", "email": "a@example.org"}
    event, _ = accept(form(respondent=respondent), "c1", "r1", OPENS, SECRET)
    assert (event.organisation, event.departement, event.region, event.email_hash) == (None, None, None, None)


CATALOGUE = {"census-a": DatasetStatus.NOT_OPEN, "open-b": DatasetStatus.OPEN}


def test_the_catalogue_decides_what_can_be_opened_or_improved() -> None:
    ok = form(
        open_requests=[{"dataset_id": "census-a", "priority": "essential"}],
        improvement_requests=[{"dataset_id": "open-b", "kinds": ["api_access"]}],
    )
    assert form_errors(ok, CATALOGUE.get) == []
    wrong = form(
        open_requests=[
            {"dataset_id": "open-b", "priority": "essential"},
            {"dataset_id": "nowhere", "priority": "useful"},
        ],
        improvement_requests=[{"dataset_id": "census-a", "kinds": ["api_access"]}],
    )
    errors = form_errors(wrong, CATALOGUE.get)
    assert [e.pointer for e in errors] == [
        "/open_requests/0/dataset_id",
        "/open_requests/1/dataset_id",
        "/improvement_requests/0/dataset_id",
    ]
    assert "déjà ouvert" in errors[0].detail
    assert "already open" in errors[0].detail
    assert "pas au catalogue" in errors[1].detail
    assert "pas encore ouvert" in errors[2].detail


def test_consent_must_refer_to_the_notice_in_force() -> None:
    stale = form(consent={"accepted": True, "notice": "2020-01"})
    assert [e.pointer for e in form_errors(stale, {"d1": DatasetStatus.NOT_OPEN}.get)] == ["/consent/notice"]


def test_the_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.retry_after("a", 0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.retry_after("a", 0.0)
    assert wait == pytest.approx(1.0)
    assert limiter.retry_after("b", 0.0) is None
    assert limiter.retry_after("a", 1.0) is None
    assert limiter.retry_after("a", 1.0) is not None


def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    # Behind the ingress: the client's own entries on the left count for nothing.
    assert client_key("10.1.2.3", "6.6.6.6, 203.0.113.9", proxies) == "203.0.113.9"
    assert client_key("10.1.2.3", "1.1.1.1, 203.0.113.9, 10.9.9.9", proxies) == "203.0.113.9"
    rotated = {client_key("10.1.2.3", f"{n}.{n}.{n}.{n}, 203.0.113.9", proxies) for n in range(1, 50)}
    assert rotated == {"203.0.113.9"}
    # Not behind a trusted proxy: the header is the client's own writing and ignored.
    assert client_key("198.51.100.7", "203.0.113.9", proxies) == "198.51.100.7"
    assert client_key("198.51.100.7", None, []) == "198.51.100.7"
    # IPv6 clients are keyed by their /64.
    assert client_key("fd00::1", "2001:db8:1:2:aaaa::1", proxies) == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2::5", None, proxies) == client_key("2001:db8:1:2::6", None, proxies)


def test_a_client_is_known_only_by_its_network_and_browser_family_hashed() -> None:
    assert network_of("203.0.113.57") == "203.0.113.0/24"
    assert network_of("2001:db8:1:2::/64") == "2001:db8:1::/48"
    assert network_of("2001:db8:1:2:aaaa::1") == "2001:db8:1::/48"
    assert network_of("unknown") == "unknown"
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0"
    assert (agent_family(firefox), agent_family(edge), agent_family("curl/8.5.0"), agent_family(None)) == (
        "firefox",
        "edge",
        "curl",
        "none",
    )
    same_network = client_fingerprint(SECRET, "c1", ClientSignals("203.0.113.0/24", "firefox"))
    assert same_network == client_fingerprint(SECRET, "c1", ClientSignals(network_of("203.0.113.200"), "firefox"))
    assert same_network != client_fingerprint(SECRET, "c1", ClientSignals("198.51.100.0/24", "firefox"))
    assert same_network != client_fingerprint(SECRET, "c2", ClientSignals("203.0.113.0/24", "firefox"))
    assert "203.0.113" not in same_network


def test_the_fill_time_comes_from_a_stamp_only_ingest_can_sign() -> None:
    stamp = form_stamp(SECRET, "c1", OPENS)
    assert fill_seconds(SECRET, "c1", stamp, OPENS + timedelta(seconds=95)) == 95.0
    assert fill_seconds(SECRET, "c2", stamp, OPENS + timedelta(seconds=95)) is None
    forged = f"{int(OPENS.timestamp() * 1000) - 600_000}.{stamp.split('.')[1]}"
    assert fill_seconds(SECRET, "c1", forged, OPENS) is None
    assert fill_seconds(SECRET, "c1", None, OPENS) is None
    assert fill_seconds(SECRET, "c1", "not a stamp", OPENS) is None


def test_the_event_carries_the_client_signals_not_the_client() -> None:
    event, _ = accept(form(), "c1", "r1", OPENS, SECRET, ClientSignals("203.0.113.0/24", "firefox", 42.5))
    assert event.fill_seconds == 42.5
    assert event.client_fingerprint
    assert "203.0.113" not in event.model_dump_json()
