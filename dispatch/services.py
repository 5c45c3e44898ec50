"""Every write of dispatch: offers and their answers, reassignment, at-risk flags, the dispatch
cycle and the lease that keeps one dispatcher per campus.

Each function takes ``now`` (default: the wall clock) and passes it down, so a simulator can run
the same code on its own clock. Order status changes go through orders.services only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campus.models import Campus
from dispatch import relay, selectors
from dispatch.matching import CyclePlan, Weights, plan_cycle
from dispatch.models import (
    UNANSWERED,
    Action,
    CampusDispatchSettings,
    DispatchDecision,
    DispatcherLease,
    Mode,
    Offer,
    OfferStatus,
    OrderRisk,
)
from orders import services as order_services
from orders.errors import NotAllowed, OrderError
from orders.models import Order
from orders.status import WITH_RIDER, Status
from riders.models import RiderProfile
from tracking import broadcast, live

logger = logging.getLogger("dispatch")

DEFAULT_WEIGHTS = Weights()
# Rounds of matching per cycle: a rider takes at most one new order per round, so with three
# rounds a rider passing by can be given up to three orders to batch in one cycle.
MATCH_ROUNDS = 3
LEASE_MIN_SECONDS = 30
# A rider falling behind loses an order (not picked up yet) only to a rider who would bring it
# to the door at least this much sooner. Otherwise, at a rush when every rider is behind, the
# order bounced from rider to rider (each turning back), and since it is never offered again
# to a rider it was taken from, it could run out of riders and expire (simulate_day at twice
# the lunch demand: 244 moves and 16 expired orders before, 63 and none after).
REASSIGN_GAIN_S = 120


class OfferGone(OrderError):
    http_status = 409
    code = "offer_gone"
    default_message = gettext_lazy("This offer is no longer open.")


def _record(
    *,
    campus_id: int,
    order_id: int,
    action: str,
    mode: str,
    now: datetime,
    rider_id: int | None = None,
    offer: Offer | None = None,
    cost: float | None = None,
    terms: dict | None = None,
    note: str = "",
) -> DispatchDecision:
    return DispatchDecision.objects.create(
        campus_id=campus_id,
        order_id=order_id,
        rider_id=rider_id,
        offer=offer,
        action=action,
        mode=mode,
        cost=cost,
        terms=terms or {},
        note=str(note)[:255],
        created_at=now,
    )


# --- offers ------------------------------------------------------------------------------------


def offer_make(
    *,
    order: Order,
    rider_id: int,
    now: datetime,
    settings: CampusDispatchSettings,
    cost: float,
    terms: dict,
) -> Offer | None:
    """Offer ``order`` to the rider until the campus timeout; None if the order is no longer
    open or already has a pending offer (another cycle got there first)."""
    if not Order.objects.filter(pk=order.pk, status=Status.OPEN).exists():
        return None
    try:
        with transaction.atomic():
            offer = Offer.objects.create(
                campus_id=order.campus_id,
                order=order,
                rider_id=rider_id,
                created_at=now,
                expires_at=now + timedelta(seconds=settings.offer_timeout_seconds),
                cost=cost,
                terms=terms,
            )
    except IntegrityError:
        return None
    _record(
        campus_id=order.campus_id,
        order_id=order.pk,
        action=Action.OFFERED,
        mode=settings.mode,
        now=now,
        rider_id=rider_id,
        offer=offer,
        cost=cost,
        terms=terms,
    )
    broadcast.offer_made_on_commit(offer)
    return offer


def _close(offer: Offer, status: str, *, now: datetime, mode: str, note: str = "") -> bool:
    """Move a pending offer to its final status (conditional: exactly one answer counts)."""
    won = Offer.objects.filter(pk=offer.pk, status=OfferStatus.PENDING).update(
        status=status, responded_at=now
    )
    if not won:
        return False
    offer.status, offer.responded_at = status, now
    action = {
        OfferStatus.ACCEPTED: Action.ACCEPTED,
        OfferStatus.DECLINED: Action.DECLINED,
        OfferStatus.EXPIRED: Action.EXPIRED,
        OfferStatus.WITHDRAWN: Action.WITHDRAWN,
    }[status]
    _record(
        campus_id=offer.campus_id,
        order_id=offer.order_id,
        action=action,
        mode=mode,
        now=now,
        rider_id=offer.rider_id,
        offer=offer,
        cost=offer.cost,
        note=note,
    )
    broadcast.offer_made_on_commit(offer)
    if status in UNANSWERED:
        _fallback_if_due(offer, now=now)
    return True


def _fallback_if_due(offer: Offer, *, now: datetime) -> None:
    settings = selectors.dispatch_settings_get(offer.order.campus)
    if settings.mode != Mode.HYBRID:
        return
    unanswered = Offer.objects.filter(order_id=offer.order_id, status__in=UNANSWERED).count()
    if unanswered == settings.hybrid_fallback_offers:
        _record(
            campus_id=offer.campus_id,
            order_id=offer.order_id,
            action=Action.FALLBACK,
            mode=settings.mode,
            now=now,
            note=_("%(n)d offers unanswered: on the board for any eligible rider.")
            % {"n": unanswered},
        )


def _locked_offer(offer: Offer) -> Offer:
    return (
        Offer.objects.select_for_update(of=("self",))
        .select_related("order__pickup_building", "order__dropoff_building", "order__campus")
        .get(pk=offer.pk)
    )


def offer_accept(*, offer: Offer, rider, now: datetime | None = None) -> Order:
    """The rider takes the offered order. Eligibility is checked again (orders.rules through
    order_accept); an offer answered too late expires instead."""
    now = now or timezone.now()
    error: OrderError | None = None
    with transaction.atomic():
        offer = _locked_offer(offer)
        if offer.rider_id != rider.pk:
            raise NotAllowed()
        if offer.status != OfferStatus.PENDING:
            raise OfferGone()
        mode = selectors.dispatch_settings_get(offer.order.campus).mode
        if now >= offer.expires_at:
            _close(offer, OfferStatus.EXPIRED, now=now, mode=mode, note=_("answered too late"))
            error = OfferGone(_("Too late: this offer has expired."))
        else:
            try:
                with transaction.atomic():
                    order = order_services.order_accept(order=offer.order, rider=rider)
            except OrderError as exc:
                _close(offer, OfferStatus.WITHDRAWN, now=now, mode=mode, note=str(exc.message))
                error = exc
            else:
                _close(offer, OfferStatus.ACCEPTED, now=now, mode=mode)
    if error is not None:
        raise error
    return order


def offer_decline(*, offer: Offer, rider, now: datetime | None = None, reason: str = "") -> Offer:
    """The rider says no: the order goes back to the pool for the next cycle (to someone
    else), and the decline counts against the rider's credit once they repeat it."""
    now = now or timezone.now()
    with transaction.atomic():
        offer = _locked_offer(offer)
        if offer.rider_id != rider.pk:
            raise NotAllowed()
        if offer.status != OfferStatus.PENDING:
            raise OfferGone()
        mode = selectors.dispatch_settings_get(offer.order.campus).mode
        _close(offer, OfferStatus.DECLINED, now=now, mode=mode, note=reason)
        transaction.on_commit(lambda: _credit_refresh(rider))
    return offer


