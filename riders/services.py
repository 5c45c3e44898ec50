"""Every write to riders: onboarding decisions, going online and offline (shifts), credit,
complaints, scans."""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from orders import services as order_services
from orders.errors import NotAllowed, OrderError, StepNotReady
from orders.models import Order
from orders.photos import photo_process
from orders.status import FINAL, WITH_RIDER, Status
from riders import selectors
from riders.credit import CreditReport
from riders.models import (
    Complaint,
    ComplaintCategory,
    ComplaintStatus,
    RiderProfile,
    Shift,
    ShiftEnd,
)

logger = logging.getLogger("riders")

RIDER_GENDERS = ("male", "female")


class NoSuchOrder(OrderError):
    http_status = 404
    code = "not_found"
    default_message = gettext_lazy("No order matches this code.")


class AlreadyComplained(OrderError):
    http_status = 409
    code = "already_reported"
    default_message = gettext_lazy(
        "You have already reported a problem with this order: an operator is looking into it."
    )


# --- onboarding ------------------------------------------------------------------------------


@transaction.atomic
def rider_profile_create(*, user, campus, verified: bool = False) -> RiderProfile:
    """A rider account set up by the platform itself (demo data, operators' scripts)."""
    now = timezone.now()
    return RiderProfile.objects.create(
        user=user, campus=campus, verified=verified, approved_at=now if verified else None
    )


@transaction.atomic
def rider_apply(
    *,
    user,
    campus,
    real_name: str,
    student_number: str,
    student_card,
    gender: str,
    phone: str,
) -> RiderProfile:
    """A student applies (or applies again after a rejection). An operator decides in admin."""
    if gender not in RIDER_GENDERS:
        raise OrderError(_("Riders ride in the male or the female pool: choose one."))
    profile = RiderProfile.objects.select_for_update().filter(user=user).first()
    if profile is not None and profile.state != "rejected":
        raise NotAllowed(_("You have already applied."))
    # The item-photo checks (content, size, pixels; re-encoded without EXIF). The card is not an
    # order photo, so it does not count against the daily photo quota.
    card = photo_process(student_card).full
    if profile is None:
        profile = RiderProfile(user=user, campus=campus)
    elif profile.student_card:
        profile.student_card.delete(save=False)
    profile.campus = campus
    profile.real_name = real_name.strip()
    profile.student_number = student_number.strip()
    profile.student_card.save(card.name, card, save=False)
    profile.applied_at = timezone.now()
    profile.rejected_at = None
    profile.rejection_reason = ""
    profile.save()
    # The pool is the user's gender; accounts has no update service, and these two fields are
    # exactly what the application asks for.
    user.gender = gender
    user.phone = phone.strip()
    user.save(update_fields=["gender", "phone"])
    return profile


def _locked(profile: RiderProfile) -> RiderProfile:
    return RiderProfile.objects.select_for_update().select_related("user").get(pk=profile.pk)


@transaction.atomic
def rider_approve(*, profile: RiderProfile, operator) -> RiderProfile:
    profile = _locked(profile)
    if profile.state == "suspended":
        raise OrderError(_("This rider is suspended: reinstate them instead."))
    if profile.user.gender not in RIDER_GENDERS:
        raise OrderError(_("A rider needs a gender (male or female) for their pool."))
    profile.verified = True
    profile.approved_at = timezone.now()
    profile.rejected_at = None
    profile.rejection_reason = ""
    profile.decided_by = operator
    profile.save()
    return profile


@transaction.atomic
def rider_reject(*, profile: RiderProfile, operator, reason: str) -> RiderProfile:
    if not reason.strip():
        raise OrderError(_("Give the applicant a reason."))
    profile = _locked(profile)
    if profile.state in ("approved", "suspended"):
        raise OrderError(_("This rider was approved: suspend them instead."))
    _end_shift(profile, reason=ShiftEnd.OPERATOR)
    profile.online = False
    profile.online_since = None
    profile.verified = False
    profile.rejected_at = timezone.now()
    profile.rejection_reason = reason.strip()[:255]
    profile.decided_by = operator
    profile.save()
    user_id = profile.user_id
    transaction.on_commit(lambda: _forget_position(user_id))
    return profile


