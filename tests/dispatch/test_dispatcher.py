"""One dispatcher per campus (the lease), restarts that lose nothing, the run_dispatcher
command, and two dispatchers racing on PostgreSQL."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from dispatch import services
from dispatch.models import (
    Action,
    DispatcherLease,
    Mode,
    Offer,
    OfferStatus,
    OrderRisk,
    TravelMode,
)
from dispatch.runner import Dispatcher
from orders import services as order_services
from orders.models import Order
from orders.status import Status
from tests import factories


def test_the_lease_is_held_by_one_owner_until_it_expires_or_is_released(campus):
    now = timezone.now()
    assert services.lease_acquire(campus=campus, owner="a", now=now, seconds=30)
    assert not services.lease_acquire(campus=campus, owner="b", now=now, seconds=30)
    assert services.lease_acquire(
        campus=campus, owner="a", now=now + timedelta(seconds=20), seconds=30
    )
    # Renewed at +20 s: still a's at +40 s, b's once it lapses.
    assert not services.lease_acquire(
        campus=campus, owner="b", now=now + timedelta(seconds=40), seconds=30
    )
    assert services.lease_acquire(
        campus=campus, owner="b", now=now + timedelta(seconds=51), seconds=30
    )
    lease = DispatcherLease.objects.get(campus=campus)
    assert (lease.owner, lease.cycles) == ("b", 0)
    assert services.lease_release(campus=campus, owner="b", now=now + timedelta(seconds=52))
    assert services.lease_acquire(
        campus=campus, owner="a", now=now + timedelta(seconds=52), seconds=30
    )


def test_a_cycle_without_the_lease_writes_nothing(campus, student):
    factories.dispatch_settings(campus, mode=Mode.AUTO)
    factories.set_position(factories.make_rider(campus), dx=-1)
    factories.make_order(customer=student, campus=campus)
    now = timezone.now()
    services.lease_acquire(campus=campus, owner="holder", now=now, seconds=30)
    report = services.dispatch_cycle(campus=campus, now=now, lease_owner="intruder")
    assert report.skipped == "lease lost" and not Offer.objects.exists()
    report = services.dispatch_cycle(campus=campus, now=now, lease_owner="holder")
    assert report.offers == 1
    assert DispatcherLease.objects.get(campus=campus).cycles == 1


def test_a_dispatcher_restart_loses_no_order(campus, student):
    factories.dispatch_settings(campus, mode=Mode.AUTO, offer_timeout_seconds=20)
    first, second = (factories.make_rider(campus, gender="male") for _ in "ab")
    factories.set_position(first, dx=-1)
    factories.set_position(second, dx=3)
    orders = [factories.make_order(customer=student, campus=campus) for _ in range(3)]
    t0 = timezone.now()
    clock = {"now": t0}
    crashed = Dispatcher(owner="old", log=lambda line: None, clock=lambda: clock["now"])
    crashed.tick()
    offered = Offer.objects.filter(status=OfferStatus.PENDING)
    assert sorted(offered.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    lapsed = dict(offered.values_list("order_id", "rider_id"))
    # The process dies without releasing the lease. A new one stands by until it lapses.
    fresh = Dispatcher(owner="new", log=lambda line: None, clock=lambda: clock["now"])
    clock["now"] = t0 + timedelta(seconds=10)
    assert fresh.tick() == []
    clock["now"] = t0 + timedelta(seconds=31)
    [report] = fresh.tick()
    assert report.expired == 3 and report.offers == 3
    assert DispatcherLease.objects.get(campus=campus).owner == "new"
    for order in orders:
        order.refresh_from_db()
        assert order.status == Status.OPEN
        # Each order again on offer exactly once, to a rider who has not let it lapse.
        [offer] = order.dispatch_offers.filter(status=OfferStatus.PENDING)
        assert offer.rider_id != lapsed[order.pk]


def _behind(campus, student):
    """A walking rider far from the pickup with an order already five minutes overdue."""
    factories.dispatch_settings(
        campus, mode=Mode.AUTO, behind_minutes=10, default_travel_mode=TravelMode.WALKING
    )
    slow = factories.make_rider(campus, gender="male")
    factories.set_position(slow, dx=3)
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=slow)
    Order.objects.filter(pk=order.pk).update(promised_at=timezone.now() - timedelta(minutes=5))
    return slow, order


def test_a_rider_falling_behind_keeps_the_order_when_nobody_would_be_sooner(campus, student):
    slow, order = _behind(campus, student)
    # Another rider, but as far from the pickup: taking it from one to give it to the other
    # would only turn the first one back.
    twin = factories.make_rider(campus, gender="male")
    factories.set_position(twin, dx=3)
    report = services.dispatch_cycle(campus=campus, now=timezone.now())
    assert report.reassigned == 0
    order.refresh_from_db()
    assert (order.status, order.rider) == (Status.ACCEPTED, slow)
    assert OrderRisk.objects.filter(order=order, resolved_at__isnull=True).exists()


def test_a_rider_falling_behind_loses_the_order_to_a_rider_much_sooner(campus, student):
    slow, order = _behind(campus, student)
    spare = factories.make_rider(campus, gender="male")
    factories.set_position(spare, dx=-1)  # at the pickup
    report = services.dispatch_cycle(campus=campus, now=timezone.now())
    assert report.reassigned == 1
    decision = order.dispatch_decisions.get(action=Action.REASSIGNED)
    assert decision.terms["sooner_elsewhere_s"] >= services.REASSIGN_GAIN_S
    services.dispatch_cycle(campus=campus, now=timezone.now())  # the next cycle offers it
    assert order.dispatch_offers.get(status=OfferStatus.PENDING).rider == spare


def test_run_dispatcher_once_prints_the_cycle(campus, student):
    factories.dispatch_settings(campus, mode=Mode.AUTO)
    factories.set_position(factories.make_rider(campus), dx=-1)
    factories.make_order(customer=student, campus=campus)
    out = StringIO()
    call_command("run_dispatcher", "--campus", campus.slug, "--once", "--owner", "cli", stdout=out)
    text = out.getvalue()
    assert f"[{campus.slug}] lease acquired by cli" in text
    assert "1 open" in text and "1 offers" in text
    assert "lease released" in text
    with pytest.raises(CommandError, match="no such campus"):
        call_command("run_dispatcher", "--campus", "nowhere", "--once", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_only_one_runs_cycles(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time; the lease race needs PostgreSQL")
    from django.db import connections

    campus = factories.make_campus()
    factories.dispatch_settings(campus, mode=Mode.AUTO, cycle_seconds=1)
    student = factories.make_user(gender="female")
    for dx in (-1, 0, 3):
        factories.set_position(factories.make_rider(campus, gender="male"), dx=dx)
    for _ in range(5):
        factories.make_order(customer=student, campus=campus)
    monkeypatch.setattr(services, "LEASE_MIN_SECONDS", 2)

    start = threading.Barrier(2)
    cycles: dict[str, list] = {"one": [], "two": []}
    dispatchers = {
        name: Dispatcher(owner=name, campus_slugs=[campus.slug], log=lambda line: None)
        for name in cycles
    }

    def run(name):
        try:
            start.wait()
            for _ in range(6):
                cycles[name] += [r for r in dispatchers[name].tick() if not r.skipped]
                dispatchers[name].stop.wait(0.5)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(name,)) for name in cycles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ran = {name: len(reports) for name, reports in cycles.items()}
    assert sorted(ran.values())[0] == 0 and sorted(ran.values())[1] >= 2, ran
    winner = max(ran, key=ran.get)
    assert DispatcherLease.objects.get(campus=campus).owner == winner
    # Never two pending offers for one order, and every order got one.
    pending = list(
        Offer.objects.filter(status=OfferStatus.PENDING).values_list("order_id", flat=True)
    )
    assert len(pending) == len(set(pending)) == 5  # three riders carry up to three each
    assert Order.objects.filter(campus=campus, status=Status.OPEN).count() == 5

    # The winner stops without giving the lease up (a crash): the other takes over once it lapses.
    loser = dispatchers[min(ran, key=ran.get)]
    deadline = timezone.now() + timedelta(seconds=10)
    took_over = []
    while timezone.now() < deadline and not took_over:
        took_over = [r for r in loser.tick() if not r.skipped]
        loser.stop.wait(0.3)
    assert took_over, "the standby never took over"
    assert DispatcherLease.objects.get(campus=campus).owner == loser.owner


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_dispatcher_processes_only_one_dispatches():
    """`manage.py run_dispatcher` started twice at once against the same database."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time; the lease race needs PostgreSQL")
    import os
    import re
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.conf import settings

    campus = factories.make_campus()
    factories.dispatch_settings(campus, mode=Mode.AUTO, cycle_seconds=1)
    student = factories.make_user(gender="female")
    for dx in (-1, 3):
        factories.set_position(factories.make_rider(campus, gender="male"), dx=dx)
    for _ in range(3):
        factories.make_order(customer=student, campus=campus)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgis://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
    }
    command = [sys.executable, "manage.py", "run_dispatcher", "--campus", campus.slug]
    procs = {
        name: subprocess.Popen(
            [*command, "--seconds", "60", "--owner", name],
            cwd=Path(settings.BASE_DIR),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("proc-a", "proc-b")
    }
    lines: dict[str, list[str]] = {name: [] for name in procs}

    def read(name):
        for line in procs[name].stdout:
            lines[name].append(line)

    readers = [threading.Thread(target=read, args=(name,), daemon=True) for name in procs]
    for reader in readers:
        reader.start()
    try:
        # Both up (their start-up takes a few seconds), then both dispatching for a while.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            any("started" in line for line in lines[name]) for name in procs
        ):
            time.sleep(0.2)
        time.sleep(4)
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)  # graceful: finish the cycle, give the lease up
        for proc in procs.values():
            proc.wait(timeout=30)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for reader in readers:
        reader.join(timeout=5)
    outputs = {name: "".join(text) for name, text in lines.items()}
    cycles = {
        name: int(re.search(r"stopped after (\d+) cycles", out).group(1))
        for name, out in outputs.items()
    }
    assert sorted(cycles.values())[0] == 0 and sorted(cycles.values())[1] >= 2, outputs
    winner = max(cycles, key=cycles.get)
    assert f"lease acquired by {winner}" in outputs[winner]
    pending = list(
        Offer.objects.filter(status=OfferStatus.PENDING).values_list("order_id", flat=True)
    )
    assert len(pending) == len(set(pending)) == 3
