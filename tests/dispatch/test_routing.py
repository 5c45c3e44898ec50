"""Tests of dispatch.routing. Plain pytest: no Django, no database."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from dispatch.routing import (
    HORIZON,
    Plan,
    Problem,
    Shipment,
    Stop,
    Vehicle,
    check_plan,
    plan_cost,
    plan_routes,
    plan_single_exact,
)

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def line_matrix(size: int) -> np.ndarray:
    """Points 0..size-1 on a line: travel time |i - j|, so optima can be worked out by hand."""
    index = np.arange(size)
    return np.abs(index[:, None] - index[None, :])


def route_cost(matrix, start, stops, shipments, end=None) -> float:
    problem = Problem(matrix, [Vehicle(0, start, end, 10**6)], shipments)
    return plan_cost(problem, Plan({0: tuple(stops)}, (), 0))


def order(stops) -> list[tuple[int, str]]:
    return [(s.shipment_id, s.kind) for s in stops]


def one_rider_plan(stops, vehicle_id: int = 0) -> Plan:
    return Plan({vehicle_id: tuple(stops)}, (), 0)


def random_case(seed: int, n: int, windows: bool):
    """Random integer Euclidean matrix; windows are built around one feasible order."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1000, size=(2 * n + 1, 2))
    diff = points[:, None, :] - points[None, :, :]
    matrix = np.rint(np.sqrt((diff**2).sum(axis=2)) / 4).astype(np.int64)
    capacity = int(rng.integers(2, 4))
    shipments = []
    clock, position = 0, 0
    for i in rng.permutation(n):
        pickup, delivery = 1 + 2 * int(i), 2 + 2 * int(i)
        clock += int(matrix[position, pickup]) + 20
        pick = clock
        clock += int(matrix[pickup, delivery]) + 20
        if windows:
            pickup_window = (max(0, pick - 60), pick + int(rng.integers(30, 400)))
            delivery_window = (max(0, clock - 200), clock + int(rng.integers(60, 600)))
        else:
            pickup_window = delivery_window = (0, HORIZON)
        shipments.append(
            Shipment(
                id=int(i),
                pickup=pickup,
                delivery=delivery,
                amount=int(rng.integers(1, 3)),
                pickup_window=pickup_window,
                delivery_window=delivery_window,
                pickup_service=20,
                delivery_service=20,
            )
        )
        position = delivery
    return matrix, sorted(shipments, key=lambda s: s.id), capacity


def brute_force_optimum(matrix, start, shipments, capacity, end=None) -> float | None:
    """Cheapest feasible order by enumerating every permutation (tiny cases only)."""
    problem = Problem(matrix, [Vehicle(0, start, end, capacity)], shipments)
    visits = [(s.id, "pickup") for s in shipments] + [(s.id, "delivery") for s in shipments]
    best = None
    for perm in itertools.permutations(visits):
        plan = one_rider_plan([Stop(i, k, 0) for i, k in perm])
        if not check_plan(problem, plan):
            cost = plan_cost(problem, plan)
            best = cost if best is None else min(best, cost)
    return best


# ---------------------------------------------------------------------------------------------
# exact DP on hand-made cases
# ---------------------------------------------------------------------------------------------


def test_exact_on_a_line_rides_outwards():
    # Rider at 0; A: 2 -> 5, B: 3 -> 8. Sweeping right is optimal: 0,2,3,5,8 = 8.
    shipments = [Shipment(1, 2, 5), Shipment(2, 3, 8)]
    stops = plan_single_exact(line_matrix(10), 0, shipments, capacity=2)
    assert order(stops) == [(1, "pickup"), (2, "pickup"), (1, "delivery"), (2, "delivery")]
    assert [s.arrival for s in stops] == [2, 3, 5, 8]
    assert route_cost(line_matrix(10), 0, stops, shipments) == 8


