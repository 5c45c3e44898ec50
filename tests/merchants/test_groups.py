"""拼单 group orders and 拼好饭 group meals: the edge cases. A member leaves, a payment fails, the
deadline passes, the opener cancels; a group meal fills exactly at the cutoff, or is one short."""

import datetime as dt

import pytest
from django.utils import timezone

from merchants import services
from merchants.errors import GroupClosed
from merchants.models import (
    GroupCart,
    GroupMeal,
    GroupStatus,
    MemberState,
    Notice,
    RoundStatus,
    TierDiscount,
)
from orders import services as order_services
from orders.errors import NotAllowed, StepNotReady
from orders.status import Status
from payments import selectors as money
from tests import factories


@pytest.fixture
def roommates(db):
    return [factories.make_user(username=f"roommate{i}") for i in range(3)]


@pytest.fixture
def group(student, window):
    return services.group_open(
        opener=student, merchant=window, dropoff_building=factories.building(window.campus, "D3")
    )


def add(user, item, group, qty=1):
    services.cart_add(user=user, item=item, quantity=qty, group=group)


def test_group_order_each_member_pays_their_share_and_it_adds_up(student, roommates, window, group):
    TierDiscount.objects.create(merchant=window, threshold_fen=3500, discount_fen=600)
    rice = factories.make_item(window, name="盖饭", price_fen=1500, packaging_fen=100)
    tea = factories.make_item(window, name="奶茶", price_fen=950)
    people = [student, *roommates[:2]]
    before = {u.pk: factories.fund_wallet(u, at_least=10_000) for u in people}
    add(student, rice, group)
    services.group_join(user=roommates[0], group=group)
    add(roommates[0], rice, group)
    services.group_join(user=roommates[1], group=group)
    add(roommates[1], tea, group)
    ticket = services.group_submit(group=group, actor=student)
    order = ticket.order
    assert order.customer == student and order.status == Status.OPEN
    assert ticket.tier_discount_fen == 600  # 满35减6 on 15 + 15 + 9.50 together
    paid = {u.pk: before[u.pk] - money.wallet_balance(u) for u in people}
    assert sum(paid.values()) == order.total_fen == ticket.due_fen
    assert [s["total_fen"] for s in ticket.shares] == [paid[u.pk] for u in people]
    assert {line.member_id for line in ticket.lines.all()} == {u.pk for u in people}
    group.refresh_from_db()
    assert group.status == GroupStatus.SUBMITTED


def test_a_member_who_leaves_pays_nothing(student, roommates, window, group, tea):
    services.group_join(user=roommates[0], group=group)
    add(roommates[0], tea, group)
    services.group_leave(user=roommates[0], group=group)
    add(student, tea, group)
    factories.fund_wallet(student, at_least=5000)
    wallet = factories.fund_wallet(roommates[0], at_least=5000)
    ticket = services.group_submit(group=group, actor=student)
    assert money.wallet_balance(roommates[0]) == wallet
    assert [s["user"] for s in ticket.shares] == [student.pk]


def test_a_member_whose_payment_fails_is_dropped_with_a_notice(
    student, roommates, window, group, tea
):
    factories.fund_wallet(student, at_least=5000)
    services.group_join(user=roommates[0], group=group)
    add(student, tea, group)
    add(roommates[0], tea, group, qty=2)  # roommate0 has no money
    ticket = services.group_submit(group=group, actor=student)
    assert ticket is not None
    assert [s["user"] for s in ticket.shares] == [student.pk]  # worked out again without them
    assert ticket.delivery_fen == ticket.shares[0]["delivery_fen"]  # the opener pays all of it
    cart = group.members.get(user=roommates[0])
    assert cart.member_state == MemberState.DROPPED
    notice = Notice.objects.get(user=roommates[0])
    assert "dropped" in notice.message and "wallet" in notice.message
    assert money.wallet_balance(roommates[0]) == 0


def test_the_deadline_submits_the_group(student, roommates, window, group, tea):
    factories.fund_wallet(student, at_least=5000)
    add(student, tea, group)
    with pytest.raises(GroupClosed):
        services.cart_add(
            user=student, item=tea, group=group, now=group.deadline + dt.timedelta(seconds=1)
        )
    # the deadline has passed (moved into the past rather than the clock forward, so that the
    # new ticket is not instantly an unanswered one)
    GroupCart.objects.filter(pk=group.pk).update(deadline=timezone.now() - dt.timedelta(seconds=1))
    result = services.takeout_deadlines_run()
    assert result["groups"] == 1
    group.refresh_from_db()
    assert group.status == GroupStatus.SUBMITTED and group.takeout.order.status == Status.OPEN


