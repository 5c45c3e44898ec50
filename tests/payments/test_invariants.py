"""Property tests: random interleavings of order lives and money moves, run through the real
services. Each order gets a random fate: paid on creation or later (or never: the wallet is
short), taken to a random stage, then cancelled there, expired, disputed after pickup, completed,
or left alone; top-ups, withdrawals and their decisions happen in between. After every step the
database must agree with a small model of where each fen should be, and:

- every ledger transaction balances, and the whole ledger sums to zero;
- no wallet, escrow or earnings account is ever negative;
- an order never refunds more than was paid for it;
- once every order has ended, every escrow is back to zero.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders import services as order_services
from orders.errors import OrderError
from orders.models import Kind, Order
from orders.status import Status
from payments import services
from payments.errors import InsufficientFunds
from payments.gateways import get_gateway
from payments.models import (
    Account,
    AccountKind,
    CallbackOutcome,
    Entry,
    TopUp,
    Withdrawal,
    WithdrawalStatus,
)
from tests import factories
from tests.payments.conftest import assert_ledger_sound

COMPENSATION = 100  # campus defaults (no CampusMoneySettings row)
LATE_COMPENSATION = 300
RATE_BP = 1000
RIDER_STEPS = {
    Status.ACCEPTED: Status.PICKED_UP,
    Status.PICKED_UP: Status.DELIVERING,
    Status.DELIVERING: Status.DELIVERED,
}

STAGES = [Status.PENDING, Status.OPEN, Status.ACCEPTED, Status.PICKED_UP, Status.DELIVERED]
ENDINGS = ["cancel", "expire", "complete", "dispute", "none"]
ORDER_FATE = st.tuples(
    st.integers(0, 1),  # customer
    st.sampled_from([True, True, False]),  # paid on creation (if the wallet covers it)
    st.booleans(),  # delivered late
    st.sampled_from(STAGES),  # how far it gets before its ending
    st.sampled_from(ENDINGS),
    st.integers(0, 1),  # rider
    st.integers(0, 100),  # dispute refund, percent of what is held
)
MONEY_MOVE = st.one_of(
    st.tuples(st.just("topup"), st.integers(0, 1), st.integers(100, 3_000)),
    st.tuples(st.just("withdraw"), st.integers(0, 1), st.integers(100, 1_500)),
    st.tuples(st.just("decide"), st.integers(0, 9), st.booleans()),
)


def fate_steps(n: int, fate) -> list[tuple]:
    """The steps of the n-th order fate, in their order."""
    customer, pay_now, late, stage, ending, rider, percent = fate
    steps: list[tuple] = [("place", n, customer, pay_now, late)]
    reached = STAGES.index(stage)
    if reached >= 1 and not pay_now:
        steps.append(("pay", n))
    if reached >= 2:
        steps.append(("accept", n, rider))
    # accepted -> picked up (-> delivering -> delivered)
    steps += [("advance", n)] * {3: 1, 4: 3}.get(reached, 0)
    if ending == "dispute":
        steps.append(("dispute", n, percent))
    elif ending != "none":
        steps.append((ending, n))
    return steps


class Model:
    """Where every fen should be, computed independently of payments.services."""

    def __init__(self, students, riders):
        self.wallet = {s.pk: 0 for s in students}
        self.earnings = {r.pk: 0 for r in riders}
        self.reserved = {r.pk: 0 for r in riders}
        self.escrow: dict[int, int] = {}
        self.paid: dict[int, int] = {}
        self.refunded: dict[int, int] = {}


class World:
    def __init__(self, campus, students, riders, operator, promised):
        self.campus, self.students, self.riders, self.operator = campus, students, riders, operator
        self.promised = promised
        self.orders: list[Order] = []
        self.slots: dict[int, int] = {}  # fate number -> position in self.orders
        self.withdrawals: list[Withdrawal] = []
        self.model = Model(students, riders)

    def order(self, n: int) -> Order | None:
        """The order of fate n (None before it is placed)."""
        if n not in self.slots:
            return None
        return Order.objects.get(pk=self.orders[self.slots[n]].pk)

    # --- the operations, each through the real services -------------------------------------

    def topup(self, s: int, amount: int) -> None:
        student = self.students[s]
        topup, _intent = services.topup_create(user=student, amount_fen=amount)
        result = services.sandbox_pay(topup=topup, payer=student)
        assert result.outcome == CallbackOutcome.ACCEPTED
        # The gateway retries: nothing more is credited.
        body, headers = get_gateway("sandbox").notification(
            topup, gateway_txn_id=TopUp.objects.get(pk=topup.pk).gateway_txn_id
        )
        replay = services.gateway_callback_receive(gateway="sandbox", body=body, headers=headers)
        assert replay.outcome == CallbackOutcome.REPLAYED
        self.model.wallet[student.pk] += amount

    def place(self, n: int, s: int, pay: bool, late: bool) -> None:
        student = self.students[s]
        order = order_services.order_create(
            customer=student,
            kind=Kind.PARCEL,
            pickup_building=factories.building(self.campus, "P1"),
            dropoff_building=factories.building(self.campus, "D3"),
            description="property test",
            pay=pay,
        )
        self.slots[n] = len(self.orders)
        self.orders.append(order)
        if late:
            self.promised[order.pk] = timezone.now() - timedelta(hours=1)
        due = services.order_amount_due(order)
        self.model.escrow[order.pk] = self.model.paid[order.pk] = self.model.refunded[order.pk] = 0
        if pay and self.model.wallet[student.pk] >= due:
            assert order.status == Status.OPEN
            self._paid(order, due)
        else:
            assert order.status == Status.PENDING

    def _paid(self, order: Order, due: int) -> None:
        self.model.wallet[order.customer_id] -= due
        self.model.escrow[order.pk] += due
        self.model.paid[order.pk] += due

    def pay(self, i: int) -> None:
        order = self.order(i)
        if order is None:
            return
        due = services.order_amount_due(order)
        if order.status != Status.PENDING:
            with pytest.raises(OrderError):
                order_services.order_pay(order=order, payer=order.customer)
        elif self.model.wallet[order.customer_id] < due:
            with pytest.raises(InsufficientFunds):
                order_services.order_pay(order=order, payer=order.customer)
        else:
            order_services.order_pay(order=order, payer=order.customer)
            self._paid(order, due)

    def accept(self, i: int, r: int) -> None:
        order = self.order(i)
        if order is None:
            return
        if order.status == Status.OPEN:
            order_services.order_accept(order=order, rider=self.riders[r])
        else:
            with pytest.raises(OrderError):
                order_services.order_accept(order=order, rider=self.riders[r])

    def advance(self, i: int) -> None:
        order = self.order(i)
        if order is None or order.status not in RIDER_STEPS:
            return
        to = RIDER_STEPS[order.status]
        order_services.order_transition(order=order, to=to, actor=order.rider)
        if to == Status.DELIVERED and order.pk in self.promised:
            self.model.wallet[order.customer_id] += LATE_COMPENSATION

    def cancel(self, i: int) -> None:
        order = self.order(i)
        if order is None:
            return
        if order.status not in (Status.PENDING, Status.OPEN, Status.ACCEPTED):
            with pytest.raises(OrderError):
                order_services.order_transition(
                    order=order, to=Status.CANCELLED, actor=order.customer
                )
            return
        held = self.model.escrow[order.pk]
        compensation = min(COMPENSATION, held) if order.status == Status.ACCEPTED else 0
        order_services.order_transition(order=order, to=Status.CANCELLED, actor=order.customer)
        if compensation:
            self.model.earnings[order.rider_id] += compensation
        self._refund(order, held - compensation)
        self.model.escrow[order.pk] = 0

    def _refund(self, order: Order, amount: int) -> None:
        self.model.wallet[order.customer_id] += amount
        self.model.refunded[order.pk] += amount

    def expire(self, i: int) -> None:
        order = self.order(i)
        if order is None:
            return
        if order.status != Status.OPEN:
            with pytest.raises(OrderError):
                order_services.order_transition(order=order, to=Status.EXPIRED, actor=None)
            return
        order_services.order_transition(order=order, to=Status.EXPIRED, actor=None)
        self._refund(order, self.model.escrow[order.pk])
        self.model.escrow[order.pk] = 0

    def complete(self, i: int) -> None:
        order = self.order(i)
        if order is None:
            return
        if order.status != Status.DELIVERED:
            with pytest.raises(OrderError):
                order_services.order_transition(
                    order=order, to=Status.COMPLETED, actor=order.customer
                )
            return
        order_services.order_transition(order=order, to=Status.COMPLETED, actor=order.customer)
        held = self.model.escrow[order.pk]
        commission = (held * RATE_BP + 5_000) // 10_000
        self.model.earnings[order.rider_id] += held - commission
        self.model.escrow[order.pk] = 0

    def dispute(self, i: int, percent: int) -> None:
        order = self.order(i)
        if order is None:
            return
        if order.status not in services.DISPUTABLE:
            with pytest.raises(OrderError):
                services.dispute_open(order=order, customer=order.customer, reason="bad")
            return
        dispute = services.dispute_open(order=order, customer=order.customer, reason="bad")
        refund = self.model.escrow[order.pk] * percent // 100
        services.dispute_resolve(dispute=dispute, operator=self.operator, refund_fen=refund)
        self._refund(order, refund)
        self.model.escrow[order.pk] -= refund

    def withdraw(self, r: int, amount: int) -> None:
        rider = self.riders[r]
        available = self.model.earnings[rider.pk] - self.model.reserved[rider.pk]
        if amount > available:
            with pytest.raises(InsufficientFunds):
                services.withdrawal_request(rider=rider, amount_fen=amount)
            return
        self.withdrawals.append(services.withdrawal_request(rider=rider, amount_fen=amount))
        self.model.reserved[rider.pk] += amount

    def decide(self, i: int, approve: bool) -> None:
        if not self.withdrawals:
            return
        withdrawal = Withdrawal.objects.get(pk=self.withdrawals[i % len(self.withdrawals)].pk)
        decide = services.withdrawal_approve if approve else services.withdrawal_reject
        if withdrawal.status != WithdrawalStatus.REQUESTED:
            with pytest.raises(OrderError):
                decide(withdrawal=withdrawal, operator=self.operator)
            return
        decide(withdrawal=withdrawal, operator=self.operator)
        self.model.reserved[withdrawal.rider_id] -= withdrawal.amount_fen
        if approve:
            self.model.earnings[withdrawal.rider_id] -= withdrawal.amount_fen

    # --- checks -------------------------------------------------------------------------------

    def check(self) -> None:
        """Three queries: the ledger's balance checks, then every account against the model."""
        assert_ledger_sound()
        balances = {
            (kind, owner, order): balance or 0
            for kind, owner, order, balance in Account.objects.annotate(
                b=Sum("entries__amount_fen")
            ).values_list("kind", "owner_id", "order_id", "b")
        }
        for student in self.students:
            assert (
                balances.get((AccountKind.WALLET, student.pk, None), 0)
                == (self.model.wallet[student.pk])
            )
        for rider in self.riders:
            earned = balances.get((AccountKind.RIDER_EARNINGS, rider.pk, None), 0)
            assert earned == self.model.earnings[rider.pk]
            assert earned - self.model.reserved[rider.pk] >= 0
        for order_id, held in self.model.escrow.items():
            assert balances.get((AccountKind.ESCROW, None, order_id), 0) == held
        for order_id, paid in self.model.paid.items():
            # A refund never exceeds what was paid (the model's refunds are checked through
            # the wallets above).
            assert self.model.refunded[order_id] <= paid

    def finish(self) -> None:
        """End every order the way the platform would; then no escrow may hold anything."""
        for n in self.slots:
            if self.order(n).status in (Status.PENDING, Status.OPEN, Status.ACCEPTED):
                self.cancel(n)
            while self.order(n).status in RIDER_STEPS:
                self.advance(n)
            if self.order(n).status == Status.DELIVERED:
                self.complete(n)
            assert self.order(n).status in (Status.COMPLETED, Status.CANCELLED, Status.EXPIRED)
        for i in range(len(self.withdrawals)):  # operators decide what is still waiting
            self.decide(i, approve=i % 2 == 0)
        self.check()
        held = Entry.objects.filter(account__kind=AccountKind.ESCROW).aggregate(
            s=Sum("amount_fen")
        )["s"]
        assert (held or 0) == 0


