from datetime import timedelta

from django import template
from django.utils.translation import gettext as _

from riders.models import ComplaintStatus

register = template.Library()


@register.filter
def time_online(value: timedelta | None) -> str:
    """1 h 05 min, 12 min, or — for nothing at all."""
    if not value:
        return "—"
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    return _("%(m)d min") % {"m": minutes}


@register.inclusion_tag("riders/_order_complaint.html", takes_context=True)
def order_complaint(context, order):
    """The customer's "report a problem with the rider" block on the order page: the form while
    they may report (riders.services.complaint_window_open), and what became of their report.
    The complaint view renders the page again with its bound form (`complaint_form`)."""
    from riders import selectors, services
    from riders.forms import ComplaintForm

    user = context["request"].user
    if not user.is_authenticated or order.customer_id != user.pk or not order.rider_id:
        return {"show": False}
    complaint = selectors.order_complaint_get(order, user)
    may_file = services.complaint_window_open(order) and (
        complaint is None or complaint.status != ComplaintStatus.OPEN
    )
    form = context.get("complaint_form") or (ComplaintForm() if may_file else None)
    return {
        "show": complaint is not None or form is not None,
        "order": order,
        "complaint": complaint,
        "form": form,
        "open_by_error": "complaint_form" in context,
        "window_days": services.COMPLAINT_WINDOW_DAYS,
        "csrf_token": context.get("csrf_token"),
    }
