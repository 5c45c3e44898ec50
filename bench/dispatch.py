"""Benchmark of dispatch.routing: Li & Lim PDPTW instances and the one-rider exact oracle.

Run from the repository root:

    .venv/bin/python bench/dispatch.py            # full run
    .venv/bin/python bench/dispatch.py --quick    # small run, well under 30 s
    .venv/bin/python bench/dispatch.py --check    # exit 1 if a (loose) target is missed

Instances are read from ``$LILIM_DIR`` or from the first ``shared/data/lilim`` found next to a
parent directory of this file (the workspace keeps shared data beside the repository).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

if __package__ in (None, ""):
    # Run as a script: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dispatch.routing import (
    MAX_EXACT_SHIPMENTS,
    Plan,
    Problem,
    Shipment,
    Stop,
    Vehicle,
    check_plan,
    plan_routes,
    plan_single_exact,
    retime,
)

# VROOM works in integers. Distances are multiplied by SCALE and rounded *up*, windows and
# service times are multiplied exactly (the data are integers), so every scaled arrival is at
# least SCALE times the true one and a plan feasible in scaled units is feasible in real ones.
SCALE = 1000
# Larger than any total scaled distance (~2e6 here) so one rider fewer always wins.
FIXED_VEHICLE_COST = 10**8
EXPLORATION_LEVEL = 5
THREADS = 2
# Our plans are checked with no tolerance at all (the rounding above guarantees it). The
# published solutions are checked allowing this much floating-point noise.
TOLERANCE = 1e-6

INSTANCES = ("lc101", "lc104", "lr101", "lr201", "lrc101")

TARGET_GAP_PERCENT = 1.0
# --check fails only when a figure is this many times worse than its target (or, for lc101,
# more than this many percent off), so a slower CI machine does not turn it red.
LOOSE = 2.0
TARGET_SECONDS = 1.5
LC101_BEST = 828.94
TARGET_DP_MS = 10.0


# --------------------------------------------------------------------------------------------
# Li & Lim data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiLimInstance:
    name: str
    max_vehicles: int
    capacity: int
    xy: npt.NDArray[np.float64]
    demand: list[int]
    earliest: list[int]
    latest: list[int]
    service: list[int]
    pickup_of: list[int]  # on a delivery line: its pickup node
    delivery_of: list[int]  # on a pickup line: its delivery node

    @property
    def distances(self) -> npt.NDArray[np.float64]:
        diff = self.xy[:, None, :] - self.xy[None, :, :]
        return np.sqrt((diff**2).sum(axis=2))

    def problem(self, scale: int | None = None) -> Problem:
        """The instance in real units (float matrix, for checking) or scaled for VROOM."""
        distances = self.distances
        if scale is None:
            matrix: npt.NDArray[np.number] = distances
            factor = 1
        else:
            matrix = np.ceil(distances * scale).astype(np.int64)
            factor = scale
        shipments = [
            Shipment(
                id=p,
                pickup=p,
                delivery=d,
                amount=self.demand[p],
                pickup_window=(self.earliest[p] * factor, self.latest[p] * factor),
                delivery_window=(self.earliest[d] * factor, self.latest[d] * factor),
                pickup_service=self.service[p] * factor,
                delivery_service=self.service[d] * factor,
            )
            for p, d in enumerate(self.delivery_of)
            if d > 0
        ]
        vehicles = [
            Vehicle(
                id=k,
                start=0,
                end=0,
                capacity=self.capacity,
                time_window=(0, self.latest[0] * factor),
            )
            for k in range(self.max_vehicles)
        ]
        return Problem(matrix, vehicles, shipments, fixed_vehicle_cost=FIXED_VEHICLE_COST)

    def plan_from_nodes(self, routes: list[list[int]]) -> Plan:
        """A node-sequence solution (as in the best-known files) expressed as a Plan."""
        by_vehicle: dict[int, tuple[Stop, ...]] = {}
        for k, nodes in enumerate(routes):
            by_vehicle[k] = tuple(
                Stop(node, "pickup", 0)
                if self.delivery_of[node] > 0
                else Stop(self.pickup_of[node], "delivery", 0)
                for node in nodes
            )
        return Plan(by_vehicle, (), 0)


def find_lilim_dir() -> Path | None:
    if env := os.environ.get("LILIM_DIR"):
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "lilim"
        if candidate.is_dir():
            return candidate
    return None


def load_instance(path: Path) -> LiLimInstance:
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    vehicles, capacity, _speed = (int(float(v)) for v in lines[0])
    rows = [[int(float(v)) for v in line] for line in lines[1:]]
    rows.sort(key=lambda row: row[0])
    if [row[0] for row in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: node ids are not 0..n-1")
    return LiLimInstance(
        name=path.stem,
        max_vehicles=vehicles,
        capacity=capacity,
        xy=np.array([[row[1], row[2]] for row in rows], dtype=np.float64),
        demand=[row[3] for row in rows],
        earliest=[row[4] for row in rows],
        latest=[row[5] for row in rows],
        service=[row[6] for row in rows],
        pickup_of=[row[7] for row in rows],
        delivery_of=[row[8] for row in rows],
    )


@dataclass(frozen=True)
class BestKnown:
    vehicles: int
    distance: float
    routes: list[list[int]]


def load_best_known(directory: Path, name: str) -> BestKnown | None:
    """Vehicle count and routes from ``<name>.<vehicles>_<distance>.txt``; the distance is
    taken from the README table (the file name rounds it) and recomputed by the caller."""
    files = sorted(directory.glob(f"{name}.*_*.txt"))
    if not files:
        return None
    routes = [
        [int(node) for node in line.split(":", 1)[1].split()]
        for line in files[0].read_text().splitlines()
        if re.match(r"\s*Route\s+\d+\s*:", line)
    ]
    distance = float(files[0].stem.rsplit("_", 1)[1])
    readme = directory / "README.md"
    if readme.exists():
        for line in readme.read_text().splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[0] == name:
                distance = float(cells[2])
    return BestKnown(vehicles=len(routes), distance=distance, routes=routes)


# --------------------------------------------------------------------------------------------
# Part 1: Li & Lim
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiLimResult:
    name: str
    vehicles: int
    best_vehicles: int | None
    distance: float
    best_distance: float | None
    best_recomputed: float | None
    feasible: bool
    best_feasible: bool | None
    seconds: float
    violations: list[str]

    @property
    def gap(self) -> float | None:
        # Against our own double-precision recomputation of the best-known routes rather than
        # the published figure, which is rounded to two decimals.
        reference = self.best_recomputed or self.best_distance
        if reference is None:
            return None
        return 100 * (self.distance - reference) / reference


def run_instance(directory: Path, name: str, exploration_level: int, threads: int) -> LiLimResult:
    instance = load_instance(directory / f"{name}.txt")
    real = instance.problem()
    scaled = instance.problem(SCALE)
    began = time.perf_counter()
    plan = plan_routes(scaled, exploration_level=exploration_level, threads=threads)
    seconds = time.perf_counter() - began
    # Judge the plan in the instance's own terms: double-precision distances, original windows.
    real_plan = retime(real, plan)
    violations = check_plan(real, real_plan)
    if plan.unassigned:
        violations.append(f"{len(plan.unassigned)} shipments unassigned")
    best = load_best_known(directory, name)
    best_recomputed = best_feasible = None
    if best is not None:
        best_plan = retime(real, instance.plan_from_nodes(best.routes))
        best_recomputed = best_plan.travel_cost
        best_feasible = not check_plan(real, best_plan, tolerance=TOLERANCE)
    return LiLimResult(
        name=name,
        vehicles=plan.vehicles_used,
        best_vehicles=None if best is None else best.vehicles,
        distance=real_plan.travel_cost,
        best_distance=None if best is None else best.distance,
        best_recomputed=best_recomputed,
        feasible=not violations,
        best_feasible=best_feasible,
        seconds=seconds,
        violations=violations,
    )


def part_lilim(names: tuple[str, ...], exploration_level: int, threads: int) -> list[Target]:
    """Runs the instances, prints the table, returns the missed targets."""
    directory = find_lilim_dir()
    print(f"== Li & Lim PDPTW (VROOM x={exploration_level}, {threads} threads, scale {SCALE}) ==")
    if directory is None or not directory.is_dir():
        print("   instances not found (set LILIM_DIR); skipped\n")
        return []
    print(f"   data: {directory}")
    header = (
        f"{'instance':<9} {'veh':>3} {'/bk':>3} {'distance':>9} {'best-known':>10} "
        f"{'bk recomp.':>10} {'gap %':>6} {'ours ok':>7} {'bk ok':>5} {'seconds':>7}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for name in names:
        if not (directory / f"{name}.txt").exists():
            print(f"{name:<9} missing")
            continue
        r = run_instance(directory, name, exploration_level, threads)
        results.append(r)
        print(
            f"{r.name:<9} {r.vehicles:>3} {_fmt(r.best_vehicles, 'd'):>3} {r.distance:>9.2f} "
            f"{_fmt(r.best_distance, '.2f'):>10} {_fmt(r.best_recomputed, '.2f'):>10} "
            f"{_fmt(r.gap, '+.2f'):>6} {_yes(r.feasible):>7} {_yes(r.best_feasible):>5} "
            f"{r.seconds:>7.2f}"
        )
        for violation in r.violations[:5]:
            print(f"    ! {violation}")

    matched = [r for r in results if r.vehicles == r.best_vehicles and r.gap is not None]
    mean_gap = (
        statistics.fmean(r.gap for r in matched if r.gap is not None) if matched else math.nan
    )
    worst_seconds = max((r.seconds for r in results), default=0.0)
    lc101 = next((r for r in results if r.name == "lc101"), None)
    lc101_gap = math.nan if lc101 is None or lc101.gap is None else lc101.gap
    targets = [
        _target("all plans feasible", all(r.feasible for r in results)),
        _target(
            "best-known solutions pass the checker",
            all(r.best_feasible is not False for r in results),
        ),
        _target(
            f"mean gap <= {TARGET_GAP_PERCENT}% where vehicles match best-known",
            mean_gap <= TARGET_GAP_PERCENT,
            mean_gap <= LOOSE * TARGET_GAP_PERCENT,
            f"mean {mean_gap:+.2f}% over {len(matched)}/{len(results)} instances",
        ),
        _target(
            "vehicle count at best-known",
            all(r.vehicles <= (r.best_vehicles or r.vehicles) for r in results),
            True,  # informative only: not one of the issue's targets
            ", ".join(f"{r.name} {r.vehicles}/{r.best_vehicles}" for r in results),
        ),
        _target(
            f"<= {TARGET_SECONDS} s per instance",
            worst_seconds <= TARGET_SECONDS,
            worst_seconds <= LOOSE * TARGET_SECONDS,
            f"max {worst_seconds:.2f} s",
        ),
        _target(
            f"lc101 at best-known ({LC101_BEST})",
            lc101 is not None and lc101.vehicles == 10 and lc101.distance <= LC101_BEST + 0.005,
            lc101 is not None and lc101.vehicles == 10 and lc101_gap <= LOOSE,
            "not run" if lc101 is None else f"{lc101.vehicles} vehicles, {lc101.distance:.2f}",
        ),
    ]
    _report(targets)
    return targets


# --------------------------------------------------------------------------------------------
# Part 2: one rider, VROOM versus the exact DP
# --------------------------------------------------------------------------------------------


def random_rider_case(
    rng: np.random.Generator, n: int, windows: bool
) -> tuple[npt.NDArray[np.int64], list[Shipment], int]:
    """Random points on a 1 km campus, travel time in seconds at walking-bike speed (integer,
    rounded), index 0 is the rider. Windows, when asked for, are built around one random
    feasible order so that every case has a solution."""
    points = rng.uniform(0, 1000, size=(2 * n + 1, 2))
    diff = points[:, None, :] - points[None, :, :]
    matrix = np.rint(np.sqrt((diff**2).sum(axis=2)) / 4).astype(np.int64)
    capacity = int(rng.integers(2, 5))
    amounts = [int(rng.integers(1, 3)) for _ in range(n)]
    shipments = [
        Shipment(id=100 + i, pickup=1 + 2 * i, delivery=2 + 2 * i, amount=amounts[i])
        for i in range(n)
    ]
    if windows:
        # Serve the shipments one after another in a random order, then open each window a
        # little before and close it a while after that reference time.
        clock, position, timed = 0, 0, []
        for i in rng.permutation(n):
            s = shipments[i]
            clock += int(matrix[position, s.pickup]) + 30
            pick = clock
            clock += int(matrix[s.pickup, s.delivery]) + 30
            timed.append(
                Shipment(
                    id=s.id,
                    pickup=s.pickup,
                    delivery=s.delivery,
                    amount=s.amount,
                    pickup_window=(
                        max(0, pick - int(rng.integers(0, 120))),
                        pick + int(rng.integers(60, 600)),
                    ),
                    delivery_window=(
                        max(0, clock - int(rng.integers(0, 300))),
                        clock + int(rng.integers(120, 900)),
                    ),
                    pickup_service=30,
                    delivery_service=30,
                )
            )
            position = s.delivery
        shipments = sorted(timed, key=lambda s: s.id)
    return matrix, shipments, capacity


def part_single_rider(cases_per_size: int, seed: int, threads: int) -> list[Target]:
    print(
        f"== One rider: VROOM (x=5) versus the exact DP (baseline), {cases_per_size} random "
        "cases per row =="
    )
    header = (
        f"{'shipments':>9} {'windows':>7} {'VROOM optimal':>13} {'incomplete':>10} "
        f"{'mean gap %':>10} {'max gap %':>9} {'DP ms':>6} {'DP max':>6} {'VROOM ms':>8} "
        f"{'DP/VROOM':>8}"
    )
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(seed)
    dp_failures = oracle_beaten = infeasible = incomplete_total = 0
    optimal_total = compared_total = 0
    dp_mean_at_6: list[float] = []
    for windows in (False, True):
        for n in range(1, MAX_EXACT_SHIPMENTS + 1):
            gaps: list[float] = []
            dp_ms: list[float] = []
            vroom_ms: list[float] = []
            incomplete = 0
            for _ in range(cases_per_size):
                matrix, shipments, capacity = random_rider_case(rng, n, windows)
                began = time.perf_counter()
                exact = plan_single_exact(matrix, 0, shipments, capacity)
                dp_ms.append(1000 * (time.perf_counter() - began))
                rider = Vehicle(id=1, start=0, end=None, capacity=capacity)
                problem = Problem(matrix, [rider], shipments)
                began = time.perf_counter()
                plan = plan_routes(problem, exploration_level=5, threads=threads)
                vroom_ms.append(1000 * (time.perf_counter() - began))
                if exact is None:
                    dp_failures += 1  # every case is feasible by construction
                    continue
                if check_plan(problem, plan):
                    infeasible += 1
                    continue
                if plan.unassigned:
                    # A heuristic may give up on a shipment the oracle shows can be served.
                    incomplete += 1
                    continue
                optimum = retime(problem, Plan({1: tuple(exact)}, (), 0)).travel_cost
                gaps.append(100 * (plan.travel_cost - optimum) / optimum if optimum else 0.0)
            optimal = sum(gap <= 1e-9 for gap in gaps)
            oracle_beaten += sum(gap < -1e-9 for gap in gaps)
            optimal_total += optimal
            compared_total += len(gaps)
            incomplete_total += incomplete
            dp_mean, vroom_mean = statistics.fmean(dp_ms), statistics.fmean(vroom_ms)
            if n == MAX_EXACT_SHIPMENTS:
                dp_mean_at_6.append(dp_mean)
            mean_gap = statistics.fmean(gaps) if gaps else math.nan
            print(
                f"{n:>9} {_yes(windows):>7} {f'{optimal}/{len(gaps)}':>13} {incomplete:>10} "
                f"{mean_gap:>10.2f} {max(gaps, default=math.nan):>9.2f} {dp_mean:>6.2f} "
                f"{max(dp_ms):>6.2f} {vroom_mean:>8.2f} {dp_mean / vroom_mean:>8.2f}"
            )
    dp_ms_6 = max(dp_mean_at_6)
    targets = [
        _target(
            f"exact DP <= {TARGET_DP_MS:g} ms at {MAX_EXACT_SHIPMENTS} shipments",
            dp_ms_6 <= TARGET_DP_MS,
            dp_ms_6 <= LOOSE * TARGET_DP_MS,
            f"mean {dp_ms_6:.2f} ms",
        ),
        _target("exact DP solves every (feasible) case", dp_failures == 0),
        _target("VROOM never beats the exact DP", oracle_beaten == 0),
        _target("VROOM plans pass the checker", infeasible == 0),
        _target(
            "VROOM optimal on every one-rider case",
            optimal_total == compared_total and incomplete_total == 0,
            True,  # informative: VROOM is a heuristic
            f"{optimal_total}/{compared_total} optimal, {incomplete_total} with an unassigned "
            "shipment",
        ),
    ]
    _report(targets)
    return targets


@dataclass(frozen=True)
class Target:
    label: str
    met: bool
    loose: bool  # what --check enforces
    detail: str = ""


def _target(label: str, met: bool, loose: bool | None = None, detail: str = "") -> Target:
    return Target(label, bool(met), bool(met if loose is None else loose), detail)


def _report(targets: list[Target]) -> None:
    print()
    for t in targets:
        status = "met" if t.met else ("missed" if t.loose else "FAILED")
        print(f"   [{status:>6}] {t.label}" + (f"  ({t.detail})" if t.detail else ""))
    print()


# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer random one-rider cases")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--exploration-level", type=int, default=EXPLORATION_LEVEL)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)

    began = time.perf_counter()
    targets = part_lilim(INSTANCES, args.exploration_level, args.threads)
    targets += part_single_rider(20 if args.quick else 200, args.seed, threads=1)
    failed = [t.label for t in targets if not t.loose]
    print(f"total {time.perf_counter() - began:.1f} s")
    if args.check:
        print("check:", "FAILED: " + "; ".join(failed) if failed else "passed (loose thresholds)")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