@transaction.atomic
def rider_suspend(*, profile: RiderProfile, operator, reason: str) -> RiderProfile:
    """Take the rider offline at once; they cannot go online or accept until reinstated.

    Orders they already carry stay theirs (an operator may reassign them): taking a parcel out
    of a rider's hands is a decision for a person, not for this function.
    """
    if not reason.strip():
        raise OrderError(_("Give the rider a reason."))
    profile = _locked(profile)
    if profile.verified and profile.approved_at is None:
        profile.approved_at = profile.created_at  # approved before decisions were recorded
    _end_shift(profile, reason=ShiftEnd.OPERATOR)
    profile.online = False
    profile.online_since = None
    profile.verified = False
    profile.suspended_at = timezone.now()
    profile.suspension_reason = reason.strip()[:255]
    profile.decided_by = operator
    profile.save()
    user_id = profile.user_id
    transaction.on_commit(lambda: _forget_position(user_id))
    return profile


@transaction.atomic
def rider_reinstate(*, profile: RiderProfile, operator) -> RiderProfile:
    profile = _locked(profile)
    if profile.state != "suspended":
        raise OrderError(_("Only a suspended rider can be reinstated."))
    profile.suspended_at = None
    profile.suspension_reason = ""
    profile.verified = profile.approved_at is not None
    profile.decided_by = operator
    profile.save()
    return profile


# --- online, offline, shifts -----------------------------------------------------------------


def _end_shift(profile: RiderProfile, now=None, *, reason: str = ShiftEnd.RIDER) -> None:
    Shift.objects.filter(rider_id=profile.user_id, ended_at__isnull=True).update(
        ended_at=now or timezone.now(), end_reason=reason
    )


def _forget_position(user_id: int) -> None:
    # Riders are never tracked offline: drop the live position as they leave.
    from tracking import live

    live.position_clear(user_id)


@transaction.atomic
def rider_set_online(*, user, online: bool, end_reason: str = ShiftEnd.RIDER) -> RiderProfile:
    """The online switch. `end_reason`: why the shift ends when going offline (the rider's own
    switch unless riders_auto_offline says otherwise)."""
    profile = RiderProfile.objects.select_for_update().filter(user=user).first()
    if profile is None:
        raise NotAllowed(_("Only riders can go online."))
    if online and profile.state == "suspended":
        raise NotAllowed(
            _("Your rider account is suspended: %(reason)s") % {"reason": profile.suspension_reason}
        )
    if online and not profile.verified:
        raise NotAllowed(_("Your rider account has not been approved yet."))
    if profile.online == online:
        # Already there; repair the shift log if it disagrees (rows made before shifts existed).
        if not online:
            _end_shift(profile, reason=end_reason)
        elif not Shift.objects.filter(rider=user, ended_at__isnull=True).exists():
            Shift.objects.create(rider=user, started_at=profile.online_since or timezone.now())
        return profile
    now = timezone.now()
    if online:
        # A shift left open by a crash ends where the new one starts.
        _end_shift(profile, now, reason=ShiftEnd.REOPENED)
        Shift.objects.create(rider=user, started_at=now)
    else:
        _end_shift(profile, now, reason=end_reason)
    profile.online = online
    profile.online_since = now if online else None
    profile.save(update_fields=["online", "online_since"])
    if not online:
        transaction.on_commit(lambda: _forget_position(user.pk))
    return profile


# --- credit ----------------------------------------------------------------------------------


@transaction.atomic
def rider_credit_recompute(*, user) -> CreditReport:
    """Compute the score (riders.credit) from the rider's record and store it on the profile."""
    report = selectors.rider_credit_report(user)
    RiderProfile.objects.filter(user=user).update(
        credit_score=report.score, credit_updated_at=timezone.now()
    )
    return report


def _credit_refresh(user_id: int) -> None:
    rider_credit_recompute(user=user_id)


# Transitions that change what riders.credit counts for a rider: a delivery (on time or not),
# an order given back (accepted -> open, counted against the rider who did it), and a
# cancellation after acceptance. Accepting changes the score only through later give-backs, so
# the busiest transition stays free of it (the nightly recompute_credit catches it up);
# completion only releases the money.
_CREDIT_TRANSITIONS = {Status.DELIVERED, Status.CANCELLED, Status.OPEN}


