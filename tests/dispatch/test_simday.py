"""The campus-day simulator: seeded demand, a short run through the real services with KPIs
that repeat for a seed, nothing left behind, and the report files."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from campus.models import Building
from dispatch.simday import (
    Kpis,
    SimConfig,
    SimDay,
    demand_generate,
    markdown_table,
    save_report,
    svg_bar_chart,
)
from orders.models import Order

pytestmark = pytest.mark.django_db

SHORT = dict(minutes=15, riders=4, drain_minutes=30, progress=False)


def _demo_buildings():
    SimDay(SimConfig())._campus()
    return {b.code: b for b in Building.objects.filter(campus__slug="demo")}


def test_demand_is_seeded_and_peaks_at_lunch():
    buildings = _demo_buildings()
    lunch = demand_generate(SimConfig(seed=3, start_hour=12, end_hour=13), buildings)
    again = demand_generate(SimConfig(seed=3, start_hour=12, end_hour=13), buildings)
    afternoon = demand_generate(SimConfig(seed=3, start_hour=15, end_hour=16), buildings)
    assert lunch == again
    assert lunch != demand_generate(SimConfig(seed=4, start_hour=12, end_hour=13), buildings)
    assert len(lunch) > 3 * len(afternoon)
    assert all(buildings[d.pickup].kind in ("canteen", "shop") for d in lunch)


def test_female_dorm_share_sets_the_share_of_orders_to_female_dorms():
    buildings = _demo_buildings()
    demand = demand_generate(
        SimConfig(seed=1, start_hour=20, end_hour=22, female_dorm_share=1 / 3), buildings
    )
    female = sum(1 for d in demand if buildings[d.dropoff].gender_rule == "female_only")
    assert 0.25 < female / len(demand) < 0.42


def test_a_short_run_delivers_orders_through_the_services_relays_some_and_rolls_back():
    # An evening with most orders to the women's dorms and one woman among four riders.
    config = SimConfig(
        seed=3,
        policy="auto-batch",
        start_hour=20,
        end_hour=21,
        female_rider_share=0.25,
        female_dorm_share=0.6,
        **SHORT,
    )
    sim = SimDay(config)
    kpis = sim.run()
    assert kpis.orders > 5
    assert kpis.delivered == kpis.orders
    assert kpis.relayed_share > 0  # handed over at the transfer station by the riders' codes
    assert 0 < kpis.avg_click_to_door_min <= kpis.p90_click_to_door_min
    # Where the time goes: waiting for a rider, riding to the pickup, pickup to door.
    stages = (kpis.avg_to_accept_min, kpis.avg_to_pickup_min, kpis.avg_pickup_to_door_min)
    assert all(stage > 0 for stage in stages)
    assert sum(stages) == pytest.approx(kpis.avg_click_to_door_min, abs=0.02)
    assert 0 < kpis.on_time_rate <= 1
    assert kpis.distance_per_order_m > 100
    assert kpis.orders_per_rider_hour > 0
    assert sim.errors == []
    assert not Order.objects.exists()  # rolled back


def test_kpis_repeat_for_a_seed():
    first = SimDay(SimConfig(seed=5, policy="grab", **SHORT)).run().as_dict()
    second = SimDay(SimConfig(seed=5, policy="grab", **SHORT)).run().as_dict()
    first.pop("wall_seconds"), second.pop("wall_seconds")
    assert first == second


def test_the_command_prints_and_saves_the_kpis(tmp_path):
    out = StringIO()
    call_command(
        "simulate_day",
        "--minutes=10",
        "--riders=4",
        "--policy=auto",
        "--quiet",
        f"--out={tmp_path}",
        stdout=out,
        stderr=StringIO(),
    )
    assert "| auto |" in out.getvalue()
    saved = json.loads((tmp_path / "simulate_day.json").read_text())
    assert saved["kpis"][0]["policy"] == "auto"
    assert "avg min" in (tmp_path / "simulate_day.md").read_text()


def test_the_report_has_a_table_row_and_a_bar_pair_per_policy(tmp_path):
    rows = [
        Kpis(policy="grab", avg_click_to_door_min=20, p90_click_to_door_min=30, on_time_rate=0.8),
        Kpis(policy="auto", avg_click_to_door_min=15, p90_click_to_door_min=22, on_time_rate=0.9),
    ]
    table = markdown_table(rows)
    assert table.count("\n") == 3 and "| 80.0% |" in table
    svg = svg_bar_chart(rows, title="t")
    assert svg.count("<rect") == 1 + 4 + 2  # background, two bars each, the legend
    save_report(rows, out=tmp_path, name="x", title="t")
    assert (tmp_path / "x.svg").read_text().startswith("<svg")


def test_riders_come_and_go_by_the_hour_and_the_busy_finish_first():
    from datetime import timedelta

    from dispatch.simday import BEIJING, RIDERS_PER_HOUR, SIM_DAY, SimClock, simulated_time
    from orders import services as order_services
    from orders.models import Kind
    from riders.models import RiderProfile, Shift

    sim = SimDay(SimConfig(start_hour=13, end_hour=15, progress=False))
    assert sim.shifts and not SimDay(SimConfig(start_hour=13, end_hour=15, riders=5)).shifts
    sim.clock = SimClock(SIM_DAY + timedelta(hours=13) - BEIJING)
    with simulated_time(sim.clock):
        sim._setup()
        roster = list(sim.riders.values())
        at_13, at_14 = RIDERS_PER_HOUR[13], RIDERS_PER_HOUR[14]
        assert len(roster) == at_13 > at_14
        assert [r.online for r in roster] == [True] * at_13
        # Every prefix of the roster has about the female share (0.4).
        women = sum(r.user.gender == "female" for r in roster[:at_14])
        assert women == round(at_14 * 0.4)
        busy = roster[-1]
        order = order_services.order_create(
            customer=sim.customers[0],
            kind=Kind.CUSTOM,
            pickup_building=sim.buildings["C1"],
            dropoff_building=sim.buildings["J1"],
            description="simulated",
            details={"offered_price_fen": 600},
        )
        order_services.order_accept(order=order, rider=busy.user)
        sim.clock.advance(3600)
        sim._roster(3600, 7200)
        online = RiderProfile.objects.filter(user__in=[r.user for r in roster], online=True)
        assert online.count() == at_14 + 1  # the busy rider finishes first
        assert busy.online and busy.leaving
        assert not any(r.online for r in roster[at_14:-1])
        # Back at the busier hour, the same riders come back through the online switch.
        sim._roster(0, 7200)
        assert online.count() == at_13 and not busy.leaving
        assert Shift.objects.filter(rider__in=[r.user for r in roster[at_14:-1]]).count() == (
            at_13 - at_14 - 1
        )


def test_a_rider_whose_shift_starts_later_can_take_orders():
    from datetime import timedelta

    from dispatch.simday import BEIJING, RIDERS_PER_HOUR, SIM_DAY, SimClock, simulated_time
    from orders import services as order_services
    from orders.models import Kind

    assert RIDERS_PER_HOUR[14] < RIDERS_PER_HOUR[16]
    sim = SimDay(SimConfig(start_hour=14, end_hour=17, progress=False))
    sim.clock = SimClock(SIM_DAY + timedelta(hours=14) - BEIJING)
    with simulated_time(sim.clock):
        sim._setup()
        late = list(sim.riders.values())[-1]
        assert not late.online
        sim.clock.advance(7200)
        sim._roster(7200, 10800)  # 16:00: her shift starts
        order = order_services.order_create(
            customer=sim.customers[0],
            kind=Kind.CUSTOM,
            pickup_building=sim.buildings["C1"],
            dropoff_building=sim.buildings["J1"],
            description="simulated",
            details={"offered_price_fen": 600},
        )
        assert late.online
        assert order_services.order_accept(order=order, rider=late.user).rider == late.user
