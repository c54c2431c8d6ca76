"""The authorization matrix (docs/operations.md, "Who may do what"): every
admin page x operations group, and every API operation x principal.

The expectations below are the one source of truth; the tables in
docs/operations.md must say the same (checked here), and every admin model
and every URL under /api/v1/ must appear in them, so a new page or endpoint
cannot arrive without a decision about who may use it.
"""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from controls.admin import ProposedChangeAdmin
from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.conftest import api_client_for, staff_client
from tests.factories import trade

pytestmark = pytest.mark.django_db
GROUPS = ("ops_viewer", "ops_operator", "ops_approver")
DOCS = settings.BASE_DIR / "docs" / "operations.md"

# --- the admin: what each group may do on each page --------------------------------------------
# view: the list and the record open; propose: add, change and delete are
# proposals a different ops_approver approves; add / change: saved at once
# through an audited service; act: the page's actions that work a queue or
# ask for four eyes; decide: approve and reject.
V, P, ACT = "view", "view, propose", "view, act"
ADMIN: dict[str, tuple[str, str, str]] = {
    "controls.Alert": (V, ACT, ACT),
    "controls.ApprovalRequest": (V, V, "view, decide"),
    "controls.AuditEvent": (V, V, V),
    "django_celery_beat.ClockedSchedule": (V, P, P),
    "django_celery_beat.CrontabSchedule": (V, P, P),
    "django_celery_beat.IntervalSchedule": (V, P, P),
    "django_celery_beat.PeriodicTask": (V, "view, propose, act", "view, propose, act"),
    "django_celery_beat.SolarSchedule": (V, P, P),
    "registry.Account": (V, P, P),
    "registry.Asset": (V, P, P),
    "registry.BankAccount": (V, P, P),
    "registry.Custodian": (V, P, P),
    "registry.Jurisdiction": (V, P, P),
    "registry.Mark": (V, V, V),
    "registry.Operator": (V, P, P),
    "registry.OperatorAPIKey": (V, V, V),
    "registry.Rail": (V, P, P),
    "registry.Wallet": (V, P, P),
    "registry.WalletBalance": (V, "view, add, change", "view, add, change"),
    "settlement.Batch": (V, ACT, ACT),
    "settlement.CounterpartyExclusion": (V, ACT, ACT),
    "settlement.CarriedCredit": (V, V, V),
    "settlement.SettlementStatement": (V, V, V),
    "settlement.CapConfig": (V, V, V),
    "settlement.ComplianceException": (V, ACT, ACT),
    "settlement.Cycle": (V, V, V),
    "settlement.CycleRequest": (V, V, V),
    "settlement.Delivery": (V, V, V),
    "settlement.ExposurePosition": (V, V, V),
    "settlement.Leg": (V, ACT, ACT),
    "settlement.Obligation": (V, V, V),
    "settlement.Trade": (V, V, V),
    "settlement.TradeException": (V, ACT, ACT),
    "settlement.TradeIngest": (V, V, V),
    "settlement.PrefundingBalance": (V, V, V),
    "settlement.PrefundingHold": (V, V, V),
    "settlement.FundingEvent": (V, V, V),
    "settlement.PrefundingSettlement": (V, V, V),
    "settlement.PrefundingCover": (V, V, V),
    "settlement.CustodianAttestation": (V, V, V),
    "settlement.PrefundingFreeze": (V, ACT, ACT),
    "settlement.OpenOrdersSnapshot": (V, V, V),
    "custody.BalanceReport": (V, V, V),
    "custody.BankStatement": (V, V, V),
    "custody.Break": (V, "view, change, act", "view, change, act"),
    "custody.ChainCursor": (V, V, V),
    "custody.Instruction": (V, ACT, ACT),
    "custody.Movement": (V, V, V),
    "reserves.Claim": (V, ACT, ACT),
    "reserves.Default": (V, V, V),
    "reserves.ExposureSnapshot": (V, V, V),
    "reserves.InsurancePolicy": (V, "view, add, change", "view, add, change"),
    "reserves.ReserveEntry": (V, V, V),
    "reserves.ReserveFund": (V, P, P),
    "reserves.TrustBalanceCheck": (V, V, V),
    "reserves.TrustMatch": (V, V, V),
    "operations.Subscription": (V, "view, add, change, act", "view, add, change, act"),
    "operations.Notification": (V, V, V),
    "operations.NotificationDelivery": (V, V, V),
}
# pages outside the project's apps (users, groups, tokens): superusers only
OURS = ("controls", "registry", "settlement", "custody", "reserves", "operations", "django_celery_beat")