@pytest.fixture
def cast(campus, student, other_student, rider_male, operator, monkeypatch):
    second_rider = factories.make_rider(campus, gender="male")
    promised: dict = {}
    # Orders carry a promised time (orders' pricing); here each order says whether it is late.
    monkeypatch.setattr(services, "promised_at_of", lambda order: promised.get(order.pk))
    return campus, [student, other_student], [rider_male, second_rider], operator, promised


@settings(
    max_examples=30,
    database=None,  # no .hypothesis directory in the tree; failures print their example
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    # The first student can usually pay; the second is often short.
    wallets=st.tuples(st.integers(2_000, 6_000), st.integers(0, 3_000)),
    bonus=st.integers(500, 3_000),
    fates=st.lists(ORDER_FATE, min_size=1, max_size=4),
    moves=st.lists(MONEY_MOVE, max_size=6),
    schedule=st.lists(st.integers(0, 99), max_size=60),
)
def test_money_invariants_hold_over_random_order_lives(
    cast, wallets, bonus, fates, moves, schedule
):
    with transaction.atomic():
        world = World(*cast)
        for s, amount in enumerate(wallets):
            if amount >= 100:
                world.topup(s, amount)
        if bonus:  # earnings from before, so that withdrawals happen early too
            services.earnings_grant(rider=world.riders[0], amount_fen=bonus, reference="b")
            world.model.earnings[world.riders[0].pk] += bonus
        # One queue of steps per order (its steps stay in order) and one per money move;
        # `schedule` interleaves them, then whatever is left runs queue by queue.
        queues = [fate_steps(n, fate) for n, fate in enumerate(fates)] + [[m] for m in moves]
        for pick in [*schedule, *[0] * sum(map(len, queues))]:
            queues = [q for q in queues if q]
            if not queues:
                break
            name, *args = queues[pick % len(queues)].pop(0)
            getattr(world, name)(*args)
            world.check()
        world.finish()
        transaction.set_rollback(True)  # the next example starts from empty wallets
