from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = _("Tracking")

    def ready(self) -> None:
        from campus_errand.memo import forget_on_change
        from tracking.models import ProofSettings

        forget_on_change(ProofSettings)
