"""Every write to riders: onboarding decisions, going online and offline (shifts), credit, scans."""

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from orders import services as order_services
from orders.errors import NotAllowed, OrderError
from orders.models import Order
from orders.photos import photo_process
from orders.status import Status
from riders import selectors
from riders.credit import CreditReport
from riders.models import Complaint, ComplaintStatus, RiderProfile, Shift

RIDER_GENDERS = ("male", "female")


class NoSuchOrder(OrderError):
    http_status = 404
    code = "not_found"
    default_message = gettext_lazy("No order matches this code.")


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
    _end_shift(profile)
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
    _end_shift(profile)
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


def _end_shift(profile: RiderProfile, now=None) -> None:
    Shift.objects.filter(rider_id=profile.user_id, ended_at__isnull=True).update(
        ended_at=now or timezone.now()
    )


def _forget_position(user_id: int) -> None:
    # Riders are never tracked offline: drop the live position as they leave.
    from tracking import live

    live.position_clear(user_id)


@transaction.atomic
def rider_set_online(*, user, online: bool) -> RiderProfile:
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
            _end_shift(profile)
        elif not Shift.objects.filter(rider=user, ended_at__isnull=True).exists():
            Shift.objects.create(rider=user, started_at=profile.online_since or timezone.now())
        return profile
    now = timezone.now()
    if online:
        _end_shift(profile, now)  # a shift left open by a crash ends where the new one starts
        Shift.objects.create(rider=user, started_at=now)
    else:
        _end_shift(profile, now)
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


@transaction.atomic
def complaint_file(*, rider, reason: str, filed_by=None, order: Order | None = None) -> Complaint:
    if not hasattr(rider, "rider_profile"):
        raise OrderError(_("Complaints are about riders."))
    if order is not None and order.rider_id != rider.pk:
        raise OrderError(_("This rider did not carry that order."))
    return Complaint.objects.create(rider=rider, order=order, filed_by=filed_by, reason=reason)


@transaction.atomic
def complaint_decide(*, complaint: Complaint, operator, upheld: bool) -> Complaint:
    complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
    complaint.status = ComplaintStatus.UPHELD if upheld else ComplaintStatus.DISMISSED
    complaint.decided_at = timezone.now()
    complaint.decided_by = operator
    complaint.save(update_fields=["status", "decided_at", "decided_by"])
    rider = complaint.rider
    transaction.on_commit(lambda: rider_credit_recompute(user=rider))
    return complaint


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
