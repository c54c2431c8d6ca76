"""Notifications (DESIGN section 10, circular para 15): each change that
needs a person is pushed once to its subscribers, as a signed webhook (to a
real HTTP receiver on the loopback here) or an e-mail (Django's locmem
outbox), with retries through Celery."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from controls.models import AuditEvent
from controls.services.alerts import alert_raise
from operations.models import EventKind, Notification, NotificationDelivery, Subscription
from operations.services.notifications import (
    deliveries_pending,
    notifications_scan,
    signature_verify,
    subscription_save,
)
from operations.tasks import deliveries_queue
from settlement.services.trades import trades_ingest
from tests.factories import trade
from tests.operations.receiver import receiver_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    state, server = receiver_start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _retries_run_eagerly():
    """Celery runs a retry of an eager task at once (ignoring its countdown)
    only when eager errors do not propagate: the retries are then real calls."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


def subscribe(*, kinds, url="", email="", secret="s3cret-for-tests") -> Subscription:
    channel = Subscription.Channel.WEBHOOK if url else Subscription.Channel.EMAIL
    return subscription_save(
        subscription=Subscription(
            name=url or email, channel=channel, url=url, email=email, secret=secret if url else "", kinds=kinds
        ),
        actor="user:ops",
        now=timezone.now(),
    )


def to_warning():
    # 150 BTC x 500,000 = 75,000,000 HKD of a 100,000,000 cap: warning (>= 0.70)
    trades_ingest(items=[trade(sell=("SG1", "c"), quantity="150", price="500000")], actor="test")


def scan(capture):
    """What the Celery beat task does: scan, then queue the deliveries after the commit."""
    with capture(execute=True):
        made = notifications_scan(now=timezone.now(), actor="test")
        deliveries_queue(deliveries_pending(made))
    return made


@pytest.mark.para(15)
def test_a_state_change_makes_exactly_one_signed_delivery(network, receiver, django_capture_on_commit_callbacks):
    subscription = subscribe(kinds=[EventKind.EXPOSURE_STATE], url=receiver.url)
    assert scan(django_capture_on_commit_callbacks) == []  # normal: nothing to tell

    to_warning()
    made = scan(django_capture_on_commit_callbacks)
    again = scan(django_capture_on_commit_callbacks)  # the state persists: told once, not on every poll

    assert [(n.kind, n.previous, n.state) for n in made] == [("exposure_state", "normal", "warning")]
    assert again == []
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    body = json.loads(request.body)
    assert body["kind"] == "exposure_state" and body["state"] == "warning" and body["previous"] == "normal"
    assert "75,000,000.00 HKD" in body["title"]
    header = request.headers["X-Settlement-Signature"]
    assert signature_verify(secret=subscription.secret, header=header, body=request.body, now=timezone.now())
    assert not signature_verify(secret="another secret", header=header, body=request.body, now=timezone.now())
    assert not signature_verify(
        secret=subscription.secret, header=header, body=request.body + b" ", now=timezone.now()
    )  # a body changed on the way
    assert not signature_verify(
        secret=subscription.secret, header=header, body=request.body, now=timezone.now() + timedelta(hours=1)
    )  # replayed an hour later
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 1, 200)
    assert AuditEvent.objects.filter(action="notification.raised").count() == 1


@pytest.mark.para(15)
def test_a_failing_receiver_gets_retries_until_it_answers(network, receiver, django_capture_on_commit_callbacks):
    subscribe(kinds=[EventKind.EXPOSURE_STATE], url=receiver.url)
    receiver.answers = [500, 503]  # the first two attempts fail; Celery retries (eagerly in tests)
    to_warning()

    scan(django_capture_on_commit_callbacks)

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same notification each time


