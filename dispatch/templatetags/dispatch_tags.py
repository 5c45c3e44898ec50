"""{% dispatch_offers %}: the rider's pending offers, for any page that shows a board."""

from django import template

from dispatch import selectors

register = template.Library()


@register.inclusion_tag("dispatch/_offers.html", takes_context=True)
def dispatch_offers(context):
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    profile = getattr(user, "rider_profile", None) if user is not None else None
    offers = selectors.rider_offers(user) if profile is not None and profile.online else []
    return {"offers": offers, "request": request, "csrf_token": context.get("csrf_token")}
