"""The pages as people use them, in a real browser: Playwright drives
Debian's Chromium (``make install`` installs it with apt when it is missing
and apt is there) against a live server on the test database. Each
operations group logs in through the login form, opens the dashboard and
the admin pages the README names; the charts must draw data; a second
person approves a four-eyes request. Screenshots go to var/screenshots/ for
a person to look at.

Skipped only where no browser can be had: no Chromium at CHROMIUM (default
/usr/bin/chromium) or no Playwright package."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.utils import timezone

from controls.models import ApprovalRequest
from tests.e2e.scenario import GROUPS, PASSWORD, day_of_operations

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = settings.BASE_DIR / "var" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the admin pages the README and docs/operations.md send people to
README_PAGES = [
    "/admin/controls/approvalrequest/",
    "/admin/controls/alert/",
    "/admin/controls/auditevent/",
    "/admin/settlement/tradeexception/",
    "/admin/settlement/complianceexception/",
    "/admin/settlement/batch/",
    "/admin/settlement/leg/",
    "/admin/settlement/obligation/",
    "/admin/settlement/trade/",
    "/admin/settlement/prefundingcover/",
    "/admin/settlement/prefundinghold/",
    "/admin/settlement/prefundingfreeze/",
    "/admin/custody/break/",
    "/admin/custody/instruction/",
    "/admin/reserves/claim/",
    "/admin/reserves/reserveentry/",
    "/admin/reserves/insurancepolicy/",
    "/admin/registry/operator/",
    "/admin/registry/operatorapikey/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/operations/subscription/",
    "/admin/operations/notificationdelivery/",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (requirements-dev.txt)")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make install does it where apt is available)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an event loop on this thread; the test's own
    # database calls are synchronous all the same (the pages are served by the
    # live server's thread). Django's documented switch for this case:
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _chromium()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def _chromium():
    with sync_api.sync_playwright() as playwright:
        # Playwright gives each launch a fresh temporary profile; no network but the loopback
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def day(live_server):
    return day_of_operations(timezone.now())


def login(browser, live_server, username: str, *, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, timezone_id="Europe/London")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/ops/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/ops/")
    return page


def chart_points(page, name: str) -> int:
    """How many data points the chart drew (0 when it drew nothing)."""
    return page.evaluate(
        """(name) => {
            const chart = Chart.getChart(document.querySelector(`canvas[data-chart="${name}"]`));
            if (!chart) return 0;
            return chart.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null).length, 0);
        }""",
        name,
    )


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.para(15)
@pytest.mark.parametrize("group", GROUPS)
def test_each_group_sees_the_dashboard_with_charts_and_the_admin_pages(browser, live_server, day, group):
    page = login(browser, live_server, day.users[group].username)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.reload()

    banner = page.locator("#banner")
    assert "SETTLING" in banner.inner_text().upper()
    assert "Intraday settlement triggered" in banner.inner_text()
    for name in ("day", "counterparties", "ages", "reserve"):
        assert chart_points(page, name) > 0, name
    over = page.locator("tr.over-limit")
    assert over.count() == 1 and "SG1" in over.inner_text() and "over limit" in over.inner_text()
    approvals = page.locator("section:has(h2:has-text('Approvals waiting'))").inner_text()
    assert "declare JP1 in default" in approvals and "maker" in approvals and "{" not in approvals
    # nothing runs off the page at 1280 px
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert errors == []
    shot(page, f"dashboard-{group}")

    for url in README_PAGES:
        answer = page.goto(f"{live_server.url}{url}")
        assert answer is not None and answer.status == 200, (url, answer and answer.status)
        assert "Traceback" not in page.content()
        if group == "ops_viewer" and url in ("/admin/settlement/leg/", "/admin/settlement/batch/"):
            shot(page, "admin-" + url.strip("/").split("/")[-1])
    # the library's own API-key page (keys for no operator, refused by the API) is not offered
    assert page.goto(f"{live_server.url}/admin/rest_framework_api_key/apikey/").status == 404
    page.goto(f"{live_server.url}/admin/controls/approvalrequest/{day.default_request.id}/change/")
    assert "declare JP1 in default" in page.content()
    if group == "ops_viewer":
        shot(page, "admin-approval-request")
    page.context.close()


@pytest.mark.para(15)
def test_the_dashboard_fits_a_laptop_and_refreshes_without_a_reload(browser, live_server, day):
    page = login(browser, live_server, day.users["ops_viewer"].username, width=1366, height=768)
    page.goto(f"{live_server.url}/ops/?refresh=2")
    page.evaluate("window.__same_page = true")
    first = page.evaluate("document.body.dataset.refreshedAt")

    page.wait_for_function("(first) => document.body.dataset.refreshedAt !== first", arg=first, timeout=15_000)

    assert page.evaluate("window.__same_page") is True  # refreshed in place, not reloaded
    assert chart_points(page, "day") > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    shot(page, "dashboard-laptop-1366")
    page.context.close()


@pytest.mark.para(23)
def test_a_second_person_approves_a_four_eyes_request_in_the_admin(browser, live_server, day):
    page = login(browser, live_server, day.users["ops_approver"].username)
    page.goto(f"{live_server.url}/admin/controls/approvalrequest/?status__exact=pending")
    row = page.locator("#result_list tbody tr", has_text="declare JP1 in default")
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")

    assert f"approval {day.default_request.id}: approved" in page.locator("ul.messagelist").inner_text().lower()
    shot(page, "admin-approved")
    day.default_request.refresh_from_db()
    assert day.default_request.status == ApprovalRequest.Status.APPROVED
    assert day.default_request.decided_by == day.users["ops_approver"]
    page.context.close()


def test_the_requester_cannot_approve_their_own_request(browser, live_server, day):
    page = login(browser, live_server, "maker")
    page.goto(f"{live_server.url}/admin/controls/approvalrequest/")
    actions = page.locator("select[name=action] option").all_inner_texts()

    assert not any("Approve" in a for a in actions)  # an ops_operator is not offered the decision
    page.context.close()


def test_every_admin_page_of_the_project_opens_for_a_viewer(browser, live_server, day):
    page = login(browser, live_server, day.users["ops_viewer"].username)
    ours = ("controls", "registry", "settlement", "custody", "reserves", "operations", "django_celery_beat")
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label not in ours:
            continue
        answer = page.goto(f"{live_server.url}/admin/{meta.app_label}/{meta.model_name}/")
        assert answer is not None and answer.status == 200, meta.label
    page.context.close()
