"""The customer's /fleet pages on a real `modelcycle serve` over a real scored lake: a customer
user signs in (headless Chromium), sees only their devices, filters and searches them, and opens
a device whose Plotly charts carry its hourly sensor means, its scores and both thresholds;
another customer's device is the 404 page by URL and absent from search and filter.

The lake, scores and alerts are those of the `/v1/fleet` JSON tests (`tests/serving/
test_fleet_api.py`): a simulated fleet of 3 customers, scored on its last day by both models.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page

from modelcycle.access.identity import Role
from modelcycle.access.passwords import set_password
from modelcycle.access.users import add_user
from modelcycle.settings import Settings
from modelcycle.store import open_store
from tests.dashboard.conftest import PASSWORD, SESSION_SECRET, csrf_of
from tests.serving.test_fleet_api import DAYS, START, scored_fleet
from tests.support.api import start_api
from tests.support.cli import invoke_cli
from tests.support.servers import LOOPBACK, free_port

pytestmark = pytest.mark.slow

# name -> customer (None: a team user)
PEOPLE = {"cara": "cust-00", "bert": "cust-01", "tess": None}


@dataclass(frozen=True)
class FleetSite:
    url: str
    owners: dict[str, str]  # device -> customer

    def owned(self, customer: str) -> list[str]:
        return sorted(d for d, c in self.owners.items() if c == customer)


@pytest.fixture(scope="module")
def fleet_site(
    tmp_path_factory: pytest.TempPathFactory, server_log_dir: Path
) -> Iterator[FleetSite]:
    home = tmp_path_factory.mktemp("fleet-pages")
    rules = scored_fleet(home)
    database_url = f"sqlite:///{home / 'store.db'}"
    env = {
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_DATABASE_URL": database_url,
        "MODELCYCLE_TRACKING_URI": f"http://{LOOPBACK}:{free_port()}",
        "MODELCYCLE_ALERT_RULES": str(rules),
        "MODELCYCLE_ENVIRONMENT": "prod",
        "MODELCYCLE_SESSION_SECRET": SESSION_SECRET,
    }
    assert invoke_cli("db", "upgrade", env=env).returncode == 0
    invoke_cli("alerts", "check", "--date", str(START + timedelta(days=DAYS - 1)), env=env)
    store = open_store(Settings(home=home, database_url=database_url))
    try:
        with store.session() as session:
            for name, customer in PEOPLE.items():
                add_user(session=session, name=name, role=Role.VIEWER, customer_id=customer)
                set_password(session=session, name=name, password=PASSWORD)
    finally:
        store.close()
    with (home / "raw" / "devices.csv").open() as register:
        owners = {row["device_id"]: row["customer_id"] for row in csv.DictReader(register)}
    with start_api(env, server_log_dir) as api:
        yield FleetSite(url=api.url, owners=owners)


def _session(site: FleetSite, name: str) -> requests.Session:
    session = requests.Session()
    token = csrf_of(session.get(f"{site.url}/signin?next=/fleet", timeout=30).text)
    answer = session.post(
        f"{site.url}/signin",
        data={"username": name, "password": PASSWORD, "csrf_token": token, "next": "/fleet"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.url.endswith("/fleet"), answer.text[:500]
    return session


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="device status-[a-z_]+" data-device="([^"]+)"', html)


def test_a_customer_browses_their_fleet_and_a_device_chart_with_thresholds(
    page: Page, fleet_site: FleetSite, screenshots: Path
) -> None:
    mine = fleet_site.owned("cust-00")
    page.goto(f"{fleet_site.url}/fleet")
    page.fill("input[name=username]", "cara")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{fleet_site.url}/fleet")
    shown = page.eval_on_selector_all("tr.device", "rows => rows.map(r => r.dataset.device)")
    assert sorted(shown) == mine
    page.screenshot(path=str(screenshots / "fleet.png"), full_page=True)

    # search by part of an id: only that device
    page.fill("input[name=q]", mine[1])
    page.click(".fleet-filter button[type=submit]")
    page.wait_for_url(re.compile(r".*q=.*"))
    assert page.eval_on_selector_all("tr.device", "r => r.map(x => x.dataset.device)") == [mine[1]]

    # filter by a status some of them have: only devices in it
    page.fill("input[name=q]", "")
    status = page.eval_on_selector("tr.device", "r => r.className").split("status-")[1]
    page.select_option("select[name=status]", status)
    page.click(".fleet-filter button[type=submit]")
    page.wait_for_url(re.compile(rf".*status={status}.*"))
    classes = page.eval_on_selector_all("tr.device", "r => r.map(x => x.className)")
    assert classes and all(c == f"device status-{status}" for c in classes)
    assert len(classes) == int(page.inner_text(f".card.status-{status} .count"))

    # the device page: sensors drawn as points, scores with both thresholds as lines
    device = page.eval_on_selector("tr.device", "r => r.dataset.device")
    page.click(f'tr.device[data-device="{device}"] a')
    page.wait_for_selector(".fleet-scores .main-svg")
    page.wait_for_selector(".fleet-sensors .main-svg")
    assert page.inner_text("h1") == device
    sensor_points = page.evaluate(
        "() => document.querySelector('.fleet-sensors').data.map(t => t.y.length)"
    )
    assert sensor_points and all(n > 0 for n in sensor_points)
    assert page.locator(".fleet-sensors .scatterlayer .point").count() == sum(sensor_points)
    scores = page.evaluate(
        "() => document.querySelector('.fleet-scores').data.map(t => [t.name, t.y.length])"
    )
    assert scores == [["anomaly score", 24], ["fault probability", 24]]
    thresholds = page.evaluate(
        "() => document.querySelector('.fleet-scores').layout.shapes.map(s => [s.yref, s.y0])"
    )
    assert thresholds == [["y", 0.0], ["y2", 0.5]]
    assert page.locator(".fleet-scores .shapelayer path").count() >= 2
    assert page.locator("table.contributors tr").count() == 6  # a header and the top 5
    page.screenshot(path=str(screenshots / "fleet-device.png"), full_page=True)


def test_another_customers_device_is_the_404_page_and_absent_from_search_and_filter(
    fleet_site: FleetSite,
) -> None:
    cara = _session(fleet_site, "cara")
    theirs = fleet_site.owned("cust-01")[0]
    other = cara.get(f"{fleet_site.url}/fleet/devices/{theirs}", timeout=60)
    unknown = cara.get(f"{fleet_site.url}/fleet/devices/dev-nope", timeout=60)
    assert other.status_code == unknown.status_code == 404
    assert other.text.replace(theirs, "X") == unknown.text.replace("dev-nope", "X")
    for params in ({"q": theirs}, *({"q": theirs, "status": s} for s in ("healthy", "anomalous"))):
        found = cara.get(f"{fleet_site.url}/fleet", params=params, timeout=60)
        assert found.status_code == 200 and _rows(found.text) == []
        assert f"/fleet/devices/{theirs}" not in found.text  # the search box echoes the id
        assert '<p class="total">0 devices</p>' in found.text
    asked = cara.get(f"{fleet_site.url}/fleet", params={"customer": "cust-01"}, timeout=60)
    assert asked.status_code == 404 and theirs not in asked.text
    own = cara.get(f"{fleet_site.url}/fleet/devices/{fleet_site.owned('cust-00')[0]}", timeout=60)
    assert own.status_code == 200


def test_a_team_user_picks_a_customer_and_sorts_their_devices(fleet_site: FleetSite) -> None:
    tess = _session(fleet_site, "tess")
    picker = tess.get(f"{fleet_site.url}/fleet", timeout=60)
    assert picker.status_code == 200 and 'name="customer"' in picker.text
    assert _rows(picker.text) == []
    theirs = fleet_site.owned("cust-01")
    listed = tess.get(
        f"{fleet_site.url}/fleet", params={"customer": "cust-01", "sort": "-device_id"}, timeout=60
    )
    assert _rows(listed.text) == sorted(theirs, reverse=True)
    opened = tess.get(
        f"{fleet_site.url}/fleet/devices/{theirs[0]}", params={"customer": "cust-01"}, timeout=60
    )
    assert opened.status_code == 200 and "fleet-scores" in opened.text


def test_a_bad_status_or_sort_is_refused_on_one_line(fleet_site: FleetSite) -> None:
    cara = _session(fleet_site, "cara")
    for params, named in (({"status": "broken"}, "broken"), ({"sort": "colour"}, "colour")):
        answer = cara.get(f"{fleet_site.url}/fleet", params=params, timeout=60)
        assert answer.status_code == 422
        message = re.search(r'class="message">([^<]*)<', answer.text)
        assert message and named in message.group(1) and "\n" not in message.group(1)
