from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DispatchConfig(AppConfig):
    name = "dispatch"
    verbose_name = _("Dispatch")

    def ready(self):
        from campus_errand.memo import forget_on_change
        from dispatch.models import CampusDispatchSettings

        forget_on_change(CampusDispatchSettings)