def _credit_refresh(rider) -> None:
    """Ask the riders app to recompute the stored credit score, if it can."""
    try:
        from riders import services as rider_services
    except ImportError:
        return
    recompute = getattr(rider_services, "rider_credit_recompute", None)
    if recompute is None:
        return
    try:
        recompute(user=rider)
    except Exception:  # the decline itself is recorded; a failed refresh must not undo it
        logger.exception("credit recompute failed for rider %s", rider.pk)


def offers_expire(*, campus: Campus, now: datetime, mode: str) -> int:
    """Expire the offers whose time is up (their orders return to the pool), and withdraw
    those whose order is no longer open (grabbed or scanned by someone else, cancelled)."""
    expired = 0
    related = ("order__pickup_building", "order__dropoff_building", "order__campus")
    for offer in (
        Offer.objects.pending().filter(campus=campus).exclude(order__status=Status.OPEN)
    ).select_related(*related):
        with transaction.atomic():
            _close(offer, OfferStatus.WITHDRAWN, now=now, mode=mode, note=_("order taken"))
    for offer in (
        Offer.objects.pending().filter(campus=campus, expires_at__lte=now).select_related(*related)
    ):
        with transaction.atomic():
            expired += _close(offer, OfferStatus.EXPIRED, now=now, mode=mode)
    return expired


