from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RiderProfile(models.Model):
    """A student courier. Their pool is their gender (User.gender)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rider_profile"
    )
    campus = models.ForeignKey("campus.Campus", on_delete=models.PROTECT, related_name="riders")
    verified = models.BooleanField(
        _("approved"), default=False, help_text=_("Set by an operator after checking the student.")
    )
    online = models.BooleanField(_("online"), default=False)
    online_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("rider")
        verbose_name_plural = _("riders")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(online=False) | models.Q(verified=True),
                name="rider_online_only_if_verified",
            )
        ]

    def __str__(self) -> str:
        return self.user.username

    @property
    def pool(self) -> str:
        return self.user.gender
