"""The dashboard in a real headless Chromium against `modelcycle serve`: sign in, the accuracy
chart drawn from the store's evaluations, the stale warning, deciding a release, and the
refusals (no CSRF token, wrong password, expired session, unknown pages)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests
from itsdangerous import TimestampSigner
from playwright.sync_api import Page

from modelcycle.store import open_store
from modelcycle.store.evaluations import daily_metric, window_average
from tests.dashboard.conftest import (
    EVALUATED_DAYS,
    PASSWORD,
    SESSION_SECRET,
    Dashboard,
    csrf_of,
    sign_in,
    signed_in_session,
)
from tests.support.monitored import day

pytestmark = pytest.mark.slow


def _section(dashboard: Dashboard, model: str) -> str:
    return f'section.model[data-model="{model}"]'


def test_the_overview_draws_accuracy_per_day_and_the_7_day_average_from_the_store(
    page: Page, dashboard: Dashboard, screenshots: Path
) -> None:
    store = open_store(dashboard.settings)
    try:
        daily = daily_metric(store, dashboard.classifier)
    finally:
        store.close()
    assert [d.day for d in daily] == [day(n) for n in EVALUATED_DAYS]

    sign_in(page, dashboard, "vera")
    section = _section(dashboard, dashboard.classifier)
    page.wait_for_selector(f"{section} .mc-chart .main-svg")
    traces = page.evaluate(
        "sel => document.querySelector(sel).data.map(t => ({name: t.name, x: t.x, y: t.y}))",
        f"{section} .mc-chart",
    )
    accuracy, average = traces
    assert accuracy["x"] == [d.day.isoformat() for d in daily]
    assert accuracy["y"] == pytest.approx([d.accuracy for d in daily])
    assert average["name"] == "7-day average" and len(average["y"]) == len(daily)
    seven_day = window_average(daily, 7)
    assert seven_day is not None
    assert average["y"][-1] == pytest.approx(seven_day)
    assert page.inner_text(f"{section} .average-7d") == f"{seven_day:.3f}"
    # drawn points, not just data: one marker per evaluated day
    assert page.locator(
        f"{section} .mc-chart .scatterlayer .trace:first-child .point"
    ).count() == len(daily)
    # the version the champion had is marked; v1 served every day
    assert page.evaluate(
        "sel => document.querySelector(sel).layout.annotations.map(a => a.text)",
        f"{section} .mc-chart",
    ) == ["v1"]
    assert page.inner_text(f"{section} .champion .version") == "v1"
    assert page.locator(f"{section} .stale").count() == 0
    assert page.locator(f"{section} table.drift tr").count() > 1
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)


def test_an_old_champion_shows_the_stale_warning(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "vera")
    warning = page.locator(f"{_section(dashboard, dashboard.release_model)} .stale")
    assert warning.is_visible()
    assert "Stale model" in warning.inner_text() and "over 36 h" in warning.inner_text()


def test_an_approver_approves_a_pending_release_and_the_overview_shows_the_new_champion(
    page: Page, dashboard: Dashboard, screenshots: Path
) -> None:
    section = _section(dashboard, dashboard.release_model)
    sign_in(page, dashboard, "alice")
    assert page.inner_text(f"{section} .champion .version") == "v1"

    page.goto(f"{dashboard.url}/releases")
    page.click(f"a[href='/releases/{dashboard.pending_id}']")
    assert page.inner_text(".state") == "pending"
    assert page.locator("table.gates tr.good").count() == 2
    page.screenshot(path=str(screenshots / "release.png"), full_page=True)
    page.fill("form.approve input[name=comment]", "looks right")
    page.click("form.approve button")
    page.wait_for_url(f"{dashboard.url}/releases/{dashboard.pending_id}")
    assert page.inner_text(".state") == "approved"
    assert "alice" in page.inner_text("table.decisions")

    page.goto(f"{dashboard.url}/dashboard")
    assert page.inner_text(f"{section} .champion .version") == "v2"
    aliases = dashboard.client.get_registered_model(dashboard.release_model).aliases
    assert str(aliases["champion"]) == "2"


def test_a_viewer_sees_no_decision_form_and_cannot_post_one(
    page: Page, dashboard: Dashboard
) -> None:
    sign_in(page, dashboard, "vera")
    page.goto(f"{dashboard.url}/releases/{dashboard.pending_id}")
    assert page.locator("form.approve").count() == 0
    session = signed_in_session(dashboard, "vera")
    token = csrf_of(session.get(f"{dashboard.url}/releases", timeout=30).text)
    refused = session.post(
        f"{dashboard.url}/releases/{dashboard.pending_id}/approve",
        data={"csrf_token": token},
        timeout=30,
    )
    assert refused.status_code == 403 and "needs the approver role" in refused.text


def test_a_form_without_its_csrf_token_is_refused(dashboard: Dashboard) -> None:
    anonymous = requests.Session()
    anonymous.get(f"{dashboard.url}/signin", timeout=30)
    refused = anonymous.post(
        f"{dashboard.url}/signin", data={"username": "vera", "password": PASSWORD}, timeout=30
    )
    assert refused.status_code == 403 and "CSRF" in refused.text

    session = signed_in_session(dashboard, "vera")
    forged = session.post(
        f"{dashboard.url}/signout", data={"csrf_token": "not-the-token"}, timeout=30
    )
    assert forged.status_code == 403
    assert session.get(f"{dashboard.url}/dashboard", timeout=30).url.endswith("/dashboard")


def test_a_wrong_password_gets_the_same_answer_whether_or_not_the_user_exists(
    dashboard: Dashboard,
) -> None:
    answers = []
    for name in ("lena", "nobody-by-this-name"):
        session = requests.Session()
        token = csrf_of(session.get(f"{dashboard.url}/signin", timeout=30).text)
        answer = session.post(
            f"{dashboard.url}/signin",
            data={"username": name, "password": "not the password", "csrf_token": token},
            timeout=30,
        )
        answers.append((answer.status_code, answer.text.count("wrong user name or password")))
    assert answers == [(401, 1), (401, 1)]


def test_repeated_wrong_passwords_pause_sign_in_for_that_user(dashboard: Dashboard) -> None:
    session = requests.Session()
    statuses = []
    for password in ["wrong"] * 5 + [PASSWORD]:
        token = csrf_of(session.get(f"{dashboard.url}/signin", timeout=30).text)
        answer = session.post(
            f"{dashboard.url}/signin",
            data={"username": "walt", "password": password, "csrf_token": token},
            timeout=30,
        )
        statuses.append(answer.status_code)
    assert statuses == [401] * 5 + [429]
    assert "too many failed sign-ins" in answer.text
    signed_in_session(dashboard, "vera")  # another user from the same address still signs in


def _cookie(payload: dict[str, str], age_seconds: int) -> str:
    """A session cookie as the server signs it, made `age_seconds` ago."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    data = base64.b64encode(json.dumps(payload).encode())
    return Then(SESSION_SECRET).sign(data).decode()