# --- reassignment ------------------------------------------------------------------------------


@dataclass
class Release:
    released: list[Order]
    kept: list[Order]  # already picked up: only the rider can finish them (flagged)
    withdrawn: int


@transaction.atomic
def rider_orders_release(*, rider, reason: str, actor=None, now: datetime | None = None) -> Release:
    """Move a rider's orders to other riders: withdraw their pending offers and give back the
    orders they have not picked up (they reopen and are dispatched again, not to this rider).
    Orders already picked up cannot change hands here: they are flagged to operators.

    ``actor`` is the operator who pressed the button, None for the automatic rule."""
    now = now or timezone.now()
    profile = RiderProfile.objects.select_related("campus").get(user=rider)
    mode = selectors.dispatch_settings_get(profile.campus).mode
    withdrawn = 0
    for offer in (
        Offer.objects.pending()
        .filter(rider=rider)
        .select_related("order__pickup_building", "order__dropoff_building", "order__campus")
    ):
        withdrawn += _close(offer, OfferStatus.WITHDRAWN, now=now, mode=mode, note=reason)
    released, kept = [], []
    for order in Order.objects.filter(rider=rider, status__in=WITH_RIDER).select_related("campus"):
        if order.status == Status.ACCEPTED:
            released.append(
                order_release(order=order, reason=reason, actor=actor, now=now, mode=mode)
            )
        else:
            kept.append(order)
            settings = selectors.dispatch_settings_get(order.campus)
            risk_flag(
                order=order,
                reason=_("Rider %(reason)s while carrying it.") % {"reason": reason},
                promised_at=selectors.order_due(order, settings),
                predicted_at=None,
                now=now,
                mode=mode,
            )
    return Release(released, kept, withdrawn)


@transaction.atomic
def order_release(
    *, order: Order, reason: str, actor=None, now: datetime, mode: str, terms: dict | None = None
) -> Order:
    """Take an accepted order from its rider: it reopens, and dispatch will not offer it to
    that rider again."""
    rider_id = order.rider_id
    order = order_services.order_transition(
        order=order, to=Status.OPEN, actor=actor, note=_("reassigned: %s") % reason
    )
    _record(
        campus_id=order.campus_id,
        order_id=order.pk,
        action=Action.REASSIGNED,
        mode=mode,
        now=now,
        rider_id=rider_id,
        note=reason,
        terms={"by": actor.username if actor else "dispatcher", **(terms or {})},
    )
    return order


def _last_fix_at(rider_id: int) -> datetime | None:
    position = live.position_get(rider_id)
    if not position or not position.get("recorded_at"):
        return None
    return datetime.fromisoformat(position["recorded_at"])


def reassign_stalled(
    *, campus: Campus, settings: CampusDispatchSettings, now: datetime
) -> tuple[int, dict[int, str]]:
    """The automatic rule's first half: riders with orders not picked up who went offline or
    stopped sending fixes lose those orders. Returns (orders released, order id -> risk reason
    for what they still carry)."""
    released = 0
    carrying: dict[int, str] = {}
    stale_after = timedelta(minutes=settings.stale_fix_minutes)
    riders = {}
    for order in Order.objects.filter(campus=campus, status__in=WITH_RIDER).select_related(
        "rider__rider_profile"
    ):
        riders.setdefault(order.rider_id, (order.rider, []))[1].append(order)
    for rider_id, (rider, orders) in riders.items():
        profile = getattr(rider, "rider_profile", None)
        reason = None
        if profile is None or not profile.online or not profile.verified:
            reason = _("went offline")
        else:
            fix = _last_fix_at(rider_id)
            accepted = [o.accepted_at for o in orders if o.accepted_at]
            since = fix or (min(accepted) if accepted else None)
            if since is not None and now - since > stale_after:
                reason = _("stopped moving (no position for %(n)d minutes)") % {
                    "n": settings.stale_fix_minutes
                }
        if reason is None:
            continue
        if (
            any(o.status == Status.ACCEPTED for o in orders)
            or Offer.objects.pending().filter(rider_id=rider_id).exists()
        ):
            result = rider_orders_release(rider=rider, reason=reason, now=now)
            released += len(result.released)
        for order in orders:
            if order.status != Status.ACCEPTED:
                carrying[order.pk] = _("Rider %(reason)s while carrying it.") % {"reason": reason}
    return released, carrying