def rider_credit_on_order_transition(*, order: Order, old: str, new: str, actor) -> None:
    """Called by orders.services.order_transition for every status change, whatever door it
    came through (rider board, order page, proof flow, API, dispatch, admin): recompute the
    credit of the rider concerned once the transaction commits.

    On commit, so that a rolled-back delivery changes nothing and the order's row lock is not
    held for the recompute; robust, so that a failed recompute (logged) never turns a delivery
    that did happen into an error. Costs nothing for other transitions.
    """
    if new not in _CREDIT_TRANSITIONS:
        return
    if new == Status.OPEN:
        # Giving back: the rider field is already cleared; the credit counts the actor's own.
        rider_id = actor.pk if old == Status.ACCEPTED and actor is not None else None
    elif new == Status.CANCELLED:
        rider_id = order.rider_id if old in WITH_RIDER else None
    else:
        rider_id = order.rider_id
    if rider_id is not None:
        credit_refresh_on_commit(rider_id)


def credit_refresh_on_commit(user_id: int) -> None:
    """Recompute one rider's stored score after the current transaction commits."""
    transaction.on_commit(partial(_credit_refresh, user_id), robust=True)


@transaction.atomic
def complaint_file(
    *,
    rider,
    reason: str,
    filed_by=None,
    order: Order | None = None,
    category: str = ComplaintCategory.OTHER,
) -> Complaint:
    if not hasattr(rider, "rider_profile"):
        raise OrderError(_("Complaints are about riders."))
    if order is not None and order.rider_id != rider.pk:
        raise OrderError(_("This rider did not carry that order."))
    try:
        with transaction.atomic():
            return Complaint.objects.create(
                rider=rider, order=order, filed_by=filed_by, reason=reason, category=category
            )
    except IntegrityError:
        # one_open_complaint_per_order_and_filer: two tabs, or a double click.
        raise AlreadyComplained() from None


# How long after delivery (or a cancellation) a customer may still report the rider.
COMPLAINT_WINDOW_DAYS = 7


def complaint_window_open(order: Order, now: datetime | None = None) -> bool:
    """Whether the order's customer may report its rider now: the order has (or had) a rider,
    and it ended at most COMPLAINT_WINDOW_DAYS ago (or is still under way)."""
    if not order.rider_id or order.status not in WITH_RIDER | FINAL:
        return False
    if order.status not in FINAL:
        return True
    ended = order.delivered_at or order.updated_at
    return (now or timezone.now()) - ended <= timedelta(days=COMPLAINT_WINDOW_DAYS)


@transaction.atomic
def order_complaint_file(*, order: Order, customer, category: str, reason: str) -> Complaint:
    """The customer reports a problem with the order's rider (from the order page or the API).

    One open report per order and customer; an operator upholds (the rider's credit score drops)
    or dismisses it in the admin.
    """
    if order.customer_id != customer.pk:
        raise NotAllowed(_("Only the customer can report a problem with the rider."))
    if category not in ComplaintCategory.values:
        raise OrderError(_("Choose what went wrong."))
    reason = reason.strip()
    if category == ComplaintCategory.OTHER and not reason:
        raise OrderError(_("Tell us what happened."))
    if not order.rider_id or order.status not in WITH_RIDER | FINAL:
        raise StepNotReady(_("You can report the rider once a rider has taken your order."))
    if not complaint_window_open(order):
        raise StepNotReady(
            _("Problems with the rider can be reported up to %(days)d days after delivery.")
            % {"days": COMPLAINT_WINDOW_DAYS}
        )
    open_ = Complaint.objects.filter(order=order, filed_by=customer, status=ComplaintStatus.OPEN)
    if open_.exists():
        raise AlreadyComplained()
    return complaint_file(
        rider=order.rider, order=order, filed_by=customer, category=category, reason=reason[:1000]
    )


