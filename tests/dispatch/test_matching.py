"""The pure dispatch core: insertion costs, the assignment, route plans (against the exact DP),
the cycle's rounds and risk flags. No database."""

import itertools
import math

import numpy as np
import pytest

from dispatch.matching import (
    INFEASIBLE,
    Courier,
    Job,
    Weights,
    assign,
    grab_score,
    insert_visits,
    nearest_rider_baseline,
    pair_costs,
    pickup_distance_total,
    plan_cycle,
    plan_route,
    route_state,
)
from dispatch.routing import Plan, Problem, Shipment, Stop, Vehicle, check_plan

W = Weights()
FAR = 10_000.0  # a due time nobody misses


def line(n: int, step: float = 100.0) -> np.ndarray:
    """n places on a straight path, ``step`` metres apart."""
    x = np.arange(n) * step
    return np.abs(x[:, None] - x[None, :])


def job(id, pickup, dropoff, due=FAR, **kw) -> Job:
    kw.setdefault("pickup_service", 0.0)
    kw.setdefault("dropoff_service", 0.0)
    return Job(id=id, pickup=pickup, dropoff=dropoff, due=due, **kw)


def rider(id, location, speed=1.0, capacity=3, pool="male", **kw) -> Courier:
    return Courier(id=id, pool=pool, location=location, speed=speed, capacity=capacity, **kw)


def states(couriers, dist, now=0.0):
    return [route_state(c, (), dist, now) for c in couriers]


def idle_cost(j: Job, c: Courier, dist, now=0.0, w=W) -> float:
    """The cost formula written out for an idle rider, independently of the vectorised code."""
    to_p = dist[c.location, j.pickup] / c.speed
    p_to_d = dist[j.pickup, j.dropoff] / c.speed
    at_pickup = now + c.offset_m / c.speed + to_p
    at_door = max(at_pickup, j.ready) + j.pickup_service + p_to_d
    return (
        w.travel * (to_p + p_to_d)
        + w.delivery * (at_door - now)
        + w.late * max(0.0, at_door - j.due)
        + w.credit * (100 - c.credit)
    )


def brute_force(cost: np.ndarray) -> float:
    """Cheapest assignment of min(rows, cols) pairs, by trying them all."""
    n, m = cost.shape
    best = math.inf
    if n <= m:
        for cols in itertools.permutations(range(m), n):
            best = min(best, sum(cost[r, c] for r, c in enumerate(cols)))
    else:
        for rows in itertools.permutations(range(n), m):
            best = min(best, sum(cost[r, c] for c, r in enumerate(rows)))
    return best


# --- the assignment ---------------------------------------------------------------------------


def test_matching_beats_nearest_rider_on_the_classic_trap():
    # Riders at 0 and 3; jobs picked up at 2 (oldest) and 4. Nearest-rider gives job A to the
    # rider at 3 (1 step) and job B to the rider at 0 (4 steps): 5. The optimum is 2 + 1 = 3.
    dist = line(6)
    jobs = [job(1, 2, 2), job(2, 4, 4)]
    couriers = [rider(10, 0), rider(11, 3)]
    greedy = nearest_rider_baseline(jobs, couriers, dist)
    assert greedy == [(0, 1), (1, 0)]
    assert pickup_distance_total(greedy, jobs, couriers, dist) == 500
    pc = pair_costs(jobs, states(couriers, dist), dist, 0.0)
    matched = sorted(assign(pc.cost))
    assert matched == [(0, 0), (1, 1)]
    assert pickup_distance_total(matched, jobs, couriers, dist) == 300


def test_pair_costs_and_assignment_equal_brute_force_on_small_cases():
    rng = np.random.default_rng(7)
    for _case in range(25):
        pts = rng.uniform(0, 800, size=(12, 2))
        dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
        n_jobs, n_riders = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        jobs = [
            job(
                i,
                int(rng.integers(12)),
                int(rng.integers(12)),
                due=float(rng.uniform(200, 900)),
                ready=float(rng.uniform(-50, 200)),
                pickup_service=30.0,
            )
            for i in range(n_jobs)
        ]
        couriers = [
            rider(
                100 + r,
                int(rng.integers(12)),
                speed=float(rng.uniform(1, 5)),
                offset_m=float(rng.uniform(0, 30)),
                credit=float(rng.uniform(60, 100)),
            )
            for r in range(n_riders)
        ]
        pc = pair_costs(jobs, states(couriers, dist), dist, 0.0)
        expected = np.array([[idle_cost(j, c, dist) for c in couriers] for j in jobs])
        np.testing.assert_allclose(pc.cost, expected, rtol=1e-9)
        matched = assign(pc.cost)
        assert len(matched) == min(n_jobs, n_riders)
        assert sum(pc.cost[j, r] for j, r in matched) == pytest.approx(brute_force(expected))


