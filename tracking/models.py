from django.conf import settings
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _


class TrackPoint(models.Model):
    """A rider's accepted GPS fix, kept for dispute replays until the retention period ends."""

    rider = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="track_points"
    )
    point = models.PointField(srid=4326)
    accuracy_m = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField(help_text=_("The phone's own timestamp."))
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("track point")
        verbose_name_plural = _("track points")
        indexes = [models.Index(fields=["rider", "recorded_at"])]
        ordering = ["rider", "recorded_at"]

    def __str__(self) -> str:
        return f"{self.rider_id}@{self.recorded_at:%H:%M:%S}"