@pytest.mark.para(15)
def test_a_receiver_that_never_answers_is_given_up_on_after_the_retries(
    network, receiver, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFY_MAX_RETRIES = 2
    from operations.tasks import notification_deliver_task

    notification_deliver_task.max_retries = 2
    try:
        subscribe(kinds=[EventKind.EXPOSURE_STATE], url=receiver.url)
        receiver.answers = [500] * 10
        to_warning()
        scan(django_capture_on_commit_callbacks)
    finally:
        notification_deliver_task.max_retries = 6

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.last_error == "HTTP 500 from the receiver"


@pytest.mark.para(15)
def test_email_subscribers_get_the_change_through_django_mail(network, django_capture_on_commit_callbacks):
    subscribe(kinds=[EventKind.EXPOSURE_STATE, EventKind.COVER_BREACH], email="duty@example.org")
    subscribe(kinds=[EventKind.CLAIM_PAID], email="claims@example.org")  # not this kind

    to_warning()
    scan(django_capture_on_commit_callbacks)

    assert [m.to for m in mail.outbox] == [["duty@example.org"]]
    assert "exposure warning" in mail.outbox[0].subject
    assert "normal -> warning" in mail.outbox[0].body


@pytest.mark.para(15)
def test_going_back_to_normal_is_a_change_too(network, django_capture_on_commit_callbacks):
    subscribe(kinds=[EventKind.EXPOSURE_STATE], email="duty@example.org")
    to_warning()
    scan(django_capture_on_commit_callbacks)
    trades_ingest(items=[trade(buy=("SG1", "c"), sell=("HK1", "pro-1"), quantity="1", price="500000")], actor="t")
    from settlement.models import ExposurePosition

    ExposurePosition.objects.update(receivable=0)  # as if SG1 delivered everything
    made = scan(django_capture_on_commit_callbacks)

    assert [(n.previous, n.state) for n in made if n.key == "exposure"] == [("warning", "normal")]


@pytest.mark.para(15)
def test_a_counterparty_over_its_limit_is_told_once(network, django_capture_on_commit_callbacks):
    network.sg1.limit_hkd = 40_000_000
    network.sg1.save()
    subscribe(kinds=[EventKind.EXPOSURE_STATE], email="duty@example.org")

    to_warning()
    made = scan(django_capture_on_commit_callbacks)
    scan(django_capture_on_commit_callbacks)

    limit = [n for n in made if n.key == "exposure:limit:SG1"]
    assert [(n.state, n.operator_code) for n in limit] == [("over_limit", "SG1")]
    assert "75,000,000.00 HKD against 40,000,000.00 HKD" in limit[0].title
    assert Notification.objects.filter(key="exposure:limit:SG1").count() == 1


@pytest.mark.para(15)
def test_alerts_of_the_lower_layers_reach_subscribers_once(network, django_capture_on_commit_callbacks):
    subscribe(kinds=[EventKind.COVER_BREACH, EventKind.BATCH_DISPUTED], email="duty@example.org")
    alert_raise(kind="prefunding_cover_breach", message="old one, before the first scan", operator_code="SG1")
    scan(django_capture_on_commit_callbacks)  # the first scan takes what was raised before as history

    alert_raise(kind="prefunding_cover_breach", message="cover of SG1 in USDC is breach", operator_code="SG1")
    alert_raise(kind="batch_disputed", message="SG1 disputes batch 7", operator_code="SG1")
    alert_raise(kind="exposure_mismatch", message="not a kind anyone subscribes to")
    made = scan(django_capture_on_commit_callbacks)
    scan(django_capture_on_commit_callbacks)

    assert sorted(n.kind for n in made) == ["batch_disputed", "cover_breach"]
    assert sorted(m.subject for m in mail.outbox) == [
        "[settlement] SG1 disputes batch 7",
        "[settlement] cover of SG1 in USDC is breach",
    ]


@pytest.mark.para(15)
def test_a_break_past_its_age_is_told_once(network, settings, django_capture_on_commit_callbacks):
    from custody.models import Break

    settings.NOTIFY_BREAK_AGE_HOURS = 4
    subscribe(kinds=[EventKind.BREAK_AGED], email="duty@example.org")
    now = timezone.now()
    Break.objects.create(
        key="k1",
        kind="unmatched_receipt",
        amount=1,
        description="1 USDC from nowhere",
        opened_at=now - timedelta(hours=5),
        updated_at=now,
    )
    Break.objects.create(
        key="k2",
        kind="unmatched_receipt",
        amount=1,
        description="young",
        opened_at=now - timedelta(hours=1),
        updated_at=now,
    )

    made = scan(django_capture_on_commit_callbacks)
    scan(django_capture_on_commit_callbacks)

    assert [n.kind for n in made] == ["break_aged"]
    assert "unresolved for over 4 h" in made[0].title
    assert len(mail.outbox) == 1


def test_the_sample_endpoint_sends_a_signed_sample(network, receiver, django_capture_on_commit_callbacks):
    from tests.conftest import staff_client

    subscription = subscribe(kinds=[EventKind.DEFAULT], url=receiver.url)
    client = staff_client("ops-op", "ops_operator")

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/v1/ops/notifications/subscriptions/{subscription.id}/test")

    assert answer.status_code == 201, answer.content
    assert NotificationDelivery.objects.get().status == "sent"
    body = receiver.requests[0].body
    assert json.loads(body)["kind"] == "sample"
    assert signature_verify(
        secret=subscription.secret,
        header=receiver.requests[0].headers["X-Settlement-Signature"],
        body=body,
        now=timezone.now(),
    )
    assert client.post("/api/v1/ops/notifications/subscriptions/999999/test").json()["code"] == "not_found"


def test_a_subscription_is_checked_and_its_secret_made(db):
    made = subscribe(kinds=[EventKind.DEFAULT], url="https://hooks.example.org/x", secret="")
    assert len(made.secret) == 64

    from controls.exceptions import InvalidInput

    for bad, field in (
        ({"kinds": []}, "kinds"),
        ({"kinds": ["nonsense"]}, "kinds"),
        ({"url": "ftp://x"}, "url"),
        ({"url": ""}, "url"),
    ):
        values = {"name": "x", "channel": "webhook", "url": "https://a.example", "kinds": ["default"]} | bad
        with pytest.raises(InvalidInput) as error:
            subscription_save(subscription=Subscription(**values), actor="t", now=timezone.now())
        assert error.value.field == field
    assert Subscription.objects.count() == 1
    assert AuditEvent.objects.filter(action="subscription.saved").count() == 1
    assert "secret" not in json.dumps(AuditEvent.objects.get().after).replace("secret_changed", "")


@pytest.mark.para(15, 13)
def test_a_near_deadline_and_then_the_failed_batch_are_each_told_once(network, django_capture_on_commit_callbacks):
    from settlement.services.cycles import cycle_run
    from settlement.services.deadlines import deadlines_check

    subscribe(kinds=[EventKind.DEADLINE_NEAR, EventKind.BATCH_FAILED], email="duty@example.org")
    now = timezone.now()
    taken = now - timedelta(minutes=50)  # the eth rail's 60 min window: the inbound leg is due in 10 min
    trades_ingest(
        items=[
            trade(
                base="BTC",
                quote="USDC",
                price="64000",
                quantity="1",
                sell=("SG1", "c"),
                executed_at=(taken - timedelta(minutes=1)).isoformat(),
            )
        ],
        actor="engine",
        now=taken,
    )
    cycle_run(kind="intraday", as_of=taken, actor="test")

    near = scan(django_capture_on_commit_callbacks)
    assert scan(django_capture_on_commit_callbacks) == []
    deadlines_check(as_of=now + timedelta(minutes=11), actor="test")
    failed = scan(django_capture_on_commit_callbacks)

    assert [n.kind for n in near] == ["deadline_near"]
    assert "inbound leg of 1.00000000 BTC" in near[0].title and "SG1" in near[0].title
    assert [n.kind for n in failed] == ["batch_failed"]
    assert failed[0].operator_code == "SG1"
    assert len(mail.outbox) == 2


def test_subscriptions_are_kept_in_the_admin_and_a_sample_is_sent_from_there(
    client, network, receiver, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group, User

    operator = User.objects.create_user("op", is_staff=True)
    operator.groups.add(Group.objects.get(name="ops_operator"))
    client.force_login(operator)

    answer = client.post(
        "/admin/operations/subscription/add/",
        {
            "name": "duty desk",
            "channel": "webhook",
            "url": receiver.url,
            "secret": "",
            "email": "",
            "kinds": ["exposure_state", "default"],
            "active": "on",
        },
    )
    assert answer.status_code == 302, [line for line in answer.content.decode().splitlines() if "error" in line]
    subscription = Subscription.objects.get()
    assert subscription.kinds == ["default", "exposure_state"] and len(subscription.secret) == 64
    assert AuditEvent.objects.filter(action="subscription.saved", actor="user:op").exists()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/operations/subscription/",
            {"action": "send_sample", "_selected_action": [subscription.id]},
        )

    assert NotificationDelivery.objects.get().status == "sent"
    assert json.loads(receiver.requests[0].body)["kind"] == "sample"
    listing = client.get("/admin/operations/notificationdelivery/").content.decode()
    assert "duty desk" in listing and "sample notification for duty desk" in listing
