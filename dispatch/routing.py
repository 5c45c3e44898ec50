"""Route planning for dispatch: pickup-and-delivery with time windows, capacity and skills.

Pure Python on purpose (no Django, no database): the planner is fed plain numbers so it can be
benchmarked against academic instances and tested without fixtures, and so the web side decides
how locations become matrix indices.

Model
-----
* Locations are indices into a square travel matrix (``matrix[i][j]`` = time from i to j). The
  same matrix is used as the cost, so "travel cost" and "travel time" are one number.
* A rider leaves ``vehicle.start`` at ``vehicle.time_window[0]``. At each stop it arrives, waits
  if the window has not opened yet, serves, then drives on. Arriving after the window's latest
  time is infeasible. Starting as early as allowed is never worse for feasibility when waiting
  is free, which is why both the checker and the reported arrival times use that schedule.
* ``vehicle.end = None`` means an open route: the rider stays at the last delivery, so no
  return leg is driven or counted.
* Skills encode hard eligibility rules (for instance a gender rule for dorm deliveries): a
  shipment may only ride on a vehicle whose skills include all of the shipment's skills.

Entry points: :func:`plan_routes` (VROOM heuristic, any size), :func:`plan_single_exact` (exact
oracle for one rider and a handful of shipments), :func:`check_plan` (independent checker) and
:func:`plan_cost`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import vroom

# VROOM stores user times as uint32; its "no time window" is exactly this value, so using it as
# our default keeps an unbounded window unbounded after the round trip.
HORIZON: Final = 2**32 - 1

# Six shipments (12 stops, ~3,000 DP states) solve in a couple of milliseconds; every further
# shipment multiplies the states by ~3.5 and the Pareto labels by more, so the oracle would stop
# being cheap enough to call per test case or per dispatch decision.
MAX_EXACT_SHIPMENTS: Final = 6

Kind = Literal["pickup", "delivery"]
Window = tuple[float, float]


class Stop(NamedTuple):
    """One visit of a route. ``arrival`` is when the rider reaches the location; service begins
    at ``max(arrival, window earliest)``."""

    shipment_id: int
    kind: Kind
    arrival: float


@dataclass(frozen=True)
class Shipment:
    """Carry ``amount`` units from matrix index ``pickup`` to matrix index ``delivery``."""

    id: int
    pickup: int
    delivery: int
    amount: int = 1
    pickup_window: Window = (0, HORIZON)
    delivery_window: Window = (0, HORIZON)
    pickup_service: float = 0
    delivery_service: float = 0
    skills: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Vehicle:
    """A rider. ``end=None`` leaves the route open (no return leg)."""

    id: int
    start: int
    end: int | None
    capacity: int
    skills: frozenset[int] = frozenset()
    time_window: Window = (0, HORIZON)


@dataclass(frozen=True)
class Problem:
    """A dispatch problem; ``matrix`` may be integer (required by :func:`plan_routes`) or float
    (fine for :func:`check_plan` and :func:`plan_cost`, e.g. to re-check a scaled solve in the
    original units)."""

    matrix: npt.NDArray[np.number]
    vehicles: Sequence[Vehicle]
    shipments: Sequence[Shipment]
    # Charged once per used vehicle. Make it larger than any achievable travel saving and the
    # solver minimises the number of riders first, travel second.
    fixed_vehicle_cost: int = 0

    def __post_init__(self) -> None:
        matrix = np.asarray(self.matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix must be square, got shape {matrix.shape}")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "vehicles", tuple(self.vehicles))
        object.__setattr__(self, "shipments", tuple(self.shipments))
        size = matrix.shape[0]
        for label, items in (("vehicle", self.vehicles), ("shipment", self.shipments)):
            ids = [item.id for item in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate {label} ids")
        for v in self.vehicles:
            if not (0 <= v.start < size) or (v.end is not None and not 0 <= v.end < size):
                raise ValueError(f"vehicle {v.id}: location outside the matrix")
        for s in self.shipments:
            if not (0 <= s.pickup < size and 0 <= s.delivery < size):
                raise ValueError(f"shipment {s.id}: location outside the matrix")

    def _shipments_by_id(self) -> dict[int, Shipment]:
        return {s.id: s for s in self.shipments}


@dataclass(frozen=True)
class Plan:
    """Routes keyed by vehicle id (only vehicles that serve something), in problem order."""

    routes: dict[int, tuple[Stop, ...]]
    unassigned: tuple[int, ...]
    # Sum of matrix entries driven, return legs included, fixed vehicle costs excluded.
    travel_cost: float
    solver_seconds: float = field(default=0.0, compare=False)

    @property
    def vehicles_used(self) -> int:
        return len(self.routes)


# --------------------------------------------------------------------------------------------
# Shared route arithmetic
# --------------------------------------------------------------------------------------------


def _walk(
    matrix: npt.NDArray[np.number],
    start: int,
    end: int | None,
    start_time: float,
    visits: Sequence[tuple[int, Kind]],
    shipments: dict[int, Shipment],
) -> tuple[list[Stop], float]:
    """Earliest schedule of a fixed visit order: stops with arrival times, and travel cost.
    It does not judge feasibility; that is :func:`check_plan`'s job."""
    stops: list[Stop] = []
    position, clock, travel = start, start_time, 0
    for shipment_id, kind in visits:
        s = shipments[shipment_id]
        if kind == "pickup":
            location, window, service = s.pickup, s.pickup_window, s.pickup_service
        else:
            location, window, service = s.delivery, s.delivery_window, s.delivery_service
        leg = matrix[position, location].item()
        clock += leg
        travel += leg
        stops.append(Stop(shipment_id, kind, clock))
        clock = max(clock, window[0]) + service
        position = location
    if end is not None and stops:
        travel += matrix[position, end].item()
    return stops, travel