def test_exact_picks_up_before_delivering():
    # The delivery point (1) is passed first on the way, but must wait for the pickup at 9.
    shipments = [Shipment(7, 9, 1)]
    stops = plan_single_exact(line_matrix(10), 0, shipments, capacity=1)
    assert order(stops) == [(7, "pickup"), (7, "delivery")]
    assert route_cost(line_matrix(10), 0, stops, shipments) == 9 + 8


def test_exact_respects_capacity():
    shipments = [Shipment(1, 1, 3), Shipment(2, 2, 4)]
    matrix = line_matrix(5)
    roomy = plan_single_exact(matrix, 0, shipments, capacity=2)
    assert route_cost(matrix, 0, roomy, shipments) == 4  # 0,1,2,3,4 with both on board
    tight = plan_single_exact(matrix, 0, shipments, capacity=1)
    assert order(tight) == [(1, "pickup"), (1, "delivery"), (2, "pickup"), (2, "delivery")]
    assert route_cost(matrix, 0, tight, shipments) == 6  # 0,1,3,2,4
    problem = Problem(matrix, [Vehicle(0, 0, None, 1)], shipments)
    assert check_plan(problem, one_rider_plan(tight)) == []


def test_exact_respects_time_windows_and_waits():
    matrix = line_matrix(10)
    # Rider at 5, a near job to the left (4 -> 3) and a far one to the right (8 -> 9).
    near, far = Shipment(1, 4, 3), Shipment(2, 8, 9)
    stops = plan_single_exact(matrix, 5, [near, far], capacity=2)
    assert order(stops)[0] == (1, "pickup")  # 5,4,3,8,9 = 8, far pickup at t=7
    assert route_cost(matrix, 5, stops, [near, far]) == 8
    # The far pickup must happen by t=6: go right first, 5,8,9,4,3 = 10.
    far = Shipment(2, 8, 9, pickup_window=(0, 6))
    stops = plan_single_exact(matrix, 5, [near, far], capacity=2)
    assert order(stops) == [(2, "pickup"), (2, "delivery"), (1, "pickup"), (1, "delivery")]
    assert route_cost(matrix, 5, stops, [near, far]) == 10
    # A delivery window opening at 20 makes the rider wait; arrival is before the opening.
    late_open = Shipment(3, 1, 2, delivery_window=(20, 30), delivery_service=5)
    stops = plan_single_exact(matrix, 0, [late_open], capacity=1)
    assert [s.arrival for s in stops] == [1, 2]
    problem = Problem(matrix, [Vehicle(0, 0, None, 1)], [late_open])
    assert check_plan(problem, one_rider_plan(stops)) == []


def test_exact_keeps_expensive_but_early_partial_routes():
    # Rider at 0 on a line. A: 7 -> 0, due by 18. B: 5 -> 6, pickup opens at 10.
    # After {pick A, pick B, drop B} the rider is at 6 either via 0,5,7,6 (cost 8, free at 13:
    # it waited at 5) or via 0,7,5,6 (cost 10, free at 11). Only the dearer, earlier one can
    # still bring A home by 18, so a DP keeping one cheapest label per state would fail here.
    matrix = line_matrix(8)
    a = Shipment(1, 7, 0, delivery_window=(0, 18))
    b = Shipment(2, 5, 6, pickup_window=(10, 99))
    stops = plan_single_exact(matrix, 0, [a, b], capacity=2)
    assert order(stops) == [(1, "pickup"), (2, "pickup"), (2, "delivery"), (1, "delivery")]
    assert [s.arrival for s in stops] == [7, 9, 11, 17]
    assert route_cost(matrix, 0, stops, [a, b]) == 16 == brute_force_optimum(matrix, 0, [a, b], 2)


def test_exact_returns_none_when_infeasible():
    shipments = [Shipment(1, 9, 1, pickup_window=(0, 3))]  # 9 is 9 away
    assert plan_single_exact(line_matrix(10), 0, shipments, capacity=1) is None
    assert plan_single_exact(line_matrix(10), 0, [Shipment(1, 1, 2, amount=3)], 2) is None
    assert plan_single_exact(line_matrix(10), 0, [], 2) == []