# --- at-risk flags -------------------------------------------------------------------------------


def risk_flag(
    *,
    order: Order,
    reason: str,
    promised_at: datetime,
    predicted_at: datetime | None,
    now: datetime,
    mode: str,
) -> OrderRisk | None:
    """Flag an order to operators (once while the flag is open)."""
    if OrderRisk.objects.filter(order=order, resolved_at__isnull=True).exists():
        return None
    try:
        with transaction.atomic():
            risk = OrderRisk.objects.create(
                campus_id=order.campus_id,
                order=order,
                reason=str(reason)[:255],
                promised_at=promised_at,
                predicted_at=predicted_at,
                created_at=now,
            )
    except IntegrityError:
        return None
    _record(
        campus_id=order.campus_id,
        order_id=order.pk,
        action=Action.AT_RISK,
        mode=mode,
        now=now,
        note=reason,
        terms={
            "promised_at": promised_at.isoformat(),
            "predicted_at": predicted_at.isoformat() if predicted_at else None,
        },
    )
    broadcast.order_at_risk_on_commit(
        order=order, reason=str(reason), promised_at=promised_at, predicted_at=predicted_at
    )
    return risk


def risks_resolve(*, campus: Campus, keep: set[int], now: datetime) -> int:
    """Close the open flags of orders no longer at risk (taken, delivered, back on time)."""
    resolved = 0
    for risk in (
        OrderRisk.objects.filter(campus=campus, resolved_at__isnull=True)
        .exclude(order_id__in=keep)
        .select_related("order")
    ):
        status = risk.order.status
        resolution = (
            _("order %(status)s") % {"status": Status(status).label}
            if status not in (Status.OPEN, Status.ACCEPTED)
            else _("back on time")
        )
        resolved += OrderRisk.objects.filter(pk=risk.pk, resolved_at__isnull=True).update(
            resolved_at=now, resolution=str(resolution)[:255]
        )
    return resolved


@transaction.atomic
def risk_resolve(*, risk: OrderRisk, operator, now: datetime | None = None) -> OrderRisk:
    """An operator has dealt with it."""
    now = now or timezone.now()
    OrderRisk.objects.filter(pk=risk.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolution=_("handled by %(who)s") % {"who": operator.username}
    )
    risk.refresh_from_db()
    return risk


# --- the cycle -----------------------------------------------------------------------------------