def plan_cost(problem: Problem, plan: Plan) -> float:
    """Travel cost of ``plan`` measured on ``problem``'s matrix (which may differ from the one
    the plan was solved on, e.g. float distances versus a scaled integer copy)."""
    by_id = problem._shipments_by_id()
    vehicles = {v.id: v for v in problem.vehicles}
    total: float = 0
    for vehicle_id, stops in plan.routes.items():
        v = vehicles[vehicle_id]
        visits = [(stop.shipment_id, stop.kind) for stop in stops]
        total += _walk(problem.matrix, v.start, v.end, v.time_window[0], visits, by_id)[1]
    return total


def retime(problem: Problem, plan: Plan) -> Plan:
    """The same visit orders re-timed and re-costed on ``problem`` (e.g. back in real units)."""
    by_id = problem._shipments_by_id()
    vehicles = {v.id: v for v in problem.vehicles}
    routes: dict[int, tuple[Stop, ...]] = {}
    total: float = 0
    for vehicle_id, stops in plan.routes.items():
        v = vehicles[vehicle_id]
        visits = [(stop.shipment_id, stop.kind) for stop in stops]
        new_stops, travel = _walk(problem.matrix, v.start, v.end, v.time_window[0], visits, by_id)
        routes[vehicle_id] = tuple(new_stops)
        total += travel
    return Plan(routes, plan.unassigned, total, plan.solver_seconds)


# --------------------------------------------------------------------------------------------
# VROOM
# --------------------------------------------------------------------------------------------


def _require_int(value: float, what: str) -> int:
    if int(value) != value or value < 0 or value > HORIZON:
        raise ValueError(f"{what} must be an integer in [0, 2^32), got {value!r}")
    return int(value)


def _window(window: Window, what: str) -> vroom.TimeWindow:
    return vroom.TimeWindow(_require_int(window[0], what), _require_int(window[1], what))


