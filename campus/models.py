from django.contrib.gis.db import models
from django.contrib.gis.geos import Point
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class TrackingVisibleFrom(models.TextChoices):
    ACCEPTED = "accepted", _("From acceptance")
    PICKED_UP = "picked_up", _("From pickup")


class Campus(models.Model):
    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    center = models.PointField(_("centre"), srid=4326)
    bounds = models.PolygonField(_("bounds"), srid=4326)
    tracking_visible_from = models.CharField(
        _("customer sees the rider"),
        max_length=12,
        choices=TrackingVisibleFrom.choices,
        default=TrackingVisibleFrom.ACCEPTED,
        help_text=_("When the customer starts seeing the rider's position on the map."),
    )

    class Meta:
        verbose_name = _("campus")
        verbose_name_plural = _("campuses")

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return _localized(self.name, self.name_en)

    def contains(self, lng: float, lat: float) -> bool:
        return self.bounds.contains(Point(lng, lat, srid=4326))


class BuildingKind(models.TextChoices):
    DORM = "dorm", _("Dorm")
    CANTEEN = "canteen", _("Canteen")
    PARCEL_STATION = "parcel_station", _("Parcel station")
    TEACHING = "teaching", _("Teaching building")
    LIBRARY = "library", _("Library")
    GATE = "gate", _("Gate")
    SHOP = "shop", _("Shop")
    OTHER = "other", _("Other")


class GenderRule(models.TextChoices):
    ANY = "any", _("Anyone")
    MALE_ONLY = "male_only", _("Men only")
    FEMALE_ONLY = "female_only", _("Women only")


class Building(models.Model):
    campus = models.ForeignKey(Campus, on_delete=models.CASCADE, related_name="buildings")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=BuildingKind.choices)
    gender_rule = models.CharField(
        _("who may enter"), max_length=12, choices=GenderRule.choices, default=GenderRule.ANY
    )
    footprint = models.PolygonField(_("footprint"), srid=4326, null=True, blank=True)
    entrance = models.PointField(_("entrance"), srid=4326)

    class Meta:
        verbose_name = _("building")
        verbose_name_plural = _("buildings")
        ordering = ["campus", "code"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "code"], name="building_code_unique")
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return _localized(self.name, self.name_en)

    @property
    def lat(self) -> float:
        return self.entrance.y

    @property
    def lng(self) -> float:
        return self.entrance.x

    def admits(self, gender: str) -> bool:
        """Whether a rider of this gender may walk in (single-gender dorms)."""
        if self.gender_rule == GenderRule.MALE_ONLY:
            return gender == "male"
        if self.gender_rule == GenderRule.FEMALE_ONLY:
            return gender == "female"
        return True


class TransferStation(models.Model):
    campus = models.ForeignKey(Campus, on_delete=models.CASCADE, related_name="stations")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    location = models.PointField(_("location"), srid=4326)
    serves = models.ManyToManyField(
        Building, related_name="transfer_stations", blank=True, verbose_name=_("serves")
    )

    class Meta:
        verbose_name = _("transfer station")
        verbose_name_plural = _("transfer stations")
        constraints = [
            models.UniqueConstraint(fields=["campus", "code"], name="station_code_unique")
        ]

    def __str__(self) -> str:
        return _localized(self.name, self.name_en)


class PathEdge(models.Model):
    """One walkway or road segment of the campus graph; segments meet at shared end points."""

    class Kind(models.TextChoices):
        ROAD = "road", _("Road")
        WALKWAY = "walkway", _("Walkway")

    campus = models.ForeignKey(Campus, on_delete=models.CASCADE, related_name="paths")
    name = models.CharField(_("name"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.WALKWAY)
    geometry = models.LineStringField(_("geometry"), srid=4326)
    length_m = models.FloatField(_("length (m)"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("path")
        verbose_name_plural = _("paths")

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


def _localized(zh: str, en: str) -> str:
    lang = get_language() or "zh-hans"
    return en if lang.startswith("en") and en else zh
