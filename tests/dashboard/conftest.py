"""A dashboard over real parts: `modelcycle serve` (uvicorn) on loopback in prod mode, the
monitored fleet's real models and evaluations in a real store, a real MLflow server, and Debian's
headless Chromium driven by Playwright (no browser download).

The classifier is the monitored fleet's: trained on days 1-3, evaluated by `modelcycle evaluate`
on days 4-6, drift from `modelcycle score`. In the detector's place sits a model of this module's
own, whose two versions were trained three days ago (stale) and whose second version waits for a
release decision, so approving it touches nothing another test module reads.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.tracking import MlflowClient
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr

from modelcycle.access.identity import Role
from modelcycle.access.passwords import set_password
from modelcycle.access.users import add_user, get_identity
from modelcycle.registry.contract import TRAINED_AT_TAG
from modelcycle.release.registry import ReleaseRegistry
from modelcycle.release.service import Releases
from modelcycle.settings import Settings
from modelcycle.store import open_store
from modelcycle.store.database import create_store_engine, upgrade
from tests.release.conftest import GATES_PASSED, register_versions
from tests.support.api import API_KEY, start_api
from tests.support.cli import invoke_cli
from tests.support.monitored import MonitoredFleet, day
from tests.support.registry import server_client
from tests.support.servers import MlflowServer, unique_name

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]
PASSWORD = "correct horse battery staple"
SESSION_SECRET = "dashboard-test-session-secret-5b2e"
EVALUATED_DAYS = (4, 5, 6)  # day 7 has no labels yet: the ledger ends early on day 7
TRAINED_HOURS_AGO = 72
# name -> role, customer; each test that signs in wrongly on purpose has a user of its own, so the
# sign-in limiter (per user and address) never locks out another test.
PEOPLE: dict[str, tuple[Role, str | None]] = {
    "vera": (Role.VIEWER, None),
    "otto": (Role.OPERATOR, None),
    "alice": (Role.APPROVER, None),
    "root": (Role.ADMIN, None),
    "carla": (Role.VIEWER, "customer-1"),
    "lena": (Role.VIEWER, None),
    "walt": (Role.VIEWER, None),
}


@dataclass(frozen=True)
class Dashboard:
    url: str
    settings: Settings
    classifier: str
    release_model: str
    pending_id: int
    client: MlflowClient
    log_path: Path

    def api(self, path: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def signed_in_session(dashboard: Dashboard, name: str) -> requests.Session:
    """A scripted browser: the sign-in page's token, then the form."""
    session = requests.Session()
    token = csrf_of(session.get(f"{dashboard.url}/signin", timeout=30).text)
    answer = session.post(
        f"{dashboard.url}/signin",
        data={"username": name, "password": PASSWORD, "csrf_token": token},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.url.endswith("/dashboard"), answer.text[:500]
    return session


def _evaluate_the_fleet(env: dict[str, str]) -> None:
    for n in EVALUATED_DAYS:
        result = invoke_cli("evaluate", "--date", str(day(n)), env=env)
        assert result.returncode == 0, result.stderr
    scored = invoke_cli("score", "--date", str(day(EVALUATED_DAYS[-1])), env=env)
    assert scored.returncode == 0, scored.stderr


def _stale_model_with_a_pending_release(settings: Settings, client: MlflowClient) -> int:
    model = settings.anomaly_model_name
    versions = register_versions(client, model, 2)
    trained = (datetime.now(UTC) - timedelta(hours=TRAINED_HOURS_AGO)).isoformat()
    for version in versions:
        client.set_model_version_tag(model, version, TRAINED_AT_TAG, trained)
    store = open_store(settings)
    try:
        with store.session() as session:
            for name, (role, customer) in PEOPLE.items():
                add_user(session=session, name=name, role=role, customer_id=customer)
                set_password(session=session, name=name, password=PASSWORD)
        releases = Releases(
            store=store,
            registry=ReleaseRegistry(client),
            environment="prod",
            auto_approve=False,
        )
        with store.session() as session:  # an operator asks; an approver decides
            requester = get_identity(session=session, name="otto")
        record = releases.open(
            model=model, version=versions[1], requested_by=requester, gates=GATES_PASSED
        )
    finally:
        store.close()
    return record.id


@pytest.fixture(scope="module")
def dashboard(
    monitored_fleet: MonitoredFleet,
    mlflow_sqlite_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Dashboard]:
    home = tmp_path_factory.mktemp("dashboard")
    database_url = f"sqlite:///{home / 'modelcycle.db'}"
    engine = create_store_engine(database_url)
    upgrade(engine)
    engine.dispose()
    fleet_env = {**monitored_fleet.env, "MODELCYCLE_DATABASE_URL": database_url}
    _evaluate_the_fleet(fleet_env)
    env = {
        **fleet_env,
        "MODELCYCLE_ENVIRONMENT": "prod",
        "MODELCYCLE_SESSION_SECRET": SESSION_SECRET,
        "MODELCYCLE_ANOMALY_MODEL_NAME": unique_name("dashboard-stale"),
        "MODELCYCLE_SERVING_CACHE_DIR": str(home / "serving-cache"),
        # Kept registry reads never expire here: a page showing a decision made through it
        # proves the decision forgot them.
        "MODELCYCLE_DASHBOARD_CACHE_SECONDS": "3600",
    }
    settings = Settings(
        environment="prod",
        home=Path(env["MODELCYCLE_HOME"]),
        database_url=database_url,
        tracking_uri=mlflow_sqlite_server.tracking_uri,
        classifier_model_name=monitored_fleet.classifier,
        anomaly_model_name=env["MODELCYCLE_ANOMALY_MODEL_NAME"],
        session_secret=SecretStr(SESSION_SECRET),
    )
    client = server_client(mlflow_sqlite_server.tracking_uri)
    pending = _stale_model_with_a_pending_release(settings, client)
    with start_api(env, home) as api:
        yield Dashboard(
            url=api.url,
            settings=settings,
            classifier=monitored_fleet.classifier,
            release_model=settings.anomaly_model_name,
            pending_id=pending,
            client=client,
            log_path=api.log_path,
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module.

    Playwright's sync API keeps an asyncio loop running in this thread while it is open, and
    tests of other modules on the same xdist worker call asyncio.run.
    """
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make tools` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test: no cookie carries over."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a test saves its screenshots: under its tmp_path, or the folder given with
    `--dashboard-screenshots DIR` (`make screenshots` passes docs/screenshots)."""
    chosen: Any = request.config.getoption("dashboard_screenshots")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Page, dashboard: Dashboard, name: str, target: str = "/dashboard") -> None:
    page.goto(f"{dashboard.url}{target}")
    assert "/signin" in page.url
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{dashboard.url}{target}")
