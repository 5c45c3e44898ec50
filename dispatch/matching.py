"""The dispatch core: insertion costs, min-cost matching, route plans. Pure: no Django, no clock.

Everything here is a function of plain values so that the dispatcher, the benchmark and the
simulator drive the same code: jobs (orders), couriers (riders with the orders they already
carry or are heading for), a distance matrix in metres between location indices, and ``now`` in
seconds on whatever clock the caller keeps (the dispatcher uses Unix time, a simulator its own).

Cost of giving job j to courier r (seconds, lower is better)::

    travel  * extra riding the rider does to fit j into their current route
  + delivery* (time from now until j reaches its door
               + delay the insertion adds to the rider's other drop-offs)
  + late    * (lateness of j + lateness added to the rider's other orders)
  + load    * orders the rider already has
  + credit  * credit points below 100

The delivery term is the customers' click-to-door time: the orders a rider already carries wait
longer when a new one is slipped in before their doors, and that wait counts as much as the new
order's own. Route plans minimise the same thing: promises first, then ``travel`` * riding +
``delivery`` * the drop-off times (see ``plan_route``).

The insertion keeps the rider's current stop order and tries every place for j's pickup and
drop-off (capacity and the other orders' promised times respected, waiting for a pickup that is
not ready yet included); the route is re-planned exactly afterwards. Pairs that break a hard
rule (gender pool, reach, capacity, own order) cost INFEASIBLE and are never chosen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from dispatch.routing import (
    HORIZON,
    MAX_EXACT_SHIPMENTS,
    Problem,
    Shipment,
    Vehicle,
    plan_routes,
    plan_single_exact,
)

INFEASIBLE = 1e9
ALL_POOLS = frozenset({"male", "female", "undisclosed"})
# Insertion evaluations (pairs x insertion positions) done exhaustively; beyond this budget each
# order keeps only its nearest riders and each rider its nearest orders (by a lower bound of the
# time to the pickup), at least MIN_CANDIDATES of each. Far riders never win the matching anyway.
PAIR_BUDGET = 1_500_000
MIN_CANDIDATES = 16
DEFAULT_CANDIDATES = None  # None: as many as the budget allows

Visit = tuple[int, str]  # (job id, "pickup" | "delivery")


@dataclass(frozen=True)
class Job:
    """An order to carry from matrix index ``pickup`` to ``dropoff`` by ``due``."""

    id: int
    pickup: int
    dropoff: int
    due: float
    ready: float = -math.inf  # the pickup cannot be served before this (merchant ready)
    pools: frozenset[str] = ALL_POOLS  # rider pools allowed to carry it (orders.rules)
    customer: int | None = None
    fee_fen: int = 0
    excluded: frozenset[int] = frozenset()  # couriers not to offer it to (they said no)
    pickup_service: float = 60.0
    dropoff_service: float = 60.0


@dataclass(frozen=True)
class Courier:
    """A rider: where they are, how fast, what they already carry and what they head for."""

    id: int
    pool: str
    location: int
    speed: float  # m/s
    capacity: int
    offset_m: float = 0.0  # straight walk from the live position to ``location``
    known_position: bool = True  # False: no live fix, so reach is not held against the rider
    credit: float = 100.0
    carried: tuple[Job, ...] = ()  # picked up: only the drop-offs remain
    assigned: tuple[Job, ...] = ()  # accepted or offered: pickup and drop-off remain
    route: tuple[Visit, ...] | None = None  # planned stop order of the above (None: plan it)

    @property
    def load(self) -> int:
        return len(self.carried) + len(self.assigned)

    @property
    def jobs(self) -> tuple[Job, ...]:
        return self.carried + self.assigned

    @property
    def start_delay(self) -> float:
        return self.offset_m / self.speed


@dataclass(frozen=True)
class Weights:
    """Seconds of cost per second (or per order, per credit point).

    ``delivery`` > ``travel``: a second a customer waits for the door weighs twice a second of
    riding. At 0.25 (and with the route planner minimising riding only) riders batched and
    toured with the food whenever the 30-minute promise allowed: the lunch peak of
    ``simulate_day`` was 27% slower door to door than nearest-rider grab. At 2 it is faster
    and still rides about a quarter less per order (docs/simulator.md)."""

    travel: float = 1.0
    delivery: float = 2.0
    late: float = 20.0
    load: float = 30.0
    credit: float = 2.0

    def as_dict(self) -> dict[str, float]:
        return {
            "travel": self.travel,
            "delivery": self.delivery,
            "late": self.late,
            "load": self.load,
            "credit": self.credit,
        }


@dataclass(frozen=True)
class Terms:
    """Why a rider got an order: every part of the cost, in seconds unless said otherwise."""

    extra_travel_s: float
    to_pickup_s: float
    delivery_s: float
    late_s: float
    others_late_s: float
    others_delay_s: float  # added to the drop-off times of the rider's other orders
    load: int
    credit: float
    pickup_distance_m: float
    cost: float
    insert_at: tuple[int, int]  # (pickup after stop i, drop-off after stop j) of the route

    def as_dict(self) -> dict:
        return {
            "extra_travel_s": round(self.extra_travel_s, 1),
            "to_pickup_s": round(self.to_pickup_s, 1),
            "delivery_s": round(self.delivery_s, 1),
            "late_s": round(self.late_s, 1),
            "others_late_s": round(self.others_late_s, 1),
            "others_delay_s": round(self.others_delay_s, 1),
            "load": self.load,
            "credit": round(self.credit, 1),
            "pickup_distance_m": round(self.pickup_distance_m, 1),
            "cost": round(self.cost, 1),
        }


# --------------------------------------------------------------------------------------------
# Route state: a rider's stops with their times, and how much delay each stop can absorb
# --------------------------------------------------------------------------------------------


@dataclass
class RouteState:
    courier: Courier
    visits: list[Visit]
    loc: npt.NDArray[np.int64]  # (k+1,) index 0 is the rider's position
    arr: npt.NDArray[np.float64]
    dep: npt.NDArray[np.float64]
    due: npt.NDArray[np.float64]  # promised time at drop-offs, inf elsewhere
    drop: npt.NDArray[np.bool_]  # the stop is a drop-off
    cum_wait: npt.NDArray[np.float64]
    load_after: npt.NDArray[np.int64]
    leg_next: npt.NDArray[np.float64]  # time from stop m to m+1 (0 after the last)
    late: npt.NDArray[np.float64]  # lateness at each stop (drop-offs only)
    travel_s: float

    @property
    def stops(self) -> int:
        return len(self.visits)

    def arrival_of(self, job_id: int, kind: str = "delivery") -> float | None:
        for m, visit in enumerate(self.visits, start=1):
            if visit == (job_id, kind):
                return float(self.arr[m])
        return None


def route_state(
    courier: Courier, visits: Sequence[Visit], dist: npt.NDArray, now: float
) -> RouteState:
    jobs = {job.id: job for job in courier.jobs}
    k = len(visits)
    loc = np.empty(k + 1, dtype=np.int64)
    arr = np.zeros(k + 1)
    dep = np.zeros(k + 1)
    wait = np.zeros(k + 1)
    due = np.full(k + 1, np.inf)
    drop = np.zeros(k + 1, dtype=bool)
    load = np.empty(k + 1, dtype=np.int64)
    loc[0] = courier.location
    dep[0] = arr[0] = now + courier.start_delay
    load[0] = len(courier.carried)
    travel = 0.0
    for m, (job_id, kind) in enumerate(visits, start=1):
        job = jobs[job_id]
        if kind == "pickup":
            loc[m], opens, service, step = job.pickup, job.ready, job.pickup_service, 1
        else:
            loc[m], opens, service, step = job.dropoff, -np.inf, job.dropoff_service, -1
            due[m] = job.due
            drop[m] = True
        leg = dist[loc[m - 1], loc[m]] / courier.speed
        travel += leg
        arr[m] = dep[m - 1] + leg
        begin = max(arr[m], opens)
        wait[m] = begin - arr[m]
        dep[m] = begin + service
        load[m] = load[m - 1] + step
    leg_next = np.zeros(k + 1)
    if k:
        leg_next[:k] = dist[loc[:-1], loc[1:]] / courier.speed
    return RouteState(
        courier=courier,
        visits=list(visits),
        loc=loc,
        arr=arr,
        dep=dep,
        due=due,
        drop=drop,
        cum_wait=np.cumsum(wait),
        load_after=load,
        leg_next=leg_next,
        late=np.maximum(0.0, arr - due),
        travel_s=travel,
    )


def insert_visits(visits: Sequence[Visit], job_id: int, at: tuple[int, int]) -> list[Visit]:
    """The visit list with job's pickup after stop i and its drop-off after stop j (j >= i)."""
    i, j = at
    out = list(visits)
    out.insert(j, (job_id, "delivery"))
    out.insert(i, (job_id, "pickup"))
    return out


