"""The outbound policy: numbers classified with phonenumbers from the operator's region,
checked before every call the gateway places, refusals answered and audited, permitted
international calls recorded and reported by month."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.admin import policy
from gateway.admin.policy import OutboundRefused, classify
from gateway.control import admin
from gateway.control.desk import Actor, CommandDesk
from gateway.control.grammar import CallBack, Forward
from gateway.control.lines import Control
from gateway.delivery.notices import Notices
from models.db import AuditEntry, Call, NumberClass, Subscriber
from models.settings import RoutingSettings
from models.vocab import Scenario
from tests.unit.test_control import FakePbx

MOBILE = "+306944000001"
DDI = "2100001"
UK_MOBILE = "+447400123456"
UK_PREMIUM = "+449001234567"
GR_PREMIUM = "+309011234567"
GR_FIXED = "+302101234567"


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (GR_FIXED, NumberClass.NATIONAL),
        ("2101234567", NumberClass.NATIONAL),  # no country code: the operator's region
        ("+306912345678", NumberClass.MOBILE),
        ("6912345678", NumberClass.MOBILE),
        ("+308001234567", NumberClass.NATIONAL),  # toll free
        (GR_PREMIUM, NumberClass.PREMIUM),  # 901: premium rate
        ("+308011234567", NumberClass.PREMIUM),  # 801: shared cost
        ("+3069001", NumberClass.PREMIUM),  # not a number of any type
        ("garbage", NumberClass.PREMIUM),
        (UK_MOBILE, NumberClass.INTERNATIONAL),
        (UK_PREMIUM, NumberClass.INTERNATIONAL),  # abroad first: needs the permission
        ("00442079460000", NumberClass.INTERNATIONAL),
        ("+35799123456", NumberClass.INTERNATIONAL),
    ],
)
def test_numbers_are_classified_from_the_operators_region(
    number: str, expected: NumberClass
) -> None:
    assert classify(number, "GR") is expected


def test_the_region_decides_what_is_abroad() -> None:
    assert classify("+442079460000", "GB") is NumberClass.NATIONAL
    assert classify("+447400123456", "GB") is NumberClass.MOBILE
    assert classify(GR_FIXED, "GB") is NumberClass.INTERNATIONAL


def test_a_policy_is_parsed_and_refuses_unknown_words() -> None:
    assert policy.parse_allowed(" Mobile , international") == "mobile,international"
    with pytest.raises(ValueError):
        policy.parse_allowed("national,everything")


@pytest.fixture
async def subscriber(db: str) -> Subscriber:
    created = await admin.add_subscriber(
        name="Dr A", ddis=[DDI], language="en", timezone="UTC", mobile=MOBILE
    )
    return created.subscriber


def desk(pbx: FakePbx) -> CommandDesk:
    notices = Notices(["telegram"], RoutingSettings())
    return CommandDesk(Control(pbx, region="GR"), notices, "GR")


def actor(s: Subscriber, lang: str = "en") -> Actor:
    return Actor("telegram", "4242", s, lang, chat_id=4242)


async def test_default_policy_allows_national_and_mobile_only(subscriber: Subscriber) -> None:
    assert policy.allowed_classes(subscriber) == policy.DEFAULT_ALLOWED
    assert policy.check(subscriber, GR_FIXED, "GR") is NumberClass.NATIONAL
    for number, cls in ((GR_PREMIUM, "premium"), (UK_MOBILE, "international")):
        with pytest.raises(OutboundRefused) as refused:
            policy.check(subscriber, number, "GR")
        assert refused.value.number_class.value == cls


async def test_a_premium_callback_is_refused_answered_and_audited(subscriber: Subscriber) -> None:
    pbx = FakePbx()
    outcome = await desk(pbx).run(actor(subscriber), CallBack(GR_PREMIUM), "callback +30901")
    assert outcome.reply == "Calls to premium numbers are not allowed for this line."
    assert outcome.result == "refused"
    assert pbx.sent("Originate") == []
    [row] = await AuditEntry.all()
    assert (row.result, row.detail, row.command) == ("refused", "premium", "callback +30901")


async def test_an_international_callback_needs_the_permission(subscriber: Subscriber) -> None:
    pbx = FakePbx()
    outcome = await desk(pbx).run(actor(subscriber, "el"), CallBack(UK_MOBILE), "callback uk")
    assert outcome.reply == "Οι διεθνείς κλήσεις χρειάζονται την άδεια του παρόχου."
    assert pbx.sent("Originate") == []
    assert (await AuditEntry.get()).detail == "international"

    subscriber.outbound_allowed = "national,mobile,international"
    await subscriber.save()
    outcome = await desk(pbx).run(actor(subscriber), CallBack(UK_MOBILE), "callback uk")
    assert outcome.done
    [originate] = pbx.sent("Originate")
    assert originate["Exten"] == UK_MOBILE
    month = datetime.now(UTC).strftime("%Y-%m")
    [call] = await policy.international_calls(month)
    assert (call.subscriber, call.number, call.country, call.what) == (
        "Dr A",
        UK_MOBILE,
        "GB",
        policy.CALLBACK,
    )
    text = await policy.international_report("en", month)
    assert text.splitlines()[0] == f"International calls in {month}: 1"
    assert UK_MOBILE in text and "(call back)" in text
    assert (
        await policy.international_report("en", "2001-01") == "No international calls in 2001-01."
    )


async def test_a_national_callback_is_not_recorded_as_international(
    subscriber: Subscriber,
) -> None:
    pbx = FakePbx()
    call = await Call.create(
        linkedid="1.1",
        ddi=DDI,
        subscriber=subscriber,
        caller_number=GR_FIXED,
        started_at=datetime.now(UTC),
    )
    await Control(pbx).call_back(subscriber, call)
    assert len(pbx.sent("Originate")) == 1
    assert await AuditEntry.filter(detail="international").count() == 0


async def test_forwarding_to_a_premium_number_is_refused_before_anything_changes(
    subscriber: Subscriber,
) -> None:
    pbx = FakePbx()
    outcome = await desk(pbx).run(actor(subscriber), Forward(GR_PREMIUM), "forward +30901")
    assert outcome.reply == "Calls to premium numbers are not allowed for this line."
    assert pbx.sent("DBPut") == []
    assert (await Subscriber.get(id=subscriber.id)).forward_number is None


async def test_a_foreign_mobile_is_a_far_end_like_any_other(subscriber: Subscriber) -> None:
    """ "Forward calls to me" to a mobile abroad needs the permission too."""
    subscriber.mobile = UK_MOBILE
    await subscriber.save()
    pbx = FakePbx()
    with pytest.raises(OutboundRefused):
        await Control(pbx).forward_to_mobile(subscriber)
    assert pbx.sent("DBPut") == []
    assert (await Subscriber.get(id=subscriber.id)).scenario is Scenario.AGENT


async def test_a_timed_forward_reverting_to_a_refused_number_goes_to_the_agents(
    subscriber: Subscriber,
) -> None:
    subscriber.forward_number = UK_MOBILE
    subscriber.scenario = Scenario.CLOSED
    subscriber.scenario_after = Scenario.FORWARD
    subscriber.scenario_until = datetime(2000, 1, 1, tzinfo=UTC)
    await subscriber.save()
    assert await Control(FakePbx()).revert_due(datetime.now(UTC)) == 1
    assert (await Subscriber.get(id=subscriber.id)).scenario is Scenario.AGENT


def test_month_bounds() -> None:
    start, end = policy.month_bounds("2024-12", "Europe/Athens")
    assert (start.month, end.year, end.month) == (12, 2025, 1)
    with pytest.raises(ValueError):
        policy.month_bounds("2024-13")


async def test_the_international_report_is_refused_to_agents_and_strangers_and_audited(
    db: str,
) -> None:
    from gateway.admin import international
    from models.db import Role, User
    from models.staff import Agent

    for chat, role in ((1, Role.AGENT), (2, Role.SUPERVISOR), (3, Role.DIRECTOR)):
        user = await User.create(name=role.value, role=role, telegram_chat_id=chat)
        await Agent.create(user=user)
    for chat in (1, 2):
        answer = await international.report(chat, "", "en", "UTC")
        assert answer == "That is not yours to do."
    assert await international.report(99, "", "en", "UTC") == "This chat is not linked to the desk."
    rows = await AuditEntry.all().order_by("id")
    assert [(r.actor, r.result, r.command) for r in rows] == [
        ("1", "refused", "/international"),
        ("2", "refused", "/international"),
        ("99", "refused", "/international"),
    ]
    assert await international.report(3, "2001-01", "en", "UTC") == (
        "No international calls in 2001-01."
    )
    assert await international.report(3, "March", "en", "UTC") == (
        "Write the month as YYYY-MM, e.g. /international 2025-03."
    )