def test_insertion_into_a_route_equals_trying_every_position():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 1000, size=(40, 2))
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    ids = itertools.count(1)

    def some_job():
        p, d = rng.integers(0, 40, 2)
        return Job(
            next(ids),
            int(p),
            int(d),
            due=float(rng.uniform(300, 1500)),
            ready=float(rng.uniform(-100, 300)),
        )

    for _case in range(40):
        carried = tuple(some_job() for _ in range(rng.integers(0, 2)))
        assigned = tuple(some_job() for _ in range(rng.integers(0, 3)))
        c = rider(
            1, int(rng.integers(40)), speed=4.0, capacity=4, carried=carried, assigned=assigned
        )
        plan = plan_route(c, dist, 0.0)
        state = route_state(c, plan.visits, dist, 0.0)
        new = some_job()
        pc = pair_costs([new], [state], dist, 0.0)
        with_new = rider(
            1, c.location, speed=4.0, capacity=4, carried=carried, assigned=assigned + (new,)
        )
        best = math.inf
        for i in range(state.stops + 1):
            for j in range(i, state.stops + 1):
                s2 = route_state(with_new, insert_visits(state.visits, new.id, (i, j)), dist, 0.0)
                if s2.load_after.max() > 4:
                    continue
                at_door = s2.arrival_of(new.id)
                late_new = max(0.0, at_door - new.due)
                others = s2.late.sum() - late_new - state.late.sum()
                # The customers already on the route wait this much longer in all.
                delayed = sum(s2.arrival_of(old.id) - state.arrival_of(old.id) for old in c.jobs)
                cost = (
                    W.travel * (s2.travel_s - state.travel_s)
                    + W.delivery * (at_door + delayed)
                    + W.late * (late_new + others)
                    + W.load * c.load
                )
                best = min(best, cost)
        assert pc.cost[0, 0] == pytest.approx(best, rel=1e-9)


def test_gender_rules_are_hard_even_when_the_other_pool_is_closer():
    dist = line(10)
    womens_dorm = job(1, 1, 2, pools=frozenset({"female"}))
    couriers = [rider(10, 1, pool="male"), rider(11, 9, pool="female")]
    pc = pair_costs([womens_dorm], states(couriers, dist), dist, 0.0)
    assert pc.cost[0, 0] == INFEASIBLE
    assert assign(pc.cost) == [(0, 1)]
    only_men = [rider(10, 1, pool="male")]
    pc = pair_costs([womens_dorm], states(only_men, dist), dist, 0.0)
    assert assign(pc.cost) == []


def test_full_riders_own_orders_reach_and_refusals_are_hard():
    dist = line(30)
    full = rider(10, 1, capacity=1, assigned=(job(99, 3, 4),))
    own = rider(11, 1)
    far = rider(12, 29)
    said_no = rider(13, 2)
    ok = rider(14, 5)
    j = job(1, 1, 2, customer=11, excluded=frozenset({13}))
    couriers = [full, own, far, said_no, ok]
    pc = pair_costs(
        [j],
        [
            route_state(c, (), dist, 0)
            if not c.jobs
            else route_state(c, [(99, "pickup"), (99, "delivery")], dist, 0)
            for c in couriers
        ],
        dist,
        0.0,
        reach_m=1500,
    )
    assert [pc.cost[0, r] < INFEASIBLE for r in range(5)] == [False, False, False, False, True]
    # A rider with no live position is not held to the reach.
    lost = rider(12, 29, known_position=False)
    pc = pair_costs([j], states([lost], dist), dist, 0.0, reach_m=1500)
    assert pc.cost[0, 0] < INFEASIBLE