@transaction.atomic
def complaint_decide(*, complaint: Complaint, operator, upheld: bool) -> Complaint:
    complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
    complaint.status = ComplaintStatus.UPHELD if upheld else ComplaintStatus.DISMISSED
    complaint.decided_at = timezone.now()
    complaint.decided_by = operator
    complaint.save(update_fields=["status", "decided_at", "decided_by"])
    credit_refresh_on_commit(complaint.rider_id)
    return complaint


# --- idle riders go offline ------------------------------------------------------------------

# A rider online this long without a single position (and carrying nothing) is switched offline
# by `manage.py riders_auto_offline`: they left the app open in a pocket, or the phone died, and
# dispatch should not count on them.
IDLE_OFFLINE_MINUTES = 15


@dataclass
class IdleSweep:
    switched_off: list[str] = field(default_factory=list)  # usernames
    kept_carrying: list[str] = field(default_factory=list)


def riders_auto_offline(*, minutes: int = IDLE_OFFLINE_MINUTES, now=None) -> IdleSweep:
    """Switch off every online rider whose last position is older than `minutes` and who
    carries no order, through the rider's own offline switch (the shift closes, the live
    position is forgotten), with the shift's end reason "idle".

    Riders who carry orders stay online, with a warning logged for each: whether to take their
    orders away is dispatch's stalled-rider rule (dispatch.services.reassign_stalled releases
    what is not picked up yet and flags the rest to operators as at risk).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=minutes)
    sweep = IdleSweep()
    for idle in selectors.riders_idle(cutoff):
        if idle.carrying:
            logger.warning(
                "rider %s: no position since %s while carrying %d order(s); left online",
                idle.user.username,
                idle.last_seen.isoformat() if idle.last_seen else "going online",
                idle.carrying,
            )
            sweep.kept_carrying.append(idle.user.username)
        elif rider_idle_offline(user=idle.user, cutoff=cutoff):
            logger.info("rider %s switched offline: no position for %d min", idle.user, minutes)
            sweep.switched_off.append(idle.user.username)
    return sweep


@transaction.atomic
def rider_idle_offline(*, user, cutoff: datetime) -> bool:
    """One idle rider offline, if they still are idle once their profile is locked (a fix or
    an accepted order may have come in since the sweep read them)."""
    profile = RiderProfile.objects.select_for_update().filter(user=user, online=True).first()
    if profile is None:
        return False
    last_seen = selectors.rider_last_seen(profile)
    if last_seen is not None and last_seen >= cutoff:
        return False
    if Order.objects.filter(rider=user, status__in=WITH_RIDER).exists():
        return False
    rider_set_online(user=user, online=False, end_reason=ShiftEnd.IDLE)
    return True


# --- accept by scanning ----------------------------------------------------------------------

_SCAN_CODE = re.compile(r"(?:^|/rider/scan/)(\d{8,20})/?(?:[?#].*)?$")


def scan_code_number(code: str) -> str | None:
    """The order number in a scanned QR: the order's scan URL, or a bare order number (typed as
    printed, in groups: "261130 4729 1856")."""
    code = (code or "").strip()
    if re.fullmatch(r"[\d ]+", code):
        code = code.replace(" ", "")
    match = _SCAN_CODE.search(code)
    return match.group(1) if match else None


@dataclass(frozen=True)
class ScanResult:
    action: str  # "accepted" | "picked_up" | "none"
    order: Order


def rider_scan_order(*, user, code: str) -> ScanResult:
    """A rider scanned an order QR: accept it if it is open, confirm pickup if it is theirs.

    The same checks as grabbing from the board (orders.rules through order_accept): an
    unapproved, suspended or offline rider, or one of the wrong pool, is refused.
    """
    if not hasattr(user, "rider_profile"):
        raise NotAllowed(_("Only riders can accept orders."))
    number = scan_code_number(code)
    order = Order.objects.filter(number=number).first() if number else None
    if order is None:
        raise NoSuchOrder()
    if order.rider_id == user.pk:
        if order.status == Status.ACCEPTED:
            order = order_services.order_transition(order=order, to=Status.PICKED_UP, actor=user)
            return ScanResult("picked_up", order)
        return ScanResult("none", order)
    return ScanResult("accepted", order_services.order_accept(order=order, rider=user))