# --- the API: which principal may call each operation ------------------------------------------
PRINCIPALS = ("anonymous", "engine key", "SG1 key", "operations key", "ops_viewer", "ops_operator", "ops_approver")
KEYS = {"engine key", "SG1 key", "operations key"}
STAFF = {"ops_viewer", "ops_operator", "ops_approver"}
WRITERS = {"ops_operator", "ops_approver"}
APPROVER = {"ops_approver"}
API: dict[str, set[str]] = {
    "GET /api/v1/whoami": KEYS,
    "POST /api/v1/trades": {"engine key"},
    "GET /api/v1/exposure": {"engine key", "operations key"},
    "POST /api/v1/exposure/check": {"engine key"},
    "GET /api/v1/marks": {"engine key", "operations key"},
    "POST /api/v1/marks": {"engine key", "operations key"},
    "GET /api/v1/obligations": KEYS,
    "GET /api/v1/cycles": KEYS,
    "POST /api/v1/cycles": {"operations key"},
    "GET /api/v1/cycles/{id}": KEYS,
    "POST /api/v1/legs/{id}/deliveries": KEYS,
    "GET /api/v1/ops/approvals": STAFF,
    "POST /api/v1/ops/approvals/{id}/approve": APPROVER,
    "POST /api/v1/ops/approvals/{id}/reject": APPROVER,
    "POST /api/v1/ops/rails/{code}/status": WRITERS,
    "GET /api/v1/ops/assets/{code}/haircut": STAFF,
    "POST /api/v1/ops/assets/{code}/haircut": WRITERS,
    "POST /api/v1/ops/cycles": WRITERS,
    "POST /api/v1/ops/legs/{id}/confirm": WRITERS,
    # DVP (section 7): the counterparty affirms or disputes its own batches
    "GET /api/v1/batches": {"SG1 key", "operations key"},
    "GET /api/v1/credits": KEYS,
    "GET /api/v1/statements/{day}": {"SG1 key", "operations key"},
    "POST /api/v1/batches/{id}/affirm": {"SG1 key"},
    "POST /api/v1/batches/{id}/dispute": {"SG1 key"},
    "POST /api/v1/ops/batches/{id}/hold": WRITERS,
    "POST /api/v1/ops/batches/{id}/release": WRITERS,
    "POST /api/v1/ops/counterparties/{code}/exclude": WRITERS,
    "POST /api/v1/ops/counterparties/{code}/include": WRITERS,
    "GET /api/v1/ops/breaks": STAFF,
    "GET /api/v1/ops/breaks/{id}": STAFF,
    "POST /api/v1/ops/breaks/{id}/resolve": WRITERS,
    "POST /api/v1/ops/breaks/{id}/take": WRITERS,
    "POST /api/v1/ops/statements": WRITERS,
    "POST /api/v1/ops/balance-reports": WRITERS,
    "GET /api/v1/ops/instructions": STAFF,
    "POST /api/v1/ops/instructions/take": WRITERS,
    "GET /api/v1/ops/reserve": STAFF,
    "POST /api/v1/ops/reserve/entries": WRITERS,
    "POST /api/v1/ops/cap": WRITERS,
    "POST /api/v1/ops/defaults": WRITERS,
    "GET /api/v1/ops/defaults": STAFF,
    "GET /api/v1/ops/defaults/{id}": STAFF,
    "POST /api/v1/ops/defaults/{id}/recoveries": WRITERS,
    "GET /api/v1/ops/insurance": STAFF,
    "GET /api/v1/ops/claims": STAFF,
    "POST /api/v1/ops/claims": WRITERS,
    "GET /api/v1/ops/claims/{id}": STAFF,
    "POST /api/v1/ops/claims/{id}/approve": WRITERS,
    "POST /api/v1/ops/claims/{id}/reject": APPROVER,
    "POST /api/v1/ops/claims/{id}/buy-ins": WRITERS,
    "GET /api/v1/ops/claims/{id}/statement": STAFF,
    # prefunding (circular para 10): an operator's key reads and funds its own
    # accounts only, so a path naming another operator is refused to it
    "POST /api/v1/prefunding/holds": {"engine key"},
    "POST /api/v1/prefunding/holds/batch": {"engine key"},
    "GET /api/v1/prefunding/holds/{operator}/{id}": {"engine key", "operations key"},
    "PATCH /api/v1/prefunding/holds/{operator}/{id}": {"engine key"},
    "DELETE /api/v1/prefunding/holds/{operator}/{id}": {"engine key"},
    "POST /api/v1/prefunding/funding-events": {"SG1 key", "operations key"},
    "GET /api/v1/prefunding/accounts/{operator}/{account}": {"engine key", "operations key"},
    "GET /api/v1/prefunding/cover": KEYS,
    "POST /api/v1/prefunding/open-orders": {"engine key"},
    "GET /api/v1/prefunding/open-orders/{id}": {"engine key", "operations key"},
    "POST /api/v1/ops/prefunding/freeze": WRITERS,
    "GET /api/v1/ops/prefunding/freezes": STAFF,
    "POST /api/v1/ops/notifications/subscriptions/{id}/test": WRITERS,
    "POST /api/v1/ops/prefunding/freeze/{id}/lift": WRITERS,
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


# --- the admin -------------------------------------------------------------------------------------


def ops_user(name: str, group: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def abilities(model_admin, user: User) -> str:
    """What ``user`` may do on the page, in the words of the matrix."""
    request = RequestFactory().get("/admin/")
    request.user = user
    if not model_admin.has_view_or_change_permission(request):
        return "none"
    parts = ["view"]
    writes = [name for name in ("add", "change", "delete") if getattr(model_admin, f"has_{name}_permission")(request)]
    if isinstance(model_admin, ProposedChangeAdmin):
        if writes:
            assert writes == ["add", "change", "delete"], (model_admin, writes)
            parts.append("propose")
    else:
        parts += writes
    offered = model_admin.get_actions(request)
    needs = {perm for action, _, _ in offered.values() for perm in getattr(action, "allowed_permissions", ())}
    parts += [perm for perm in ("act", "decide") if perm in needs]
    return ", ".join(parts)


@pytest.fixture
def populated(network):
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    trades_ingest(
        items=[{**trade(), "executed_at": (monday - timedelta(hours=1)).isoformat()}, trade(base="DOGE")],
        actor="engine",
        now=monday,
    )
    return cycle_run(kind="intraday", as_of=monday, actor="test")


def test_every_admin_page_is_in_the_matrix():
    ours = {m._meta.label for m in admin.site._registry if m._meta.app_label in OURS}
    assert ours == set(ADMIN)


@pytest.mark.para(23)
@pytest.mark.parametrize("group", GROUPS)
def test_admin_matrix(client, populated, group):
    user = ops_user(f"user-{group}", group)
    client.force_login(user)
    seen = {}
    for model, model_admin in admin.site._registry.items():
        label, meta = model._meta.label, model._meta
        expected = ADMIN[label][GROUPS.index(group)] if label in ADMIN else "none"
        seen[label] = abilities(model_admin, user)
        listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert listing.status_code == (403 if expected == "none" else 200), (label, group)
        add_page = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        may_add = "add" in expected.split(", ") or "propose" in expected
        assert add_page.status_code == (200 if may_add else 403), (label, group)
        first = model._default_manager.first()
        if first is not None and expected != "none":
            page = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
            assert page.status_code == 200, (label, group)
        assert seen[label] == expected, (label, group)


# --- the API ------------------------------------------------------------------------------------------


def _parameter(match: re.Match) -> str:
    """A path parameter as the docs show it: {id} for ids, else its name."""
    name = match[1]
    return "{id}" if name == "id" or name.endswith("_id") else "{" + name + "}"


def api_operations() -> list[tuple[str, str, str]]:
    """(method, documented path, path to call) for every view under /api/v1/."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    found = []
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/") or route.startswith(("api/v1/schema", "api/v1/docs")):
            continue
        view = getattr(pattern.callback, "view_class", None)
        documented = "/" + re.sub(r"<(?:\w+:)?(\w+)>", _parameter, route)
        called = re.sub(r"\{\w+\}", lambda m: "999999" if m[0] == "{id}" else "nope", documented)
        for method in HTTP_METHODS:
            if view is not None and hasattr(view, method):
                found.append((method.upper(), documented, called))
    return found


def test_every_api_operation_is_in_the_matrix():
    assert {f"{method} {path}" for method, path, _ in api_operations()} == set(API)


@pytest.fixture
def principals(network) -> dict[str, APIClient]:
    return {
        "anonymous": APIClient(),
        "engine key": api_client_for(network.home, scope="engine"),
        "SG1 key": api_client_for(network.sg1, scope="operator"),
        "operations key": api_client_for(network.home, scope="operations"),
        **{group: staff_client(f"api-{group}", group) for group in STAFF},
    }


@pytest.mark.para(23)
def test_api_matrix(principals):
    wrong = []
    for method, documented, called in api_operations():
        allowed = API[f"{method} {documented}"]
        for name, client in principals.items():
            call = getattr(client, method.lower())
            answer = call(called) if method == "GET" else call(called, {}, format="json")
            assert answer.status_code < 500, (method, documented, name)
            if name in allowed:
                ok = answer.status_code not in (401, 403)
            elif name == "anonymous":
                ok = answer.status_code == 401
            else:
                ok = answer.status_code in (401, 403)
            if not ok:
                wrong.append(f"{method} {documented} as {name}: {answer.status_code}")
    assert wrong == []


# --- the docs say the same ----------------------------------------------------------------------------


def docs_table(heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading`` in docs/operations.md."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # without the header and its rule


def test_the_docs_admin_matrix_matches():
    rows = {row[0]: tuple(row[1:]) for row in docs_table("### The admin, page by page")}
    assert rows == ADMIN


def test_the_docs_api_matrix_matches():
    rows = docs_table("### The API, operation by operation")
    documented = {row[0]: {p for p, cell in zip(PRINCIPALS, row[1:], strict=True) if cell == "yes"} for row in rows}
    assert documented == API
    assert all(cell in ("yes", "no") for row in rows for cell in row[1:])


# --- an overseas operator's key sees its own, nothing of the others ---------------------------------


@pytest.mark.para(23, 22)
def test_an_overseas_key_sees_no_staff_names_and_no_counts_of_others(network, principals):
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    items = [trade(sell=("SG1", "s1")), trade(sell=("SG1", "s2")), trade(sell=("JP1", "j1"))]
    for item in items:
        item["executed_at"] = (monday - timedelta(hours=1)).isoformat()
    trades_ingest(items=items, actor="engine", now=monday)
    cycle = cycle_run(kind="intraday", as_of=monday, actor="user:alice")

    listed = principals["SG1 key"].get("/api/v1/cycles").json()["results"][0]
    detail = principals["SG1 key"].get(f"/api/v1/cycles/{cycle.id}").json()
    home_view = principals["engine key"].get("/api/v1/cycles").json()["results"][0]

    for body in (listed, detail):
        assert body["requested_by"] is None and body["obligations_deferred"] is None
        assert body["obligations_taken"] == 4  # its two trades, two obligations each
        assert [b["counterparty"] for b in body["batches"]] == ["SG1"]
        assert "alice" not in str(body) and "JP1" not in str(body)
    assert home_view["requested_by"] == "user:alice" and home_view["obligations_taken"] == 6