# --------------------------------------------------------------------------------------------
# Route planning for one rider (exact up to 6 orders, VROOM beyond)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutePlan:
    visits: tuple[Visit, ...]
    arrivals: tuple[float, ...]  # same clock as ``now``
    travel_s: float
    late_s: float
    method: str  # "exact" | "vroom" | "relaxed" | "kept" | "empty"


# Deadlines that cannot all be met are relaxed by these steps (seconds) before giving up on them:
# the plan then minimises travel among the routes that are at most that late.
RELAX_STEPS = (120, 300, 900, 1800, math.inf)
# Up to this many orders on a rider, "auto" tries every stop order (at most 2,520 for four
# orders not picked up yet, all evaluated at once with numpy): on a campus a rider carries two
# or three. Beyond, the travel-minimising exact programme / VROOM plan is the candidate.
ENUMERATE_MAX_JOBS = 4


def plan_route(
    courier: Courier,
    dist: npt.NDArray,
    now: float,
    *,
    method: str = "auto",
    keep: Sequence[Visit] | None = None,
    weights: Weights | None = None,
) -> RoutePlan:
    """Order the stops of ``courier.jobs``.

    ``method="auto"`` (what riders follow): every promise kept if possible (else the least
    total lateness), then the least ``travel`` * seconds of riding + ``delivery`` * seconds
    until each drop-off -- the dispatcher's own cost (``weights``), so food is not carried
    around to save the rider a few metres while a customer waits. Every stop order is tried up
    to ENUMERATE_MAX_JOBS orders; beyond, the candidates are the travel-minimising plan and
    ``keep`` (a visit order the caller already has, e.g. the insertion the matching chose).

    ``method="exact"`` (DP, up to 6 orders) or ``"vroom"``: fewest seconds of riding with every
    promise kept; if that is impossible, the least-late of a few relaxed plans (and of
    ``keep``). These are the travel-only planners the benchmark compares."""
    jobs = courier.jobs
    if not jobs:
        return RoutePlan((), (), 0.0, 0.0, "empty")
    weights = weights or Weights()
    if method == "auto" and len(jobs) <= ENUMERATE_MAX_JOBS:
        visits = _best_order(courier, dist, now, weights)
        if visits is not None:
            state = route_state(courier, visits, dist, now)
            return _as_plan(state, "relaxed" if state.late.sum() > 0 else "exact")
    use_exact = method == "exact" or (method == "auto" and len(jobs) <= MAX_EXACT_SHIPMENTS)
    candidates: list[tuple[list[Visit], str]] = []
    visits = _solve(courier, dist, now, relax=0, exact=use_exact)
    if visits is not None:
        candidates.append((visits, "exact" if use_exact else "vroom"))
    else:
        for relax in RELAX_STEPS:
            visits = _solve(courier, dist, now, relax=relax, exact=use_exact)
            if visits is not None:
                candidates.append((visits, "relaxed"))
                break
    if keep is not None:
        candidates.append((list(keep), "kept"))
    if not candidates:
        candidates.append((_fallback_order(courier), "kept"))
    best = None
    for visits, how in candidates:
        state = route_state(courier, visits, dist, now)
        objective = route_objective(state, weights, now) if method == "auto" else state.travel_s
        score = (round(float(state.late.sum()), 3), objective)
        if best is None or score < best[0]:
            best = (score, state, how)
    _, state, how = best
    return _as_plan(state, how)