@dataclass
class CycleReport:
    campus: str
    mode: str
    at: str
    open_orders: int = 0
    matched_orders: int = 0
    awaiting_answer: int = 0  # open orders with an offer out
    riders: int = 0
    offers: int = 0
    expired: int = 0
    reassigned: int = 0
    at_risk: int = 0
    resolved: int = 0
    on_board: int = 0
    late_assignments: int = 0
    plan_ms: float = 0.0
    match_ms: float = 0.0
    total_ms: float = 0.0
    skipped: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def eventful(self) -> bool:
        return bool(
            self.skipped
            or self.offers
            or self.expired
            or self.reassigned
            or self.at_risk
            or self.resolved
        )

    def line(self) -> str:
        if self.skipped:
            return f"[{self.campus}] skipped: {self.skipped}"
        return (
            f"[{self.campus}] {self.mode}: {self.open_orders} open ({self.matched_orders} to "
            f"match, {self.awaiting_answer} on offer, {self.on_board} on the board), "
            f"{self.riders} riders online -> "
            f"{self.offers} offers, {self.expired} expired, {self.reassigned} reassigned, "
            f"{self.at_risk} at risk (+{self.resolved} resolved), late assigned "
            f"{self.late_assignments}; plan {self.plan_ms:.0f} ms, match {self.match_ms:.0f} "
            f"ms, total {self.total_ms:.0f} ms"
        )


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def dispatch_cycle(
    *,
    campus: Campus,
    now: datetime | None = None,
    lease_owner: str | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    rounds: int = MATCH_ROUNDS,
) -> CycleReport:
    """One round of the dispatcher for a campus:

    1. expire offers whose time is up (their orders go back to the pool);
    2. automatic reassignment: riders offline or without fixes lose orders not picked up;
    3. read open orders and online riders with their routes (dispatch_snapshot);
    4. auto / hybrid: plan routes, match orders to riders (plan_cycle), offer each pair;
       grab: only estimate, for the risk flags;
    5. riders falling behind lose the orders they would deliver very late;
    6. flag the orders that will miss their promise, resolve the flags that no longer hold.

    With ``lease_owner`` the writes of steps 4-6 happen only while that owner holds the lease.
    """
    began = time.perf_counter()
    now = now or timezone.now()
    settings = selectors.dispatch_settings_get(campus)
    report = CycleReport(campus=campus.slug, mode=settings.mode, at=now.isoformat())
    report.expired = offers_expire(campus=campus, now=now, mode=settings.mode)
    carrying: dict[int, str] = {}
    if settings.auto_reassign:
        report.reassigned, carrying = reassign_stalled(campus=campus, settings=settings, now=now)

    # Orders the admitted gender leaves waiting go in two legs through a transfer station (in
    # grab mode too: leg 1 then shows on the other pool's boards).
    relay.relays_plan_open(campus=campus, now=now)
    snap = selectors.dispatch_snapshot(campus, now=now, settings=settings)
    matching = settings.mode in (Mode.AUTO, Mode.HYBRID)
    plan: CyclePlan = plan_cycle(
        snap.jobs,
        snap.couriers,
        snap.matrix.distances,
        snap.now_s,
        weights=weights,
        reach_m=settings.reach_m,
        rounds=rounds,
        risk_margin_s=settings.at_risk_margin_minutes * 60,
        assign_jobs=matching,
        watch=snap.board_jobs,
    )
    report.open_orders = len(snap.open_orders)
    report.matched_orders = len(snap.jobs) if matching else 0
    report.awaiting_answer = sum(1 for o in snap.open_orders.values() if o.pending_offers)
    report.on_board = len(snap.fallback) if matching else len(snap.open_orders)
    report.riders = len(snap.couriers)
    report.plan_ms = 1000 * (plan.seconds.get("plan_current", 0) + plan.seconds.get("replan", 0))
    report.match_ms = 1000 * plan.seconds.get("match", 0)

    with transaction.atomic():
        if lease_owner is not None and not lease_renew(
            campus=campus, owner=lease_owner, now=now, settings=settings
        ):
            report.skipped = "lease lost"
            return report
        if matching:
            for a in plan.assignments:
                offer = offer_make(
                    order=snap.open_orders[a.job.id],
                    rider_id=a.courier_id,
                    now=now,
                    settings=settings,
                    cost=a.terms.cost,
                    terms=a.terms_dict(weights),
                )
                report.offers += offer is not None
            report.late_assignments = len(plan.late_assignments())

        at_risk: dict[int, tuple[str, datetime | None]] = {
            order_id: (reason, None) for order_id, reason in carrying.items()
        }
        behind = timedelta(minutes=settings.behind_minutes).total_seconds()
        offered = {a.job.id for a in plan.assignments} if matching else set()
        for risk in plan.risks:
            order_id = risk.job.id
            if risk.courier_id is not None and order_id not in offered:
                carried = snap.active.get(risk.courier_id, ())
                order = next((o for o in carried if o.pk == order_id), None)
                if (
                    settings.auto_reassign
                    and order is not None
                    and order.status == Status.ACCEPTED
                    and risk.predicted - risk.job.due > behind
                    and risk.elsewhere is not None
                    and risk.predicted - risk.elsewhere >= REASSIGN_GAIN_S
                ):
                    order_release(
                        order=order,
                        reason=_("falling behind"),
                        now=now,
                        mode=settings.mode,
                        terms={
                            "late_by_s": round(risk.predicted - risk.job.due),
                            "sooner_elsewhere_s": round(risk.predicted - risk.elsewhere),
                        },
                    )
                    report.reassigned += 1
            if risk.reason == "no_rider":
                reason = _("No rider can take it in time.")
            else:
                reason = _("Predicted %(m)d min late.") % {
                    "m": max(1, round((risk.predicted - risk.job.due) / 60))
                }
            at_risk.setdefault(order_id, (reason, _at(risk.predicted)))

        orders = Order.objects.in_bulk(list(at_risk))
        for order_id, (reason, predicted) in at_risk.items():
            order = orders.get(order_id)
            if order is None:
                continue
            flagged = risk_flag(
                order=order,
                reason=reason,
                promised_at=selectors.order_due(order, settings),
                predicted_at=predicted,
                now=now,
                mode=settings.mode,
            )
            report.at_risk += flagged is not None
        # Leg 2s: the nearest free rider of the admitted gender; none in time -> operators.
        _assigned, escalated = relay.relay_dispatch(campus=campus, now=now, mode=settings.mode)
        report.at_risk += escalated
        keep = set(at_risk) | set(
            OrderRisk.objects.filter(
                campus=campus,
                resolved_at__isnull=True,
                order__relay_legs__escalated_at__isnull=False,
                order__status=Status.AT_STATION,
            ).values_list("order_id", flat=True)
        )
        report.resolved = risks_resolve(campus=campus, keep=keep, now=now)
        report.total_ms = 1000 * (time.perf_counter() - began)
        if lease_owner is not None:
            DispatcherLease.objects.filter(campus=campus, owner=lease_owner).update(
                last_report=report.as_dict()
            )
    logger.debug(report.line())
    return report