def test_lower_credit_loses_a_tie_and_a_late_rider_loses_to_an_on_time_one():
    dist = line(10)
    j = job(1, 5, 6)
    pc = pair_costs([j], states([rider(10, 4, credit=70), rider(11, 6, credit=95)], dist), dist, 0)
    assert assign(pc.cost) == [(0, 1)]
    urgent = job(1, 5, 6, due=300)  # 300 s: only the rider one step away makes it
    couriers = [rider(10, 4, speed=1.0), rider(11, 0, speed=1.0, credit=100)]
    pc = pair_costs([urgent], states(couriers, dist), dist, 0)
    assert assign(pc.cost) == [(0, 0)]
    assert pc.terms(0, 1).late_s > 0 and pc.terms(0, 0).late_s == 0


def test_terms_explain_the_cost():
    dist = line(10)
    c = rider(10, 2, speed=2.0, credit=90, offset_m=20)
    pc = pair_costs([job(1, 4, 7)], states([c], dist), dist, 0.0)
    t = pc.terms(0, 0)
    assert t.pickup_distance_m == 220
    assert t.extra_travel_s == pytest.approx((200 + 300) / 2)
    assert t.delivery_s == pytest.approx(10 + 100 + 150)
    assert t.cost == pytest.approx(t.extra_travel_s + W.delivery * t.delivery_s + W.credit * 10)


# --- route plans against the exact program -------------------------------------------------------


