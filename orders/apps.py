from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        from campus_errand.memo import forget_on_change
        from orders.models import ErrandKindSetting, PricingRule

        forget_on_change(PricingRule, ErrandKindSetting)