def test_exact_counts_the_return_leg_when_an_end_is_given():
    shipments = [Shipment(1, 4, 6)]
    stops = plan_single_exact(line_matrix(10), 0, shipments, capacity=1, end=0)
    assert route_cost(line_matrix(10), 0, stops, shipments, end=0) == 12


@pytest.mark.parametrize("seed", range(12))
def test_exact_matches_brute_force(seed):
    n = 1 + seed % 3
    matrix, shipments, capacity = random_case(seed, n, windows=seed % 2 == 0)
    # Make it asymmetric and non-metric: the DP must not rely on the triangle inequality.
    matrix = matrix + np.random.default_rng(seed).integers(0, 40, matrix.shape)
    np.fill_diagonal(matrix, 0)
    stops = plan_single_exact(matrix, 0, shipments, capacity)
    expected = brute_force_optimum(matrix, 0, shipments, capacity)
    got = None if stops is None else route_cost(matrix, 0, stops, shipments)
    assert got == expected


def test_exact_is_fast_at_six_shipments():
    matrix, shipments, _ = random_case(3, 6, windows=False)
    plan_single_exact(matrix, 0, shipments, 12)  # warm-up
    began = time.perf_counter()
    for _ in range(5):
        stops = plan_single_exact(matrix, 0, shipments, 12)
    elapsed = (time.perf_counter() - began) / 5
    assert stops is not None and len(stops) == 12
    assert elapsed < 0.05  # target is 10 ms; loose so a busy CI box does not flake


# ---------------------------------------------------------------------------------------------
# VROOM against the oracle
# ---------------------------------------------------------------------------------------------


# Seeds checked by hand to be cases where VROOM finds the optimum (it is a heuristic).
@pytest.mark.parametrize("seed", range(10))
def test_vroom_matches_exact_optimum_for_one_rider(seed):
    n = 1 + seed % 5
    matrix, shipments, capacity = random_case(100 + seed, n, windows=seed % 2 == 1)
    exact = plan_single_exact(matrix, 0, shipments, capacity)
    assert exact is not None
    problem = Problem(matrix, [Vehicle(5, 0, None, capacity)], shipments)
    plan = plan_routes(problem)
    assert plan.unassigned == ()
    assert check_plan(problem, plan) == []
    assert plan.travel_cost == route_cost(matrix, 0, exact, shipments)
    assert plan.travel_cost == plan_cost(problem, plan)


# ---------------------------------------------------------------------------------------------
# check_plan catches every kind of violation
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def small():
    matrix = line_matrix(10)
    shipments = [
        Shipment(1, 1, 3, amount=2, delivery_window=(0, 6)),
        Shipment(2, 2, 4, amount=1, skills=frozenset({1})),
    ]
    vehicles = [Vehicle(10, 0, None, capacity=3, skills=frozenset({1})), Vehicle(11, 0, 0, 3)]
    problem = Problem(matrix, vehicles, shipments)
    good = [Stop(1, "pickup", 1), Stop(2, "pickup", 2), Stop(1, "delivery", 3)]
    good.append(Stop(2, "delivery", 4))
    assert check_plan(problem, one_rider_plan(good, 10)) == []  # the baseline is clean
    return problem, good


def test_check_catches_delivery_before_pickup(small):
    problem, good = small
    swapped = [good[2], good[1], good[0], good[3]]
    violations = check_plan(problem, one_rider_plan(swapped, 10))
    assert any("shipment 1 delivered without being on board" in v for v in violations)


def test_check_catches_over_capacity(small):
    problem, good = small
    small_van = Problem(
        problem.matrix, [Vehicle(10, 0, None, 2, frozenset({1}))], problem.shipments
    )
    violations = check_plan(small_van, one_rider_plan(good, 10))
    assert any("load 3 exceeds capacity 2" in v for v in violations)