# --- one dispatcher per campus -------------------------------------------------------------------


def lease_seconds(settings: CampusDispatchSettings) -> int:
    """Long enough to survive a slow cycle, short enough that a standby takes over soon after
    a crash."""
    return max(LEASE_MIN_SECONDS, 3 * settings.cycle_seconds)


def lease_acquire(*, campus: Campus, owner: str, now: datetime, seconds: int) -> bool:
    """Hold (or keep) the campus's dispatcher lease. Conditional UPDATE: it succeeds only for
    the current owner or once the lease has expired, so two processes never both win."""
    expires = now + timedelta(seconds=seconds)
    won = (
        DispatcherLease.objects.filter(campus=campus)
        .filter(Q(owner=owner) | Q(expires_at__lte=now))
        .update(
            acquired_at=Case(When(owner=owner, then=F("acquired_at")), default=Value(now)),
            cycles=Case(When(owner=owner, then=F("cycles")), default=Value(0)),
            owner=owner,
            expires_at=expires,
        )
    )
    if won:
        return True
    if DispatcherLease.objects.filter(campus=campus).exists():
        return False
    try:
        with transaction.atomic():
            DispatcherLease.objects.create(
                campus=campus, owner=owner, acquired_at=now, expires_at=expires
            )
    except IntegrityError:
        return False
    return True


def lease_renew(
    *, campus: Campus, owner: str, now: datetime, settings: CampusDispatchSettings
) -> bool:
    """Inside the cycle's transaction: extend the lease if it is still ours. On PostgreSQL the
    UPDATE also locks the row until the cycle commits, so a takeover waits for it."""
    return bool(
        DispatcherLease.objects.filter(campus=campus, owner=owner, expires_at__gt=now).update(
            expires_at=now + timedelta(seconds=lease_seconds(settings)),
            cycles=F("cycles") + 1,
            last_cycle_at=now,
        )
    )


def lease_release(*, campus: Campus, owner: str, now: datetime | None = None) -> bool:
    """Give the lease up (graceful stop): a standby takes over at its next attempt."""
    now = now or timezone.now()
    return bool(DispatcherLease.objects.filter(campus=campus, owner=owner).update(expires_at=now))
