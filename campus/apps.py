from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampusConfig(AppConfig):
    name = "campus"
    verbose_name = _("Campus")

    def ready(self) -> None:
        from campus.models import Building, Campus, PathEdge
        from campus_errand.memo import forget_on_change

        forget_on_change(Campus, Building, PathEdge)