def plan_routes(
    problem: Problem,
    *,
    exploration_level: int = 5,
    threads: int = 1,
    timeout: float | None = None,
) -> Plan:
    """Solve ``problem`` with VROOM (heuristic). All times, services and matrix entries must be
    non-negative integers: VROOM works in uint32, so callers scale real-valued data themselves.

    ``exploration_level`` is VROOM's ``-x`` (0..5, higher = slower and better); ``timeout`` in
    seconds caps the search."""
    if not 0 <= exploration_level <= 5:
        raise ValueError("exploration_level must be within 0..5")
    matrix = problem.matrix
    if matrix.size and (
        not np.all(np.equal(np.mod(matrix, 1), 0)) or matrix.min() < 0 or matrix.max() > HORIZON
    ):
        raise ValueError("plan_routes needs a non-negative integer matrix (scale it first)")
    if not problem.shipments or not problem.vehicles:
        return Plan({}, tuple(s.id for s in problem.shipments), 0)

    solver = vroom.Input()
    solver.set_durations_matrix(profile="car", matrix_input=matrix.astype(np.uint32))
    costs = vroom.VehicleCosts(fixed=_require_int(problem.fixed_vehicle_cost, "fixed cost"))
    # Internal ids are positions: VROOM wants integer ids unique per job type, and positions
    # spare us from validating whatever ids the caller uses.
    for index, v in enumerate(problem.vehicles):
        solver.add_vehicle(
            vroom.Vehicle(
                id=index,
                start=v.start,
                end=v.end,
                capacity=[_require_int(v.capacity, f"vehicle {v.id} capacity")],
                skills=set(v.skills),
                time_window=_window(v.time_window, f"vehicle {v.id} time window"),
                costs=costs,
            )
        )
    for index, s in enumerate(problem.shipments):
        solver.add_shipment(
            vroom.ShipmentStep(
                id=index,
                location=s.pickup,
                default_service=_require_int(s.pickup_service, f"shipment {s.id} service"),
                time_windows=[_window(s.pickup_window, f"shipment {s.id} pickup window")],
            ),
            vroom.ShipmentStep(
                id=index,
                location=s.delivery,
                default_service=_require_int(s.delivery_service, f"shipment {s.id} service"),
                time_windows=[_window(s.delivery_window, f"shipment {s.id} delivery window")],
            ),
            amount=vroom.Amount([_require_int(s.amount, f"shipment {s.id} amount")]),
            skills=set(s.skills),
        )
    began = time.perf_counter()
    solution = solver.solve(
        exploration_level=exploration_level,
        nb_threads=threads,
        timeout=None if timeout is None else timedelta(seconds=timeout),
    )
    solver_seconds = time.perf_counter() - began
    frame = solution.routes

    visits: dict[int, list[tuple[int, Kind]]] = {}
    if len(frame):
        tasks = frame[frame["type"].isin(["pickup", "delivery"])]
        for vehicle_index, kind, job_index in zip(
            tasks["vehicle_id"].tolist(), tasks["type"].astype(str).tolist(), tasks["id"].tolist()
        ):
            shipment_id = problem.shipments[int(job_index)].id
            visits.setdefault(int(vehicle_index), []).append((shipment_id, kind))

    by_id = problem._shipments_by_id()
    served = {shipment_id for route in visits.values() for shipment_id, _ in route}
    routes: dict[int, tuple[Stop, ...]] = {}
    total: float = 0
    for index, v in enumerate(problem.vehicles):
        if index not in visits:
            continue
        stops, travel = _walk(matrix, v.start, v.end, v.time_window[0], visits[index], by_id)
        routes[v.id] = tuple(stops)
        total += travel
    unassigned = tuple(s.id for s in problem.shipments if s.id not in served)
    return Plan(routes, unassigned, total, solver_seconds)


# --------------------------------------------------------------------------------------------
# Exact single-rider oracle
# --------------------------------------------------------------------------------------------