def random_courier(rng, n_jobs, n_places=30, windows=True):
    pts = rng.uniform(0, 1000, size=(n_places, 2))
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    jobs = []
    for i in range(n_jobs):
        p, d = (int(x) for x in rng.integers(0, n_places, 2))
        due = float(rng.uniform(600, 2400)) if windows else FAR * 100
        ready = float(rng.uniform(0, 300)) if windows else -math.inf
        jobs.append(Job(100 + i, p, d, due=due, ready=ready))
    carried = tuple(jobs[: n_jobs // 3])
    return rider(
        1, 0, speed=4.0, capacity=n_jobs, carried=carried, assigned=tuple(jobs[n_jobs // 3 :])
    ), dist


def as_problem(c: Courier, plan, dist, now=0.0):
    """The route as dispatch.routing's Problem/Plan in real seconds, for its own checker."""
    t0 = now + c.start_delay
    ships = [
        Shipment(
            j.id,
            c.location,
            j.dropoff,
            pickup_window=(0, 0),
            delivery_window=(0, j.due - t0),
            delivery_service=j.dropoff_service,
        )
        for j in c.carried
    ]
    ships += [
        Shipment(
            j.id,
            j.pickup,
            j.dropoff,
            pickup_window=(max(0, j.ready - t0), 1e12),
            delivery_window=(0, j.due - t0),
            pickup_service=j.pickup_service,
            delivery_service=j.dropoff_service,
        )
        for j in c.assigned
    ]
    stops = [Stop(jid, "pickup", 0) for jid in (j.id for j in c.carried)]
    stops += [Stop(jid, kind, 0) for jid, kind in plan.visits]
    problem = Problem(dist / c.speed, [Vehicle(1, c.location, None, c.capacity)], ships)
    return problem, Plan({1: tuple(stops)}, (), 0)


@pytest.mark.parametrize("n_jobs", [1, 2, 3, 4, 5, 6])
def test_route_plans_match_the_exact_program(n_jobs):
    rng = np.random.default_rng(100 + n_jobs)
    for _case in range(4):
        c, dist = random_courier(rng, n_jobs, windows=False)
        exact = plan_route(c, dist, 0.0, method="exact")
        vroom = plan_route(c, dist, 0.0, method="vroom")
        auto = plan_route(c, dist, 0.0)
        assert exact.method == auto.method == "exact"
        assert vroom.method == "vroom"
        # Integer seconds inside, so allow a second per leg of rounding between the two.
        assert vroom.travel_s >= exact.travel_s - 2 * n_jobs
        assert vroom.travel_s == pytest.approx(exact.travel_s, abs=2 * n_jobs)
        for plan in (exact, vroom):
            problem, as_plan = as_problem(c, plan, dist)
            assert check_plan(problem, as_plan, tolerance=1e-6) == []


def test_route_plans_keep_promises_when_they_can_and_wait_for_ready_pickups():
    dist = line(10)
    # Two deliveries in opposite directions; the one due first must go first even though the
    # other is nearer, and the pickup at 2 is not ready until t=500.
    c = rider(
        1,
        5,
        speed=1.0,
        capacity=3,
        carried=(job(1, 5, 9, due=450), job(2, 5, 4, due=2000)),
        assigned=(job(3, 2, 3, due=3000, ready=500),),
    )
    plan = plan_route(c, dist, 0.0)
    assert plan.late_s == 0
    assert plan.visits[0] == (1, "delivery")
    pickup_at = plan.arrivals[plan.visits.index((3, "pickup"))]
    state = route_state(c, plan.visits, dist, 0.0)
    assert pickup_at <= state.dep[plan.visits.index((3, "pickup")) + 1] - 0  # waits
    assert state.dep[plan.visits.index((3, "pickup")) + 1] >= 500


def test_an_impossible_promise_is_planned_as_little_late_as_possible():
    dist = line(10)
    # From 5, the door at 9 is 400 s away but due at 100; the one at 0 is due much later.
    c = rider(1, 5, speed=1.0, carried=(job(1, 5, 9, due=100), job(2, 5, 0, due=5000)))
    plan = plan_route(c, dist, 0.0)
    assert plan.method == "relaxed"
    assert plan.visits == ((1, "delivery"), (2, "delivery"))  # late one first, other on time
    assert plan.late_s == pytest.approx(300)


def test_riders_deliver_what_they_carry_before_saving_a_few_metres():
    """The route riders follow weighs the customers' waiting, not only the riding: three
    customers 400 m east come before one 200 m west, although west-first rides less."""
    dist = line(10)
    east = tuple(job(k, 5, 9) for k in (1, 2, 3))
    c = rider(1, 5, speed=1.0, capacity=4, carried=(job(4, 5, 3), *east))
    travel_only = plan_route(c, dist, 0.0, method="exact")
    assert travel_only.visits[0] == (4, "delivery")  # 800 s of riding, doors at 200, 800 x3
    plan = plan_route(c, dist, 0.0)
    assert plan.method == "exact"
    assert plan.visits[-1] == (4, "delivery")  # 1000 s of riding, doors at 400 x3, 1000
    assert plan.travel_s == 1000 and travel_only.travel_s == 800
    assert sum(plan.arrivals) < sum(travel_only.arrivals)


def _objective(c: Courier, visits, dist, now=0.0, w=W):
    state = route_state(c, visits, dist, now)
    if state.load_after.max() > c.capacity:
        return None
    doors = sum(state.arrival_of(j.id) - now for j in c.jobs)
    return (round(float(state.late.sum()), 3), w.travel * state.travel_s + w.delivery * doors)


def _every_order(c: Courier):
    stops = [(j.id, "delivery") for j in c.carried]
    stops += [(j.id, kind) for j in c.assigned for kind in ("pickup", "delivery")]
    for visits in itertools.permutations(stops):
        if all(
            visits.index((j.id, "pickup")) < visits.index((j.id, "delivery")) for j in c.assigned
        ):
            yield list(visits)


@pytest.mark.parametrize("n_jobs", [1, 2, 3, 4])
def test_route_plans_are_the_best_stop_order_for_promises_then_travel_and_doors(n_jobs):
    """Against trying every stop order: least lateness first, then travel + delivery times;
    ready times, capacity and orders already on board included."""
    rng = np.random.default_rng(40 + n_jobs)
    for _case in range(6):
        c, dist = random_courier(rng, n_jobs)
        c = rider(
            1,
            int(rng.integers(30)),
            speed=4.0,
            capacity=max(1, n_jobs - 1),
            carried=c.carried,
            assigned=c.assigned,
            offset_m=float(rng.uniform(0, 40)),
        )
        scores = [_objective(c, v, dist) for v in _every_order(c)]
        best = min(score for score in scores if score is not None)
        plan = plan_route(c, dist, 0.0)
        got = _objective(c, plan.visits, dist)
        assert got[0] == best[0]
        assert got[1] == pytest.approx(best[1], rel=1e-9)
        assert plan.method == ("relaxed" if got[0] > 0 else "exact")


def test_a_rider_passing_by_does_not_get_an_order_that_would_hold_up_the_food_they_carry():
    """Slipping an order in before a carried order's door delays that customer: the delay
    counts like the new customer's own wait, so a free rider a little farther off gets it."""
    dist = line(10)
    busy = rider(10, 5, carried=(job(1, 5, 9),))  # heading east with food for door 9
    free = rider(11, 2)
    new = job(2, 4, 3)  # pick up at 4, door at 3: west, behind the busy rider
    busy_state = route_state(busy, plan_route(busy, dist, 0.0).visits, dist, 0.0)
    pc = pair_costs([new], [busy_state, route_state(free, (), dist, 0.0)], dist, 0.0)
    t = pc.terms(0, 0)
    # Best for the busy rider: west first (new door at 200 s), the carried door 400 s later.
    assert (t.delivery_s, t.extra_travel_s, t.others_delay_s) == (200, 400, 400)
    assert t.cost == pytest.approx(400 + W.delivery * (200 + 400) + W.load * 1)
    assert assign(pc.cost) == [(0, 1)]
    assert pc.terms(0, 1).others_delay_s == 0


# --- the cycle ------------------------------------------------------------------------------------


def test_cycle_batches_a_second_order_onto_the_rider_passing_by():
    dist = line(20)
    jobs = [job(1, 2, 8, due=5000), job(2, 3, 9, due=5000)]
    couriers = [rider(10, 1, speed=2.0), rider(11, 19, speed=2.0)]
    plan = plan_cycle(jobs, couriers, dist, 0.0, rounds=3)
    assert {a.courier_id for a in plan.assignments} == {10}
    assert plan.routes[10].visits == (
        (1, "pickup"),
        (2, "pickup"),
        (1, "delivery"),
        (2, "delivery"),
    )
    without_batching = plan_cycle(jobs, couriers, dist, 0.0, rounds=1)
    assert {a.courier_id for a in without_batching.assignments} == {10, 11}
    assert plan.late_assignments() == []


def random_job(rng, ids, due, pools=None) -> Job:
    p, d = (int(x) for x in rng.integers(0, 40, 2))
    if pools is None:
        pools = frozenset({"female"}) if rng.random() < 0.3 else frozenset({"male", "female"})
    return Job(next(ids), p, d, due=float(due), pools=pools)


@pytest.mark.parametrize(
    ("seed", "n_riders", "n_jobs"), [(s, 12, 30) for s in range(4)] + [(9, 80, 90)]
)
def test_cycle_invariants_on_random_campuses(seed, n_riders, n_jobs):
    """Whatever the rounds and moves do, each order goes to one eligible rider, routes hold
    exactly each rider's orders (pickup before drop-off) and never exceed capacity."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1200, size=(40, 2))
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    ids = itertools.count(1)
    couriers = []
    for r in range(n_riders):
        pool = "female" if r % 3 == 0 else "male"
        mine = tuple(
            random_job(rng, ids, rng.uniform(1500, 2500), frozenset({pool}))
            for _ in range(rng.integers(0, 3))
        )
        couriers.append(
            rider(
                100 + r,
                int(rng.integers(40)),
                speed=4.0,
                capacity=3,
                pool=pool,
                carried=mine[:1],
                assigned=mine[1:],
            )
        )
    jobs = [random_job(rng, ids, rng.uniform(900, 2400)) for _ in range(n_jobs)]
    plan = plan_cycle(jobs, couriers, dist, 0.0, rounds=3)
    assert_consistent(plan, couriers)


def assert_consistent(plan, couriers):
    given = [a.job.id for a in plan.assignments]
    assert len(given) == len(set(given)) > 0
    by_id = {c.id: c for c in couriers}
    for a in plan.assignments:
        assert by_id[a.courier_id].pool in a.job.pools
    for c in couriers:
        new = {a.job.id for a in plan.assignments if a.courier_id == c.id}
        route = plan.routes.get(c.id)
        visits = route.visits if route else ()
        assert {job_id for job_id, _ in visits} == {j.id for j in c.jobs} | new
        carried = {j.id for j in c.carried}
        load, seen = len(carried), set()
        for job_id, kind in visits:
            if kind == "pickup":
                assert job_id not in carried
                seen.add(job_id)
                load += 1
            else:
                assert job_id in carried or job_id in seen
                load -= 1
            assert load <= c.capacity


def test_a_cycle_on_the_demo_campus_with_chains_of_moves_stays_consistent():
    """The benchmark's cycle (200 loaded riders, 60 new orders): orders move between riders
    in chains while batching, and every route still holds exactly its rider's orders."""
    bench = pytest.importorskip("bench.dispatch")
    campus = bench.demo_campus()
    rng = np.random.default_rng(2025)
    riders, _ = bench.loaded_riders(campus, rng, 200)
    new = bench.synthetic_jobs(campus, rng, 60, 1, created_ago_s=(0, 30), ready=True)
    plan = plan_cycle(new, riders, campus.dist, bench.NOW, reach_m=1500, rounds=3)
    assert_consistent(plan, riders)
    assert plan.late_assignments() == []


def test_cycle_flags_orders_nobody_can_deliver_on_time():
    dist = line(20)
    jobs = [
        job(1, 19, 18, due=100),  # the only rider is far away: late
        job(2, 1, 2, due=400, pools=frozenset({"female"})),  # nobody in her pool: no rider
        job(3, 1, 2, due=FAR),  # fine
    ]
    couriers = [rider(10, 0, speed=1.0, capacity=1)]
    plan = plan_cycle(jobs, couriers, dist, 0.0, rounds=1, risk_margin_s=300)
    risks = {r.job.id: r.reason for r in plan.risks}
    assert risks == {1: "late", 2: "no_rider"}
    assert [a.job.id for a in plan.assignments] == [3]
    grab = plan_cycle(jobs, couriers, dist, 0.0, assign_jobs=False)
    assert grab.assignments == [] and {r.job.id for r in grab.risks} == {1, 2}


def test_an_order_late_on_its_route_knows_how_soon_another_rider_could_bring_it():
    dist = line(20)
    late = job(1, 10, 12, due=100)  # not picked up: could change hands
    on_board = job(2, 0, 19, due=100)  # picked up: only its rider can finish it
    behind = rider(10, 0, speed=1.0, carried=(on_board,), assigned=(late,))
    free = rider(11, 9, speed=1.0)
    plan = plan_cycle([], [behind, free], dist, 0.0)
    risks = {r.job.id: r for r in plan.risks}
    assert risks[1].courier_id == risks[2].courier_id == 10
    assert risks[1].elsewhere == pytest.approx(300)  # 100 s to the pickup, 200 s on
    assert risks[1].predicted > risks[1].elsewhere
    assert risks[2].elsewhere is None
    alone = plan_cycle([], [behind], dist, 0.0)
    assert {r.job.id: r.elsewhere for r in alone.risks} == {1: None, 2: None}


def test_grab_score_parts_add_up():
    score = grab_score(400, 650, 10 * 60)
    assert (score.distance_points, score.fee_points, score.urgency_points) == (-2.0, 6.5, 2.0)
    assert score.total == 6.5
    assert grab_score(None, 500, 3600).total == 5.0


# --- the rider's planned route (database) ---------------------------------------------------------


def test_the_rider_app_gets_the_planned_stops_and_path_and_a_new_plan_after_a_detour(
    campus, student, api
):
    from django.urls import reverse

    from orders import services as order_services
    from tests import factories

    rider = factories.make_rider(campus, gender="male")
    west = factories.make_order(customer=student, campus=campus, pickup="C1", dropoff="C1")
    east = factories.make_order(customer=student, campus=campus, pickup="D3", dropoff="D3")
    for order in (west, east):
        order_services.order_accept(order=order, rider=rider)
    factories.set_position(rider, dx=-2)  # by C1: the west order first
    url = reverse("api:dispatch-route")
    body = api(rider).get(url).json()
    assert [(s["number"], s["kind"]) for s in body["stops"]] == [
        (west.number, "pickup"),
        (west.number, "delivery"),
        (east.number, "pickup"),
        (east.number, "delivery"),
    ]
    assert body["from_live_position"] and body["method"] == "exact"
    assert len(body["path"]) > 3 and body["distance_m"] > 500
    lng, lat = body["path"][0]
    assert (round(lng, 6), round(lat, 6)) == (
        round(factories.LNG0 - 2 * factories.DX, 6),
        factories.LAT0,
    )
    factories.set_position(rider, dx=3)  # the rider went east instead: re-planned from there
    body = api(rider).get(url).json()
    assert body["stops"][0]["number"] == east.number
    assert api().get(url).status_code == 401
    assert api(student).get(url).status_code == 403


def test_the_route_page_lists_the_stops_in_order(campus, student, client):
    from django.urls import reverse

    from orders import services as order_services
    from tests import factories

    rider = factories.make_rider(campus, gender="male")
    order = factories.make_order(customer=student, campus=campus, pickup="C1", dropoff="D3")
    order_services.order_accept(order=order, rider=rider)
    url = reverse("dispatch:route")
    assert client.get(url).status_code == 302  # login first
    client.force_login(rider)
    html = client.get(url).content.decode()
    assert html.index("Pick up") < html.index("Deliver")
    assert 'id="route-path"' in html and "C1" in html and "D3" in html
    client.force_login(student)
    assert client.get(url).status_code == 403