def test_an_expired_session_goes_back_to_sign_in(dashboard: Dashboard) -> None:
    session = signed_in_session(dashboard, "vera")
    payload = json.loads(
        base64.b64decode(session.cookies["modelcycle_session"].split(".")[0] + "==")
    )
    max_age = dashboard.settings.session_max_age_seconds
    for cookie in (_cookie(payload, max_age + 60), "garbage.not.signed"):
        answer = requests.get(
            f"{dashboard.url}/dashboard",
            cookies={"modelcycle_session": cookie},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=/dashboard"
    fresh = requests.get(
        f"{dashboard.url}/dashboard",
        cookies={"modelcycle_session": _cookie(payload, 60)},
        allow_redirects=False,
        timeout=30,
    )
    assert fresh.status_code == 200


def test_unknown_models_and_releases_get_a_friendly_404_page(dashboard: Dashboard) -> None:
    session = signed_in_session(dashboard, "vera")
    for path, words in (
        ("/models/no-such-model", "no registered model 'no-such-model'"),
        ("/releases/987654", "987654"),
        ("/releases/not-a-number", "no release request"),
    ):
        answer = session.get(f"{dashboard.url}{path}", timeout=30)
        assert answer.status_code == 404, path
        assert "Not found" in answer.text and words.replace("'", "&#39;") in answer.text


def test_the_model_page_puts_versions_side_by_side(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard, "vera", f"/models/{dashboard.classifier}")
    table = page.inner_text("table.side-by-side")
    assert "v1" in table and "data hash" in table and "accuracy" in table
    assert page.locator("table.evaluations tr").count() >= len(EVALUATED_DAYS) + 1


def test_a_customer_account_is_refused_the_team_pages(dashboard: Dashboard) -> None:
    session = signed_in_session_for_customer(dashboard)
    token = csrf_of(session.get(f"{dashboard.url}/signin", timeout=30).text)
    signed_in = session.post(
        f"{dashboard.url}/signin",
        data={"username": "carla", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.headers["location"] == "/fleet"  # their home, not the team's overview
    answer = session.get(f"{dashboard.url}/dashboard", timeout=30)
    assert answer.status_code == 403 and "customer account" in answer.text


def signed_in_session_for_customer(dashboard: Dashboard) -> requests.Session:
    session = requests.Session()
    token = csrf_of(session.get(f"{dashboard.url}/signin", timeout=30).text)
    session.post(
        f"{dashboard.url}/signin",
        data={"username": "carla", "password": PASSWORD, "csrf_token": token},
        timeout=30,
    )
    return session


def test_every_page_has_a_json_twin(dashboard: Dashboard) -> None:
    overview = dashboard.api("/v1/dashboard").json()
    classifier = next(m for m in overview["models"] if m["name"] == dashboard.classifier)
    assert [d["day"] for d in classifier["accuracy"]] == [str(day(n)) for n in EVALUATED_DAYS]
    stale = next(m for m in overview["models"] if m["name"] == dashboard.release_model)
    assert stale["age"]["stale"] is True
    versions = dashboard.api(f"/v1/models/{dashboard.classifier}/versions").json()
    assert versions["versions"][0]["lineage"]["data_hash"]
    assert dashboard.api("/v1/models/no-such-model/versions").status_code == 404
    detail = dashboard.api(f"/v1/releases/{dashboard.pending_id}/detail").json()
    assert detail["request"]["model"] == dashboard.release_model
    no_key = requests.get(f"{dashboard.url}/v1/dashboard", timeout=30)
    assert no_key.status_code == 401
