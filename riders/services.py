from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders.errors import NotAllowed
from riders.models import RiderProfile


@transaction.atomic
def rider_profile_create(*, user, campus, verified: bool = False) -> RiderProfile:
    return RiderProfile.objects.create(user=user, campus=campus, verified=verified)


@transaction.atomic
def rider_set_online(*, user, online: bool) -> RiderProfile:
    profile = RiderProfile.objects.select_for_update().filter(user=user).first()
    if profile is None:
        raise NotAllowed(_("Only riders can go online."))
    if online and not profile.verified:
        raise NotAllowed(_("Your rider account has not been approved yet."))
    if profile.online != online:
        profile.online = online
        profile.online_since = timezone.now() if online else None
        profile.save(update_fields=["online", "online_since"])
    return profile