def route_objective(state: RouteState, weights: Weights, now: float) -> float:
    """What ``plan_route`` minimises once the promises are settled (seconds)."""
    return weights.travel * state.travel_s + weights.delivery * float(
        (state.arr[state.drop] - now).sum()
    )


def _orders_of_stops(carried: int, assigned: int) -> npt.NDArray[np.int64]:
    """Every stop order of ``carried`` drop-offs and ``assigned`` pickup/drop-off pairs, as
    rows of slot numbers: slot c < carried is carried job c's drop-off, carried + 2i and
    carried + 2i + 1 are assigned job i's pickup and drop-off (pickup first)."""
    key = (carried, assigned)
    hit = _STOP_ORDERS.get(key)
    if hit is not None:
        return hit
    rows: list[tuple[int, ...]] = []
    n = carried + 2 * assigned

    def extend(prefix: list[int], done: set[int]) -> None:
        if len(prefix) == n:
            rows.append(tuple(prefix))
            return
        for slot in range(n):
            if slot in done:
                continue
            if slot >= carried and (slot - carried) % 2 == 1 and slot - 1 not in done:
                continue  # a drop-off before its pickup
            done.add(slot)
            prefix.append(slot)
            extend(prefix, done)
            prefix.pop()
            done.discard(slot)

    extend([], set())
    table = np.array(rows, dtype=np.int64).reshape(len(rows), n)
    _STOP_ORDERS[key] = table
    return table


_STOP_ORDERS: dict[tuple[int, int], npt.NDArray[np.int64]] = {}


def _best_order(
    courier: Courier, dist: npt.NDArray, now: float, weights: Weights
) -> list[Visit] | None:
    """The best of every stop order (promises, then travel and delivery times); None if none
    fits the rider's capacity."""
    carried, assigned = courier.carried, courier.assigned
    table = _orders_of_stops(len(carried), len(assigned))
    visits: list[Visit] = [(job.id, "delivery") for job in carried]
    node = [job.dropoff for job in carried]
    ready = [-math.inf] * len(carried)
    service = [job.dropoff_service for job in carried]
    due = [job.due for job in carried]
    step = [-1] * len(carried)
    for job in assigned:
        visits += [(job.id, "pickup"), (job.id, "delivery")]
        node += [job.pickup, job.dropoff]
        ready += [job.ready, -math.inf]
        service += [job.pickup_service, job.dropoff_service]
        due += [math.inf, job.due]
        step += [1, -1]
    node_a, ready_a, service_a = np.array(node), np.array(ready), np.array(service)
    due_a, step_a = np.array(due), np.array(step)
    is_drop = step_a < 0
    rows = len(table)
    t = np.full(rows, now + courier.start_delay)
    here = np.full(rows, courier.location, dtype=np.int64)
    load = np.full(rows, len(carried), dtype=np.int64)
    fits = np.ones(rows, dtype=bool)
    travel = np.zeros(rows)
    late = np.zeros(rows)
    at_doors = np.zeros(rows)
    for m in range(table.shape[1]):
        slot = table[:, m]
        there = node_a[slot]
        leg = dist[here, there] / courier.speed
        arrive = t + leg
        travel += leg
        drop = is_drop[slot]
        late += np.where(drop, np.maximum(0.0, arrive - due_a[slot]), 0.0)
        at_doors += np.where(drop, arrive - now, 0.0)
        t = np.maximum(arrive, ready_a[slot]) + service_a[slot]
        load += step_a[slot]
        fits &= load <= courier.capacity
        here = there
    if not fits.any():
        return None
    objective = weights.travel * travel + weights.delivery * at_doors
    late = np.round(late, 3)
    candidates = np.nonzero(fits)[0]
    best = candidates[np.lexsort((objective[candidates], late[candidates]))[0]]
    return [visits[slot] for slot in table[best]]


def _as_plan(state: RouteState, how: str) -> RoutePlan:
    return RoutePlan(
        visits=tuple(state.visits),
        arrivals=tuple(float(a) for a in state.arr[1:]),
        travel_s=state.travel_s,
        late_s=float(state.late.sum()),
        method=how,
    )


def _fallback_order(courier: Courier) -> list[Visit]:
    visits: list[Visit] = [(job.id, "delivery") for job in courier.carried]
    for job in courier.assigned:
        visits += [(job.id, "pickup"), (job.id, "delivery")]
    return visits


def _solve(
    courier: Courier, dist: npt.NDArray, now: float, *, relax: float, exact: bool
) -> list[Visit] | None:
    """One rider's problem on a small local integer matrix (whole seconds, rounded up, so a plan
    that keeps the windows here keeps them in real time too)."""
    t0 = now + courier.start_delay
    nodes = [courier.location]
    index = {courier.location: 0}

    def local(node: int) -> int:
        if node not in index:
            index[node] = len(nodes)
            nodes.append(node)
        return index[node]

    shipments = []
    for job in courier.carried:
        shipments.append(
            Shipment(
                id=job.id,
                pickup=0,
                delivery=local(job.dropoff),
                pickup_window=(0, 0),  # already on board: "picked up" where the rider stands
                delivery_window=_window_until(job.due + relax - t0),
                delivery_service=_secs(job.dropoff_service),
            )
        )
    for job in courier.assigned:
        opens = 0 if job.ready == -math.inf else max(0, math.ceil(job.ready - t0))
        shipments.append(
            Shipment(
                id=job.id,
                pickup=local(job.pickup),
                delivery=local(job.dropoff),
                pickup_window=(opens, HORIZON),
                delivery_window=_window_until(job.due + relax - t0),
                pickup_service=_secs(job.pickup_service),
                delivery_service=_secs(job.dropoff_service),
            )
        )
    if any(s.delivery_window[1] < 0 for s in shipments):
        return None
    sub = np.asarray(dist)[np.ix_(nodes, nodes)] / courier.speed
    matrix = np.ceil(sub - 1e-9).astype(np.int64)
    if exact:
        stops = plan_single_exact(matrix, 0, shipments, courier.capacity)
        if stops is None:
            return None
        return _without_carried_pickups(courier, stops)
    vehicle = Vehicle(id=courier.id, start=0, end=None, capacity=courier.capacity)
    plan = plan_routes(Problem(matrix, [vehicle], shipments), exploration_level=5)
    if plan.unassigned:
        return None
    return _without_carried_pickups(courier, plan.routes.get(courier.id, ()))