def test_check_catches_lateness(small):
    problem, good = small
    # Delivering 2 first (0,1,2,4,3) brings shipment 1 to its door at t=5: fine within (0, 6),
    # late once the window closes at 4.
    detour = [good[0], good[1], good[3], good[2]]
    assert check_plan(problem, one_rider_plan(detour, 10)) == []
    tight = Problem(
        problem.matrix,
        problem.vehicles,
        [Shipment(1, 1, 3, amount=2, delivery_window=(0, 4)), problem.shipments[1]],
    )
    violations = check_plan(tight, one_rider_plan(detour, 10))
    assert any("after its window closes at 4" in v for v in violations)


def test_check_catches_vehicle_shift_overrun(small):
    problem, good = small
    # Vehicle 11 must be back at 0 by 5; the route needs 4 out and 4 back.
    short_shift = Problem(
        problem.matrix,
        [Vehicle(11, 0, 0, 3, frozenset({1}), time_window=(0, 5))],
        problem.shipments,
    )
    violations = check_plan(short_shift, one_rider_plan(good, 11))
    assert any("after the vehicle's shift ends" in v for v in violations)


def test_check_catches_missing_and_double_service(small):
    problem, good = small
    only_first = [good[0], good[2]]
    violations = check_plan(problem, one_rider_plan(only_first, 10))
    assert any("shipment 2 is neither served nor listed as unassigned" in v for v in violations)
    # Listing it as unassigned makes the plan acceptable again.
    assert check_plan(problem, Plan({10: tuple(only_first)}, (2,), 0)) == []
    twice = Plan({10: tuple(good), 11: (good[0], good[2])}, (), 0)
    assert any("shipment 1 delivered 2 times" in v for v in check_plan(problem, twice))
    both = Plan({10: tuple(good)}, (1,), 0)
    assert any("both served and listed as unassigned" in v for v in check_plan(problem, both))


def test_check_catches_unfinished_shipment(small):
    problem, good = small
    violations = check_plan(problem, one_rider_plan(good[:3], 10))
    assert any("shipment 2 picked up but never delivered" in v for v in violations)


def test_check_catches_skill_mismatch(small):
    problem, good = small
    violations = check_plan(problem, one_rider_plan(good, 11))  # vehicle 11 lacks skill 1
    assert any("shipment 2 needs skills [1]" in v for v in violations)


def test_check_uses_the_tolerance_only_for_times():
    matrix = np.array([[0.0, 1.0000001], [1.0000001, 0.0]])
    problem = Problem(matrix, [Vehicle(0, 0, None, 1)], [Shipment(1, 0, 1, delivery_window=(0, 1))])
    plan = one_rider_plan([Stop(1, "pickup", 0), Stop(1, "delivery", 1)])
    assert check_plan(problem, plan)
    assert check_plan(problem, plan, tolerance=1e-6) == []


# ---------------------------------------------------------------------------------------------
# plan_routes behaviour
# ---------------------------------------------------------------------------------------------


def test_skills_restrict_vehicles_and_unservable_shipments_are_unassigned():
    matrix = line_matrix(10)
    shipments = [
        Shipment(1, 1, 2, skills=frozenset({1})),  # e.g. women's dorm: needs skill 1
        Shipment(2, 3, 4, skills=frozenset({1})),
        Shipment(3, 5, 6),
        Shipment(4, 7, 8, skills=frozenset({2})),  # no vehicle has skill 2
    ]
    vehicles = [Vehicle(20, 0, None, 4), Vehicle(21, 9, None, 4, frozenset({1}))]
    problem = Problem(matrix, vehicles, shipments)
    plan = plan_routes(problem)
    assert check_plan(problem, plan) == []
    assert plan.unassigned == (4,)
    assert {s.shipment_id for s in plan.routes[21]} >= {1, 2}
    assert all(s.shipment_id not in (1, 2) for s in plan.routes.get(20, ()))


