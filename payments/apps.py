from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"
    verbose_name = _("Payments")

    def ready(self) -> None:
        from campus_errand.memo import forget_on_change
        from payments import checks  # noqa: F401  (registers the deploy check)
        from payments.models import CampusMoneySettings

        forget_on_change(CampusMoneySettings)