def _without_carried_pickups(courier: Courier, stops) -> list[Visit]:
    # Carried jobs enter the solver as pickups where the rider stands at time 0; the rider has
    # them already, so those pickups are not stops.
    carried = {job.id for job in courier.carried}
    return [
        (stop.shipment_id, stop.kind)
        for stop in stops
        if not (stop.kind == "pickup" and stop.shipment_id in carried)
    ]


def _window_until(seconds: float) -> tuple[int, int]:
    if seconds >= HORIZON:
        return (0, HORIZON)
    if seconds < 0:
        return (0, -1)  # marks "already impossible"; _solve returns None before solving
    return (0, int(math.floor(seconds)))


def _secs(value: float) -> int:
    return int(math.ceil(value))


# --------------------------------------------------------------------------------------------
# Pair costs (vectorised insertion) and the assignment
# --------------------------------------------------------------------------------------------


@dataclass
class PairCosts:
    """Best insertion of each candidate (job, courier) pair; costs[j, r] = INFEASIBLE elsewhere.
    The terms of a pair are read back on demand (only chosen pairs are ever explained)."""

    cost: npt.NDArray[np.float64]  # (jobs, couriers)
    arrival: npt.NDArray[np.float64]  # (jobs, couriers) predicted drop-off time, inf if none
    index: npt.NDArray[np.int64]  # (jobs, couriers) -> row in the arrays below, -1 if none
    rows: npt.NDArray[np.int64]  # row in the (pairs, positions) arrays
    best: npt.NDArray[np.int64]  # the chosen insertion position of each pair
    arrays: dict[str, npt.NDArray]  # (pairs, positions) terms, and per-pair values
    now: float = 0.0

    def terms(self, j: int, r: int) -> Terms:
        p = int(self.index[j, r])
        if p < 0:
            raise KeyError((j, r))
        a, row, pos = self.arrays, int(self.rows[p]), int(self.best[p])
        return Terms(
            extra_travel_s=float(a["extra"][row, pos]),
            to_pickup_s=float(a["at_pickup"][row, pos] - self.now),
            delivery_s=float(a["arr_d"][row, pos] - self.now),
            late_s=float(a["late"][row, pos]),
            others_late_s=float(a["others_late"][row, pos]),
            others_delay_s=float(a["others_delay"][row, pos]),
            load=int(a["load"][row]),
            credit=float(a["credit"][row]),
            pickup_distance_m=float(a["pickup_m"][j, r]),
            cost=float(self.cost[j, r]),
            insert_at=(int(a["ii"][pos]), int(a["jj"][pos])),
        )


def eligibility(jobs: Sequence[Job], couriers: Sequence[Courier]) -> npt.NDArray[np.bool_]:
    """(jobs, couriers): the hard rules that need no travel: pool, own order, capacity left,
    and riders who already turned the job down."""
    mask = np.zeros((len(jobs), len(couriers)), dtype=bool)
    if not len(jobs) or not len(couriers):
        return mask
    bit = {pool: 1 << n for n, pool in enumerate(sorted({c.pool for c in couriers}))}
    job_bits = np.array([sum(bit.get(pool, 0) for pool in job.pools) for job in jobs])
    courier_bits = np.array([bit[c.pool] for c in couriers])
    mask = (job_bits[:, None] & courier_bits[None, :]) != 0
    customers = np.array([-1 if j.customer is None else j.customer for j in jobs])
    ids = np.array([c.id for c in couriers])
    mask &= customers[:, None] != ids[None, :]
    mask &= np.array([c.load < c.capacity for c in couriers])[None, :]
    position = None
    for j, job in enumerate(jobs):
        if job.excluded:
            position = position or {c.id: r for r, c in enumerate(couriers)}
            for courier_id in job.excluded:
                if (r := position.get(courier_id)) is not None:
                    mask[j, r] = False
    return mask


def pair_costs(
    jobs: Sequence[Job],
    states: Sequence[RouteState],
    dist: npt.NDArray,
    now: float,
    *,
    weights: Weights = Weights(),
    reach_m: float = math.inf,
    candidates: int | None = DEFAULT_CANDIDATES,
) -> PairCosts:
    """Best insertion cost of every candidate pair, all pairs at once (numpy). Positions past
    a route's end are padding: their inf - inf arithmetic is masked out, hence the errstate."""
    with np.errstate(invalid="ignore"):
        return _pair_costs(jobs, states, dist, now, weights, reach_m, candidates)