def test_capacity_and_amount_too_big():
    matrix = line_matrix(6)
    shipments = [Shipment(1, 1, 2, amount=3), Shipment(2, 3, 4, amount=5)]
    problem = Problem(matrix, [Vehicle(0, 0, None, 4)], shipments)
    plan = plan_routes(problem)
    assert plan.unassigned == (2,)
    assert check_plan(problem, plan) == []


def test_fixed_cost_trades_distance_for_fewer_vehicles():
    # A rider waits at each pickup. Without a fixed cost both ride (1 + 1 = 2); with one, the
    # rider at 0 does both (0,1,5,6 = 6) because a second vehicle costs more than the detour.
    matrix = line_matrix(10)
    shipments = [Shipment(1, 0, 1), Shipment(2, 5, 6)]
    vehicles = [Vehicle(1, 0, None, 2), Vehicle(2, 5, None, 2)]
    free = plan_routes(Problem(matrix, vehicles, shipments))
    assert (free.vehicles_used, free.travel_cost) == (2, 2)
    costly = plan_routes(Problem(matrix, vehicles, shipments, fixed_vehicle_cost=1000))
    assert costly.vehicles_used == 1 and costly.travel_cost == 6
    assert check_plan(Problem(matrix, vehicles, shipments), costly) == []


def test_plan_routes_rejects_fractional_data():
    with pytest.raises(ValueError, match="integer matrix"):
        plan_routes(Problem(line_matrix(3) / 2, [Vehicle(0, 0, None, 1)], [Shipment(1, 1, 2)]))
    with pytest.raises(ValueError, match="integer"):
        plan_routes(
            Problem(
                line_matrix(3),
                [Vehicle(0, 0, None, 1)],
                [Shipment(1, 1, 2, pickup_window=(0, 2.5))],
            )
        )


def test_problem_validates_indices_and_ids():
    with pytest.raises(ValueError, match="square"):
        Problem(np.zeros((2, 3)), [], [])
    with pytest.raises(ValueError, match="outside"):
        Problem(line_matrix(3), [], [Shipment(1, 1, 3)])
    with pytest.raises(ValueError, match="duplicate"):
        Problem(line_matrix(3), [], [Shipment(1, 1, 2), Shipment(1, 0, 2)])


def test_empty_problems():
    problem = Problem(line_matrix(3), [], [Shipment(1, 1, 2)])
    assert plan_routes(problem).unassigned == (1,)
    plan = plan_routes(Problem(line_matrix(3), [Vehicle(0, 0, 0, 1)], []))
    assert plan.routes == {} and plan.travel_cost == 0


# ---------------------------------------------------------------------------------------------
# Li & Lim lc101
# ---------------------------------------------------------------------------------------------


def test_lc101_is_solved_feasibly_with_ten_vehicles():
    bench = pytest.importorskip("bench.dispatch")
    directory = bench.find_lilim_dir()
    if directory is None or not (directory / "lc101.txt").exists():
        pytest.skip("Li & Lim data not available")
    instance = bench.load_instance(directory / "lc101.txt")
    plan = plan_routes(instance.problem(bench.SCALE), threads=2)
    real = instance.problem()
    from dispatch.routing import retime

    real_plan = retime(real, plan)
    assert plan.unassigned == ()
    assert check_plan(real, real_plan) == []  # exact doubles, no tolerance needed
    assert plan.vehicles_used == 10
    assert real_plan.travel_cost == pytest.approx(828.94, abs=0.01)
    # The published best-known solution passes the same checker.
    best = bench.load_best_known(directory, "lc101")
    best_plan = retime(real, instance.plan_from_nodes(best.routes))
    assert check_plan(real, best_plan) == []
    assert best_plan.travel_cost == pytest.approx(828.94, abs=0.005)
