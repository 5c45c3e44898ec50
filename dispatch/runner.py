"""The dispatcher process: for each campus, hold the lease and run a cycle every few seconds.

Several processes may run this at once (for availability): per campus, only the lease holder
runs cycles; the others stand by and take over when the holder stops renewing (crash) or gives
the lease up (graceful stop). All state is in the database, so a takeover loses no order:
pending offers simply expire on schedule and their orders are dispatched again.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import close_old_connections, connection, connections
from django.utils import timezone

from campus.models import Campus
from dispatch import selectors, services
from dispatch.services import CycleReport


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Dispatcher:
    owner: str = field(default_factory=default_owner)
    campus_slugs: list[str] | None = None
    log: Callable[[str], None] = print
    clock: Callable[[], datetime] = timezone.now
    stop: threading.Event = field(default_factory=threading.Event)
    # A long-lived process drops stale database connections between ticks, as Django does
    # between requests (never inside a transaction: a test's, for one).
    manage_connections: bool = False
    log_idle: bool = True  # False: log only cycles that did something (the demo's console)
    # campus id -> when its next cycle is due, on ``clock`` (a simulator's clock works too)
    _due: dict[int, datetime] = field(default_factory=dict)
    _holding: set[int] = field(default_factory=set)
    cycles: int = 0

    def campuses(self) -> list[Campus]:
        qs = Campus.objects.order_by("pk")
        if self.campus_slugs:
            qs = qs.filter(slug__in=self.campus_slugs)
        return list(qs)

    def tick(self) -> list[CycleReport]:
        """Run the cycles that are due now; returns their reports."""
        self._tidy_connections()
        reports = []
        for campus in self.campuses():
            now = self.clock()
            due = self._due.get(campus.pk)
            if due is not None and due > now:
                continue
            settings = selectors.dispatch_settings_get(campus)
            self._due[campus.pk] = now + timedelta(seconds=settings.cycle_seconds)
            held = services.lease_acquire(
                campus=campus,
                owner=self.owner,
                now=now,
                seconds=services.lease_seconds(settings),
            )
            if not held:
                if campus.pk in self._holding:
                    self.log(f"[{campus.slug}] lease lost: standing by")
                    self._holding.discard(campus.pk)
                continue
            if campus.pk not in self._holding:
                self.log(f"[{campus.slug}] lease acquired by {self.owner}: dispatching")
                self._holding.add(campus.pk)
            report = services.dispatch_cycle(campus=campus, now=now, lease_owner=self.owner)
            self.cycles += not report.skipped
            if self.log_idle or report.eventful:
                self.log(report.line())
            reports.append(report)
        return reports

    def run(
        self, *, once: bool = False, max_cycles: int | None = None, seconds: float | None = None
    ) -> None:
        """Loop until stopped (or after one round, ``max_cycles`` cycles run, ``seconds``)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while not self.stop.is_set():
                self.tick()
                if once or (max_cycles is not None and self.cycles >= max_cycles):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                now = self.clock()
                wait = (
                    min((d - now).total_seconds() for d in self._due.values()) if self._due else 1
                )
                # Wake at least every second so that a stop request is noticed quickly.
                self.stop.wait(max(0.05, min(wait, 1.0)))
        finally:
            self.release()
            self.close()

    def release(self) -> None:
        for campus in Campus.objects.filter(pk__in=list(self._holding)):
            services.lease_release(campus=campus, owner=self.owner)
            self.log(f"[{campus.slug}] lease released")
        self._holding.clear()
        self._tidy_connections()

    def _tidy_connections(self) -> None:
        if self.manage_connections and not connection.in_atomic_block:
            close_old_connections()

    def close(self) -> None:
        """Close this thread's database connections (a dispatcher thread that ends)."""
        if self.manage_connections and not connection.in_atomic_block:
            connections.close_all()