def _pair_costs(jobs, states, dist, now, weights, reach_m, candidates) -> PairCosts:
    couriers = [s.courier for s in states]
    n_jobs, n_couriers = len(jobs), len(couriers)
    cost = np.full((n_jobs, n_couriers), INFEASIBLE)
    arrival = np.full((n_jobs, n_couriers), np.inf)
    none = np.zeros(0, np.int64)
    empty = PairCosts(cost, arrival, np.full(cost.shape, -1), none, none, {}, now)
    if not n_jobs or not n_couriers:
        return empty
    dist = np.asarray(dist, dtype=np.float64)
    pickup = np.array([j.pickup for j in jobs], dtype=np.int64)
    dropoff = np.array([j.dropoff for j in jobs], dtype=np.int64)
    speed = np.array([c.speed for c in couriers])
    offset = np.array([c.offset_m for c in couriers])
    start = np.array([c.location for c in couriers], dtype=np.int64)

    # Hard rules, then reach from where the rider is now.
    pickup_m = offset[None, :] + dist[np.ix_(start, pickup)].T  # (jobs, couriers)
    known = np.array([c.known_position for c in couriers])
    ok = eligibility(jobs, couriers) & ((pickup_m <= reach_m) | ~known[None, :])

    # Padded route arrays, index 0 = the rider's position.
    width = max(s.stops for s in states) + 1
    k = np.array([s.stops for s in states], dtype=np.int64)
    loc = np.repeat(start[:, None], width, axis=1)
    arr = np.full((n_couriers, width), np.inf)
    dep = np.full((n_couriers, width), np.inf)
    arr[:, 0] = dep[:, 0] = now + offset / speed  # idle riders: just where they are
    due_at = np.full((n_couriers, width), np.inf)
    drop_at = np.zeros((n_couriers, width), dtype=bool)
    cum_wait = np.zeros((n_couriers, width))
    load_after = np.zeros((n_couriers, width), dtype=np.int64)
    leg_next = np.zeros((n_couriers, width))
    for r, s in enumerate(states):
        if not s.stops:
            continue
        n = s.stops + 1
        loc[r, :n], loc[r, n:] = s.loc, s.loc[-1]
        arr[r, :n], dep[r, :n] = s.arr, s.dep
        due_at[r, :n] = s.due
        drop_at[r, :n] = s.drop
        cum_wait[r, :n], cum_wait[r, n:] = s.cum_wait, s.cum_wait[-1]
        load_after[r, :n], load_after[r, n:] = s.load_after, s.load_after[-1]
        leg_next[r, :n] = s.leg_next

    # Candidates: the nearest riders by a lower bound of their time to the pickup (from any
    # point of their route).
    bound = np.full((n_jobs, n_couriers), np.inf)
    for m in range(width):
        bound = np.minimum(bound, dist[np.ix_(loc[:, m], pickup)].T / speed[None, :])
    bound[~ok] = np.inf
    # Each job keeps its nearest riders and each rider its nearest jobs: when many orders wait
    # at one canteen, the per-job lists alone would name the same few riders for all of them.
    positions = width * (width + 1) // 2
    if candidates is None:
        if n_jobs * n_couriers * positions <= PAIR_BUDGET:
            candidates = max(n_jobs, n_couriers)
        else:
            candidates = max(MIN_CANDIDATES, PAIR_BUDGET // (positions * (n_jobs + n_couriers)))
    chosen = np.zeros((n_jobs, n_couriers), dtype=bool)
    if candidates < n_couriers:
        near = np.argpartition(bound, candidates - 1, axis=1)[:, :candidates]
        chosen[np.arange(n_jobs)[:, None], near] = True
    else:
        chosen[:] = True
    if candidates < n_jobs:
        near = np.argpartition(bound, candidates - 1, axis=0)[:candidates, :]
        chosen[near, np.arange(n_couriers)[None, :]] = True
    else:
        chosen[:] = True
    pj, pr = np.nonzero(chosen & np.isfinite(bound))
    if not len(pj):
        return empty

    # Every (pickup after stop i, drop-off after stop j) with i <= j.
    ii, jj = np.triu_indices(width)
    same = ii == jj
    v = speed[pr][:, None]
    L = loc[pr]  # (P, width)
    p_node = pickup[pj][:, None]
    d_node = dropoff[pj][:, None]
    to_p = dist[L, p_node] / v  # stop m -> pickup
    if width > 1:
        from_p = dist[p_node, L] / v  # pickup -> stop m
        to_d = dist[L, d_node] / v
        from_d = dist[d_node, L] / v
    else:  # nobody has a route yet: only the legs to the pickup matter
        from_p = to_d = from_d = np.zeros_like(to_p)
    p_to_d = dist[pickup[pj], dropoff[pj]] / speed[pr]
    ready = np.array([j.ready for j in jobs])[pj][:, None]
    due = np.array([j.due for j in jobs])[pj][:, None]
    p_service = np.array([j.pickup_service for j in jobs])[pj][:, None]
    d_service = np.array([j.dropoff_service for j in jobs])[pj][:, None]
    kk = k[pr][:, None]
    cap = np.array([c.capacity for c in couriers])[pr][:, None]

    nxt_i = np.minimum(ii + 1, width - 1)
    nxt_j = np.minimum(jj + 1, width - 1)
    has_next_i = ii[None, :] < kk
    has_next_j = jj[None, :] < kk
    A, D, CW, LN, DUE, DROP = (
        arr[pr],
        dep[pr],
        cum_wait[pr],
        leg_next[pr],
        due_at[pr],
        drop_at[pr],
    )

    arr_p = D[:, ii] + to_p[:, ii]
    dep_p = np.maximum(arr_p, ready) + p_service
    n_pairs, n_positions = arr_p.shape
    arr_d = np.empty((n_pairs, n_positions))
    extra = np.empty((n_pairs, n_positions))
    delay1 = np.zeros((n_pairs, n_positions))  # arrival delay at the stop after i (i < j)
    delay_after = np.empty((n_pairs, n_positions))  # arrival delay at the stop after j
    # Drop-off right after the pickup (i == j).
    S = np.nonzero(same)[0]
    si = ii[S]
    s_next = nxt_i[S]
    s_has_next = has_next_i[:, S]
    arr_d[:, S] = dep_p[:, S] + p_to_d[:, None]
    after = arr_d[:, S] + d_service + from_d[:, s_next]
    delay_after[:, S] = np.where(s_has_next, after - A[:, s_next], 0.0)
    extra[:, S] = (
        to_p[:, si] + p_to_d[:, None] + np.where(s_has_next, from_d[:, s_next] - LN[:, si], 0.0)
    )
    # Drop-off later (i < j): the pickup's delay travels down the route, absorbed by waits.
    T = np.nonzero(~same)[0]
    if len(T):
        ti, tj, t_next_i, t_next_j = ii[T], jj[T], nxt_i[T], nxt_j[T]
        t_has_next_j = has_next_j[:, T]
        delay1[:, T] = d1 = np.maximum(0.0, dep_p[:, T] + from_p[:, t_next_i] - A[:, t_next_i])
        delay_j = np.maximum(0.0, d1 - (CW[:, tj] - CW[:, ti]))
        arr_d[:, T] = D[:, tj] + delay_j + to_d[:, tj]
        after = arr_d[:, T] + d_service + from_d[:, t_next_j]
        delay_after[:, T] = np.where(t_has_next_j, after - A[:, t_next_j], 0.0)
        extra[:, T] = (
            to_p[:, ti]
            + from_p[:, t_next_i]
            - LN[:, ti]
            + to_d[:, tj]
            + np.where(t_has_next_j, from_d[:, t_next_j] - LN[:, tj], 0.0)
        )
    # Lateness and delay added to the rider's other orders: each later stop is delayed by what
    # the insertion adds, less the waiting it would have done anyway (for a pickup not yet
    # ready); at a drop-off that delay is a customer's, whether or not it makes them late.
    others_late = np.zeros_like(arr_d)
    others_delay = np.zeros_like(arr_d)
    for q in range(1, width):
        middle = (ii < q) & (q <= jj) & ~same
        beyond = q > jj
        waited_mid = CW[:, q - 1][:, None] - CW[:, ii]
        waited_after = CW[:, q - 1][:, None] - CW[:, jj]
        delay_q = np.where(
            middle,
            np.maximum(0.0, delay1 - waited_mid),
            np.where(beyond, np.maximum(0.0, delay_after - waited_after), 0.0),
        )
        a_q, due_q = A[:, q][:, None], DUE[:, q][:, None]
        added = np.maximum(0.0, a_q + delay_q - due_q) - np.maximum(0.0, a_q - due_q)
        counts = (q <= kk) & (middle | beyond)[None, :]
        others_late += np.where(counts, added, 0.0)
        others_delay += np.where(counts & DROP[:, q][:, None], delay_q, 0.0)
    late = np.maximum(0.0, arr_d - due)

    # Capacity between the pickup and the drop-off, and positions beyond the route's end.
    # max_load[p, (i, j)] = the most the rider carries between stops i and j (per rider first,
    # then gathered: far fewer riders than pairs).
    running = np.maximum.accumulate(
        np.where(
            np.arange(width)[None, None, :] >= np.arange(width)[None, :, None],
            load_after[:, None, :],
            np.iinfo(np.int64).min,
        ),
        axis=2,
    )  # (couriers, width, width)
    max_load = running[:, ii, jj][pr]
    valid = (jj[None, :] <= kk) & (max_load + 1 <= cap)

    load_now = np.array([c.load for c in couriers])[pr]
    credit = np.array([c.credit for c in couriers])[pr]
    fixed = weights.load * load_now + weights.credit * np.maximum(0.0, 100.0 - credit)
    total = (
        weights.travel * extra
        + weights.delivery * (arr_d - now + others_delay)
        + weights.late * (late + others_late)
        + fixed[:, None]
    )
    total = np.where(valid, total, np.inf)
    best = np.argmin(total, axis=1)
    rows = np.arange(len(pj))
    best_cost = total[rows, best]
    feasible = np.isfinite(best_cost)
    pj, pr, best, rows = pj[feasible], pr[feasible], best[feasible], rows[feasible]
    cost[pj, pr] = best_cost[feasible]
    arrival[pj, pr] = arr_d[rows, best]
    index = np.full((n_jobs, n_couriers), -1, dtype=np.int64)
    index[pj, pr] = np.arange(len(pj))
    arrays = {
        "extra": extra,
        "at_pickup": np.maximum(arr_p, ready),
        "arr_d": arr_d,
        "late": late,
        "others_late": others_late,
        "others_delay": others_delay,
        "load": load_now,
        "credit": credit,
        "pickup_m": pickup_m,
        "ii": ii,
        "jj": jj,
    }
    return PairCosts(cost, arrival, index, rows, best, arrays, now)


def assign(cost: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """Min-cost matching (each job to at most one courier and back); infeasible pairs dropped."""
    if cost.size == 0:
        return []
    rows_alive = np.nonzero((cost < INFEASIBLE).any(axis=1))[0]
    cols_alive = np.nonzero((cost < INFEASIBLE).any(axis=0))[0]
    if not len(rows_alive) or not len(cols_alive):
        return []
    sub = cost[np.ix_(rows_alive, cols_alive)]
    rows, cols = linear_sum_assignment(sub)
    return [
        (int(rows_alive[r]), int(cols_alive[c]))
        for r, c in zip(rows, cols)
        if sub[r, c] < INFEASIBLE
    ]


# --------------------------------------------------------------------------------------------
# One dispatch cycle
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    job: Job
    courier_id: int
    terms: Terms
    alternatives: tuple[tuple[int, float], ...]  # (courier id, cost) of the runners-up

    def terms_dict(self, weights: Weights) -> dict:
        return {
            **self.terms.as_dict(),
            "weights": weights.as_dict(),
            "alternatives": [{"rider": r, "cost": round(c, 1)} for r, c in self.alternatives],
        }


@dataclass(frozen=True)
class Risk:
    job: Job
    predicted: float | None  # best predicted drop-off, None if no rider can take it at all
    reason: str  # "late" | "no_rider"
    courier_id: int | None  # the rider whose route it is late on (None: not on a route)
    # Late on a rider's route and not picked up yet: the earliest drop-off another rider with
    # room could make (None: nobody else can take it).
    elsewhere: float | None = None


@dataclass
class CyclePlan:
    assignments: list[Assignment]
    routes: dict[int, RoutePlan]  # courier id -> plan (every courier that has stops)
    unassigned: list[Job]
    risks: list[Risk]
    seconds: dict[str, float] = field(default_factory=dict)

    def late_assignments(self, tolerance: float = 1e-6) -> list[Assignment]:
        """Assignments whose job arrives after its due time in the final route plans."""
        out = []
        for a in self.assignments:
            plan = self.routes.get(a.courier_id)
            if plan is None:
                continue
            for visit, at in zip(plan.visits, plan.arrivals):
                if visit == (a.job.id, "delivery") and at > a.job.due + tolerance:
                    out.append(a)
        return out


def plan_cycle(
    jobs: Sequence[Job],
    couriers: Sequence[Courier],
    dist: npt.NDArray,
    now: float,
    *,
    weights: Weights = Weights(),
    reach_m: float = math.inf,
    rounds: int = 3,
    candidates: int | None = DEFAULT_CANDIDATES,
    risk_margin_s: float = 300.0,
    replan: bool = True,
    method: str = "auto",
    assign_jobs: bool = True,
    watch: Sequence[Job] = (),
) -> CyclePlan:
    """Plan the riders' current routes, match new jobs in up to ``rounds`` rounds (a rider may
    take one job per round, so batching happens across rounds), re-plan the routes that
    changed, and list the jobs at risk of missing their due time.

    ``assign_jobs=False`` (grab mode) only estimates when each job could arrive, for the risk
    flags: riders choose for themselves. ``watch``: jobs that are not to be assigned (on the
    board) but whose risk of missing the due time is estimated all the same."""
    clock = time.perf_counter
    seconds: dict[str, float] = {}
    began = clock()
    dist = np.asarray(dist, dtype=np.float64)
    routes: dict[int, RoutePlan] = {}
    states: dict[int, RouteState] = {}
    for c in couriers:
        if not c.jobs:
            states[c.id] = route_state(c, (), dist, now)
            continue
        if c.route is None or replan:
            plan = plan_route(c, dist, now, method=method, keep=c.route, weights=weights)
            visits = plan.visits
        else:
            visits = c.route
        states[c.id] = state = route_state(c, visits, dist, now)
        routes[c.id] = _as_plan(state, "kept") if visits is c.route else plan
    seconds["plan_current"] = clock() - began

    began = clock()
    current = {c.id: c for c in couriers}
    remaining = list(jobs)
    assignments: list[Assignment] = []
    best_arrival: dict[int, float] = {}
    for _round in range(max(1, rounds)):
        if not remaining:
            break
        order = [c.id for c in current.values() if c.load < c.capacity]
        if not order:
            break
        round_states = [states[cid] for cid in order]
        pc = pair_costs(
            remaining,
            round_states,
            dist,
            now,
            weights=weights,
            reach_m=reach_m,
            candidates=candidates,
        )
        for j, job in enumerate(remaining):
            row = pc.arrival[j]
            if np.isfinite(row).any():
                best_arrival[job.id] = min(best_arrival.get(job.id, np.inf), float(row.min()))
        matched = assign(pc.cost) if assign_jobs else []
        if not matched:
            break
        taken = set()
        for j, r in matched:
            job, cid = remaining[j], order[r]
            terms = pc.terms(j, r)
            row = pc.cost[j]
            runners = [
                (order[int(x)], float(row[x]))
                for x in np.argsort(row)[:4]
                if int(x) != r and row[x] < INFEASIBLE
            ][:3]
            assignments.append(Assignment(job, cid, terms, tuple(runners)))
            c = current[cid]
            c = replace(c, assigned=c.assigned + (job,), route=None)
            visits = insert_visits(states[cid].visits, job.id, terms.insert_at)
            c = replace(c, route=tuple(visits))
            current[cid] = c
            states[cid] = route_state(c, visits, dist, now)
            taken.add(j)
        remaining = [job for j, job in enumerate(remaining) if j not in taken]
        if assign_jobs and _round == 0 and rounds > 1:
            # One order per rider per round makes the first round spread orders over riders
            # even where a rider passing by could carry two; moving each order to whichever
            # route (with this cycle's other orders on it) takes it most cheaply fixes that.
            _improve(assignments, current, states, dist, now, weights, reach_m, candidates)
    seconds["match"] = clock() - began

    began = clock()
    changed = {a.courier_id for a in assignments}
    for cid in changed:
        c = current[cid]
        if replan:
            routes[cid] = plan_route(
                c, dist, now, method=method, keep=states[cid].visits, weights=weights
            )
        else:
            routes[cid] = _as_plan(states[cid], "kept")
    seconds["replan"] = clock() - began

    risks: list[Risk] = []
    for cid, plan in routes.items():
        jobs_of = {job.id: job for job in current[cid].jobs}
        for (job_id, kind), at in zip(plan.visits, plan.arrivals):
            if kind == "delivery" and at > jobs_of[job_id].due:
                risks.append(Risk(jobs_of[job_id], at, "late", cid))
    if assign_jobs:
        risks = _elsewhere(risks, current, states, dist, now, weights, reach_m, candidates)
    if watch:
        order = [cid for cid in current if current[cid].load < current[cid].capacity]
        pc = pair_costs(
            watch,
            [states[cid] for cid in order],
            dist,
            now,
            weights=weights,
            reach_m=reach_m,
            candidates=candidates,
        )
        for j, job in enumerate(watch):
            row = pc.arrival[j]
            if np.isfinite(row).any():
                best_arrival[job.id] = float(row.min())
    fastest = max((c.speed for c in couriers), default=1.0)
    for job in [*remaining, *watch]:
        predicted = best_arrival.get(job.id)
        if predicted is None:
            shortest = dist[job.pickup, job.dropoff] / fastest + job.pickup_service
            start = max(now, job.ready)
            if start + shortest + job.dropoff_service + risk_margin_s >= job.due:
                risks.append(Risk(job, None, "no_rider", None))
        elif predicted > job.due:
            risks.append(Risk(job, predicted, "late", None))
    seconds["total"] = sum(seconds.values())
    return CyclePlan(assignments, routes, remaining, risks, seconds)


def _elsewhere(
    risks: list[Risk],
    current: dict[int, Courier],
    states: dict[int, RouteState],
    dist: npt.NDArray,
    now: float,
    weights: Weights,
    reach_m: float,
    candidates: int | None,
) -> list[Risk]:
    """For each order late on its rider's route and not picked up yet, when another rider with
    room could bring it to the door (the dispatcher moves it only if that is much sooner)."""
    movable = [
        k
        for k, risk in enumerate(risks)
        if risk.courier_id is not None
        and any(job.id == risk.job.id for job in current[risk.courier_id].assigned)
    ]
    if not movable:
        return risks
    order = [cid for cid in current if current[cid].load < current[cid].capacity]
    if not order:
        return risks
    pc = pair_costs(
        [risks[k].job for k in movable],
        [states[cid] for cid in order],
        dist,
        now,
        weights=weights,
        reach_m=reach_m,
        candidates=candidates,
    )
    out = list(risks)
    for row, k in enumerate(movable):
        arrivals = [
            float(pc.arrival[row, r])
            for r, cid in enumerate(order)
            if cid != risks[k].courier_id and np.isfinite(pc.arrival[row, r])
        ]
        if arrivals:
            out[k] = replace(risks[k], elsewhere=min(arrivals))
    return out


def _improve(
    assignments: list[Assignment],
    current: dict[int, Courier],
    states: dict[int, RouteState],
    dist: npt.NDArray,
    now: float,
    weights: Weights,
    reach_m: float,
    candidates: int,
) -> int:
    """Move assignments to other riders' routes where that lowers their cost (batching).
    Returns the number of moves."""
    moves = 0
    for index in sorted(range(len(assignments)), key=lambda k: -assignments[k].terms.cost):
        a = assignments[index]
        cid = a.courier_id
        visits = [v for v in states[cid].visits if v[0] != a.job.id]
        without = replace(
            current[cid],
            assigned=tuple(j for j in current[cid].assigned if j.id != a.job.id),
            route=tuple(visits),
        )
        trial = dict(states)
        trial[cid] = route_state(without, visits, dist, now)
        order = [c for c in trial if trial[c].courier.load < trial[c].courier.capacity]
        pc = pair_costs(
            [a.job],
            [trial[c] for c in order],
            dist,
            now,
            weights=weights,
            reach_m=reach_m,
            candidates=candidates,
        )
        best = int(np.argmin(pc.cost[0]))
        target = order[best]
        if target == cid or pc.cost[0, best] >= a.terms.cost - 1e-6:
            continue
        terms = pc.terms(0, best)
        current[cid], states[cid] = without, trial[cid]
        moved = replace(current[target], assigned=current[target].assigned + (a.job,))
        new_visits = insert_visits(states[target].visits, a.job.id, terms.insert_at)
        current[target] = replace(moved, route=tuple(new_visits))
        states[target] = route_state(current[target], new_visits, dist, now)
        row = pc.cost[0]
        runners = [
            (order[int(x)], float(row[x]))
            for x in np.argsort(row)[:4]
            if int(x) != best and row[x] < INFEASIBLE
        ][:3]
        assignments[index] = Assignment(a.job, target, terms, tuple(runners))
        moves += 1
    return moves


# --------------------------------------------------------------------------------------------
# Baseline and the board's score
# --------------------------------------------------------------------------------------------


def nearest_rider_baseline(
    jobs: Sequence[Job],
    couriers: Sequence[Courier],
    dist: npt.NDArray,
    *,
    reach_m: float = math.inf,
) -> list[tuple[int, int]]:
    """What riders grabbing orders amounts to: each job in turn (oldest first) goes to the
    nearest free eligible rider. Returns (job index, courier index) pairs."""
    ok = eligibility(jobs, couriers)
    start = np.array([c.location for c in couriers], dtype=np.int64)
    offset = np.array([c.offset_m for c in couriers])
    free = np.ones(len(couriers), dtype=bool)
    pairs = []
    for j, job in enumerate(jobs):
        metres = offset + np.asarray(dist)[start, job.pickup]
        metres = np.where(ok[j] & free & (metres <= reach_m), metres, np.inf)
        r = int(np.argmin(metres)) if len(metres) else -1
        if r >= 0 and np.isfinite(metres[r]):
            pairs.append((j, r))
            free[r] = False
    return pairs


def pickup_distance_total(
    pairs: Iterable[tuple[int, int]],
    jobs: Sequence[Job],
    couriers: Sequence[Courier],
    dist: npt.NDArray,
) -> float:
    return float(
        sum(couriers[r].offset_m + dist[couriers[r].location, jobs[j].pickup] for j, r in pairs)
    )


@dataclass(frozen=True)
class GrabScore:
    """The board's ranking, in parts a rider can check: higher first."""

    distance_m: float | None
    fee_fen: int
    minutes_left: float
    distance_points: float
    fee_points: float
    urgency_points: float

    @property
    def total(self) -> float:
        return round(self.distance_points + self.fee_points + self.urgency_points, 1)


# -1 point per 200 m to walk to the pickup, +1 per yuan of fee, and up to +3 as the promised time
# nears (from 30 minutes left down to none left): a close, well-paid, urgent order comes first.
METRES_PER_POINT = 200.0
URGENCY_WINDOW_MIN = 30.0
URGENCY_MAX_POINTS = 3.0


def grab_score(distance_m: float | None, fee_fen: int, seconds_left: float) -> GrabScore:
    minutes_left = seconds_left / 60
    urgency = URGENCY_MAX_POINTS * min(
        1.0, max(0.0, (URGENCY_WINDOW_MIN - minutes_left) / URGENCY_WINDOW_MIN)
    )
    return GrabScore(
        distance_m=distance_m,
        fee_fen=fee_fen,
        minutes_left=minutes_left,
        distance_points=round(-(distance_m or 0.0) / METRES_PER_POINT, 1),
        fee_points=round(fee_fen / 100, 1),
        urgency_points=round(urgency, 1),
    )