def test_at_the_deadline_an_opener_who_cannot_pay_calls_it_off_for_everyone(
    student, roommates, window, group, tea
):
    services.group_join(user=roommates[0], group=group)
    factories.fund_wallet(roommates[0], at_least=5000)
    add(student, tea, group)  # the opener has no money
    add(roommates[0], tea, group)
    services.takeout_deadlines_run(now=group.deadline + dt.timedelta(seconds=1))
    group.refresh_from_db()
    assert group.status == GroupStatus.CANCELLED and "wallet" in group.outcome
    assert money.wallet_balance(roommates[0]) == 5000  # nobody was charged
    assert Notice.objects.filter(user=roommates[0], message__contains="did not go ahead").exists()


def test_the_opener_cancels_and_everyone_is_told(student, roommates, window, group, tea):
    services.group_join(user=roommates[0], group=group)
    add(roommates[0], tea, group)
    with pytest.raises(NotAllowed):
        services.group_cancel(user=roommates[0], group=group)
    services.group_cancel(user=student, group=group)
    group.refresh_from_db()
    assert group.status == GroupStatus.CANCELLED
    assert Notice.objects.filter(user=roommates[0], message__contains="cancelled").exists()
    with pytest.raises(GroupClosed):
        services.group_join(user=roommates[1], group=group)
    with pytest.raises(GroupClosed):
        services.group_submit(group=group, actor=student)


def test_only_the_opener_locks_the_group_and_only_with_own_items(student, roommates, group, tea):
    services.group_join(user=roommates[0], group=group)
    add(roommates[0], tea, group)
    with pytest.raises(NotAllowed):
        services.group_submit(group=group, actor=roommates[0])
    with pytest.raises(Exception, match="your own items"):
        services.group_submit(group=group, actor=student)


def test_the_opener_cannot_leave(student, group):
    with pytest.raises(NotAllowed):
        services.group_leave(user=student, group=group)


def test_group_order_rejected_by_the_merchant_refunds_every_member(
    student, roommates, window, group, tea, merchant
):
    from merchants.models import MerchantStatus

    people = [student, roommates[0]]
    before = {u.pk: factories.fund_wallet(u, at_least=5000) for u in people}
    services.group_join(user=roommates[0], group=group)
    add(student, tea, group)
    add(roommates[0], tea, group, qty=2)
    ticket = services.group_submit(group=group, actor=student)
    services.ticket_advance(
        ticket=ticket, to=MerchantStatus.REJECTED, actor=merchant, reason="closing"
    )
    assert {u.pk: money.wallet_balance(u) for u in people} == before
    assert Notice.objects.filter(user=roommates[0], message__contains="closing").exists()


def test_group_page_join_and_share_link(student, roommates, group, tea, client, clock):
    from django.test import Client

    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(roommates[0])
    page = c.get(f"/takeout/groups/{group.token}/")
    assert page.status_code == 200 and 'id="group-join"' in page.content.decode()
    c.post(f"/takeout/groups/{group.token}/", {"action": "join"})
    assert group.members.filter(user=roommates[0], member_state=MemberState.ACTIVE).exists()
    assert c.get("/takeout/groups/nope/").status_code == 404


# --- 拼好饭 ------------------------------------------------------------------------------


@pytest.fixture
def meal(window):
    today = timezone.localdate()
    return GroupMeal.objects.create(
        merchant=window,
        title="双拼饭",
        contents="鸡腿 + 叉烧 + 例汤",
        regular_price_fen=2200,
        group_price_fen=1290,
        group_size=3,
        cutoff=dt.time(11, 0),
        delivery_time=dt.time(12, 0),
        starts_on=today - dt.timedelta(days=1),
        ends_on=today + dt.timedelta(days=1),
    )


class Clock:
    """Every caller of timezone.now() (quotes, the ledger, auto_now) reads this clock: a group
    meal's day runs at fixed times of day, whatever time the suite runs."""

    def __init__(self):
        self.now = timezone.localtime().replace(hour=8, minute=0, second=0, microsecond=0)

    def at(self, hour, minute, second=0):
        self.now = self.now.replace(hour=hour, minute=minute, second=second)
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