def plan_single_exact(
    matrix: npt.ArrayLike,
    start: int,
    shipments: Sequence[Shipment],
    capacity: int,
    start_time: float = 0,
    *,
    end: int | None = None,
) -> list[Stop] | None:
    """Optimal route for one rider serving every shipment, or ``None`` if no order is feasible.

    Objective: minimum travel cost (sum of matrix entries, the return leg to ``end`` included)
    subject to hard time windows with free waiting; ties go to the earlier finish. This is the
    objective VROOM minimises for one vehicle, which is what makes it a usable oracle. We chose
    "infeasible -> None" over a lateness penalty because a penalty would mix two units and the
    oracle would stop being comparable with the solver. Skills are not checked: with a single
    rider the caller decides eligibility before asking.

    Method: forward dynamic programme over (picked mask, delivered mask, current stop), one
    layer per stop made. Because waiting is allowed, a cheaper partial route can be *later*, so
    each state keeps the Pareto set of (cost, ready time) labels rather than one value; the
    search stays exact. Layers are processed with numpy: a pure-Python loop over the ~10^4
    transitions of six shipments costs ~15 ms, the vectorised one ~1-2 ms.
    """
    n = len(shipments)
    if n > MAX_EXACT_SHIPMENTS:
        raise ValueError(f"at most {MAX_EXACT_SHIPMENTS} shipments, got {n}")
    if n == 0:
        return []
    if any(s.amount > capacity for s in shipments):
        return None
    full_matrix = np.asarray(matrix)
    # Nodes 0..n-1 are pickups, n..2n-1 deliveries, 2n the start.
    locations = [s.pickup for s in shipments] + [s.delivery for s in shipments] + [start]
    dist = full_matrix[np.ix_(locations, locations)].astype(np.float64)
    opens = np.array(
        [s.pickup_window[0] for s in shipments] + [s.delivery_window[0] for s in shipments],
        dtype=np.float64,
    )
    closes = np.array(
        [s.pickup_window[1] for s in shipments] + [s.delivery_window[1] for s in shipments],
        dtype=np.float64,
    )
    service = np.array(
        [s.pickup_service for s in shipments] + [s.delivery_service for s in shipments],
        dtype=np.float64,
    )
    to_end = np.zeros(2 * n + 1) if end is None else full_matrix[locations, end].astype(np.float64)

    amounts = np.array([s.amount for s in shipments], dtype=np.int64)
    bits = np.int64(1) << np.arange(n, dtype=np.int64)
    every = (1 << n) - 1
    # load[mask] = total amount of the shipments in mask (those on board).
    load = ((np.arange(1 << n, dtype=np.int64)[:, None] & bits) != 0) @ amounts
    shipment_index = np.arange(n)

    # A label is one partial route: key = picked | delivered << n | node << 2n.
    shift = 2 * n
    key = np.array([(2 * n) << shift], dtype=np.int64)
    cost = np.zeros(1)
    ready = np.full(1, float(start_time))
    trail: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]] = []
    for _ in range(2 * n):
        picked = key & every
        delivered = (key >> n) & every
        node = key >> shift
        # Every label tries every shipment: pick it up if not yet, deliver it if on board.
        is_picked = (picked[:, None] & bits) != 0
        is_delivered = (delivered[:, None] & bits) != 0
        onboard = picked & ~delivered
        can_pick = ~is_picked & (load[onboard[:, None] | bits] <= capacity)
        can_drop = is_picked & ~is_delivered
        nxt = np.where(is_picked, shipment_index + n, shipment_index)
        leg = dist[node[:, None], nxt]
        arrive = ready[:, None] + leg
        valid = (can_pick | can_drop) & (arrive <= closes[nxt])
        if not valid.any():
            return None
        rows, cols = np.nonzero(valid)
        nxt = nxt[rows, cols]
        arrive = arrive[rows, cols]
        new_ready = np.maximum(arrive, opens[nxt]) + service[nxt]
        new_cost = cost[rows] + leg[rows, cols]
        bit = bits[cols]
        new_key = np.where(is_picked[rows, cols], key[rows] | (bit << n), key[rows] | bit)
        new_key = (new_key & ((1 << shift) - 1)) | (nxt.astype(np.int64) << shift)
        # Pareto filter per state: sort by (state, cost, ready); a label survives if it is
        # strictly earlier than every cheaper-or-equal label of its state.
        order = np.lexsort((new_ready, new_cost, new_key))
        sorted_key = new_key[order]
        ready_rank = np.unique(new_ready[order], return_inverse=True)[1].astype(np.int64)
        group = np.cumsum(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        # Offsetting earlier groups upwards lets one running minimum serve all groups at once.
        shifted = ready_rank + (group[-1] - group) * (len(order) + 1)
        best_before = np.r_[np.iinfo(np.int64).max, np.minimum.accumulate(shifted)[:-1]]
        keep = order[shifted < best_before]
        key, cost, ready = new_key[keep], new_cost[keep], new_ready[keep]
        trail.append((nxt[keep].astype(np.int64), rows[keep]))

    total = cost + to_end[key >> shift]
    best = int(np.lexsort((ready, total))[0])
    nodes: list[int] = []
    for step_nodes, parents in reversed(trail):
        nodes.append(int(step_nodes[best]))
        best = int(parents[best])
    nodes.reverse()
    visits: list[tuple[int, Kind]] = [
        (shipments[k % n].id, "pickup" if k < n else "delivery") for k in nodes
    ]
    return _walk(full_matrix, start, end, start_time, visits, {s.id: s for s in shipments})[0]


# --------------------------------------------------------------------------------------------
# Independent checker
# --------------------------------------------------------------------------------------------


def check_plan(problem: Problem, plan: Plan, *, tolerance: float = 0.0) -> list[str]:
    """Every way ``plan`` breaks ``problem``'s rules, as sentences; ``[]`` means feasible.

    Deliberately re-derives everything from the visit order alone (reported arrivals and costs
    are ignored) so that a bug in the planner cannot vouch for itself. ``tolerance`` absorbs
    floating-point noise when checking real-valued instances; it only loosens time checks.
    """
    problems: list[str] = []
    shipments = problem._shipments_by_id()
    vehicles = {v.id: v for v in problem.vehicles}
    matrix = problem.matrix
    served: dict[int, int] = {}  # shipment id -> times delivered

    for vehicle_id, stops in plan.routes.items():
        vehicle = vehicles.get(vehicle_id)
        if vehicle is None:
            problems.append(f"route for unknown vehicle {vehicle_id}")
            continue
        where = f"vehicle {vehicle_id}"
        position = vehicle.start
        clock = float(vehicle.time_window[0])
        load = 0
        onboard: set[int] = set()
        picked_here: set[int] = set()
        for step, stop in enumerate(stops, start=1):
            s = shipments.get(stop.shipment_id)
            if s is None:
                problems.append(f"{where} stop {step}: unknown shipment {stop.shipment_id}")
                continue
            if stop.kind == "pickup":
                location, window, service = s.pickup, s.pickup_window, s.pickup_service
                if s.id in picked_here:
                    problems.append(f"{where} stop {step}: shipment {s.id} picked up twice")
                picked_here.add(s.id)
                if not s.skills <= vehicle.skills:
                    missing = sorted(s.skills - vehicle.skills)
                    problems.append(
                        f"{where} stop {step}: shipment {s.id} needs skills {missing} "
                        "the vehicle lacks"
                    )
                onboard.add(s.id)
                load += s.amount
                if load > vehicle.capacity:
                    problems.append(
                        f"{where} stop {step}: load {load} exceeds capacity {vehicle.capacity}"
                    )
            elif stop.kind == "delivery":
                location, window, service = s.delivery, s.delivery_window, s.delivery_service
                if s.id not in onboard:
                    problems.append(
                        f"{where} stop {step}: shipment {s.id} delivered without being on board "
                        "(delivery before pickup, or pickup on another vehicle)"
                    )
                else:
                    onboard.discard(s.id)
                    load -= s.amount
                    served[s.id] = served.get(s.id, 0) + 1
            else:
                problems.append(f"{where} stop {step}: unknown stop kind {stop.kind!r}")
                continue
            clock += matrix[position, location].item()
            if clock > window[1] + tolerance:
                problems.append(
                    f"{where} stop {step}: {stop.kind} of shipment {s.id} at {clock:g}, "
                    f"after its window closes at {window[1]:g}"
                )
            clock = max(clock, window[0]) + service
            position = location
        for shipment_id in sorted(onboard):
            problems.append(f"{where}: shipment {shipment_id} picked up but never delivered")
        if vehicle.end is not None:
            clock += matrix[position, vehicle.end].item()
        if stops and clock > vehicle.time_window[1] + tolerance:
            problems.append(
                f"{where}: route ends at {clock:g}, after the vehicle's shift ends at "
                f"{vehicle.time_window[1]:g}"
            )

    unassigned = list(plan.unassigned)
    for shipment_id in unassigned:
        if shipment_id not in shipments:
            problems.append(f"unknown shipment {shipment_id} listed as unassigned")
    if len(set(unassigned)) != len(unassigned):
        problems.append("a shipment is listed as unassigned more than once")
    for shipment_id in shipments:
        count = served.get(shipment_id, 0)
        if count > 1:
            problems.append(f"shipment {shipment_id} delivered {count} times")
        if count and shipment_id in unassigned:
            problems.append(f"shipment {shipment_id} is both served and listed as unassigned")
        if not count and shipment_id not in unassigned:
            problems.append(f"shipment {shipment_id} is neither served nor listed as unassigned")
    return problems