def join(user, meal, code="D3", clock=None):
    """`clock`: when it happens (clock.at(...) has set the time)."""
    factories.fund_wallet(user, at_least=5000)
    return services.meal_join(
        user=user, meal=meal, building=factories.building(meal.merchant.campus, code)
    )


def test_group_meal_fills_exactly_at_the_cutoff(student, roommates, meal, merchant, clock):
    people = [student, roommates[0], roommates[1]]
    join(people[0], meal, clock=clock.at(10, 0))
    join(people[1], meal, clock=clock.at(10, 30))
    last = join(people[2], meal, clock=clock.at(11, 0))  # the cutoff itself still counts
    round_ = last.round
    round_.refresh_from_db()
    assert round_.status == RoundStatus.FILLED
    services.takeout_deadlines_run(now=clock.at(11, 0, 1))
    round_.refresh_from_db()
    assert round_.status == RoundStatus.FILLED
    ticket = round_.takeout
    assert ticket.due_fen == 3 * 1290 == ticket.order.total_fen
    assert money.order_paid_fen(ticket.order) == 3 * 1290
    assert ticket.lines.count() == 3
    assert all(money.wallet_balance(u) == 5000 - 1290 for u in people)
    # now the merchant sees it
    from merchants import selectors

    assert ticket in selectors.inbox_tickets(meal.merchant, now=clock.at(11, 1))["new"]


def test_group_meal_one_short_at_the_cutoff_refunds_everyone_and_says_why(
    student, roommates, meal, clock
):
    people = [student, roommates[0]]
    joins = [join(u, meal, clock=clock.at(10, 0)) for u in people]
    round_ = joins[0].round
    order = round_.takeout.order
    assert round_.status == RoundStatus.OPEN
    # Even if the cutoff job runs late and the order has opened to riders, nobody can take it
    rider = factories.make_rider(meal.merchant.campus, gender="male")
    clock.at(11, 30)
    with pytest.raises(StepNotReady, match="not filled"):
        order_services.order_accept(order=order, rider=rider)
    failed, _filled = services.meal_rounds_close(now=clock.at(11, 31))
    assert failed == 1
    round_.refresh_from_db()
    order.refresh_from_db()
    assert round_.status == RoundStatus.FAILED and order.status == Status.CANCELLED
    assert all(money.wallet_balance(u) == 5000 for u in people)
    for u in people:
        notice = Notice.objects.get(user=u)
        assert "did not fill" in notice.message and "2 of 3" in notice.message


def test_joining_after_the_cutoff_is_refused(student, meal, clock):
    with pytest.raises(GroupClosed, match="closed at 11:00"):
        join(student, meal, clock=clock.at(11, 0, 1))


def test_each_building_forms_its_own_group(student, roommates, meal, clock):
    a = join(student, meal, code="D3", clock=clock.at(9, 0))
    b = join(roommates[0], meal, code="D1", clock=clock.at(9, 0))
    assert a.round != b.round


def test_leaving_a_group_meal_gives_the_money_back(student, roommates, meal, clock):
    join(student, meal, clock=clock.at(9, 0))
    second = join(roommates[0], meal, clock=clock.at(9, 5))
    services.meal_leave(user=roommates[0], join=second, now=clock.at(9, 10))
    assert money.wallet_balance(roommates[0]) == 5000
    ticket = second.round.takeout
    ticket.refresh_from_db()
    assert ticket.due_fen == 1290 and money.escrow_balance(ticket.order) == 1290


def test_the_starter_cannot_walk_away_from_others(student, roommates, meal, clock):
    first = join(student, meal, clock=clock.at(9, 0))
    join(roommates[0], meal, clock=clock.at(9, 5))
    with pytest.raises(NotAllowed):
        services.meal_leave(user=student, join=first, now=clock.at(9, 10))
    with pytest.raises(NotAllowed):
        order_services.order_transition(
            order=first.round.takeout.order, to=Status.CANCELLED, actor=student
        )


def test_a_student_joins_a_meal_once_a_day(student, meal, clock):
    join(student, meal, clock=clock.at(9, 0))
    with pytest.raises(Exception, match="already joined"):
        join(student, meal, code="D1", clock=clock.at(9, 1))


def test_group_meal_ledger_stays_balanced(student, roommates, meal, clock):
    for u in [student, roommates[0]]:
        join(u, meal, clock=clock.at(9, 0))
    services.meal_rounds_close(now=clock.at(11, 1))
    assert sum(money.ledger_totals().values()) == 0
    assert GroupCart.objects.count() == 0
