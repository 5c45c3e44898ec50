from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.fields import EncryptedTextField


class Gender(models.TextChoices):
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")
    UNDISCLOSED = "undisclosed", _("Prefer not to say")


def mask_phone(phone: str) -> str:
    """138****1234: enough for a person to recognise their own number, useless to anyone else."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


class User(AbstractUser):
    gender = models.CharField(
        _("gender"), max_length=12, choices=Gender.choices, default=Gender.UNDISCLOSED
    )
    # Encrypted at rest; never shown unmasked to anyone but its owner.
    phone = EncryptedTextField(_("phone"), blank=True, default="")

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def is_operator(self) -> bool:
        return self.is_staff

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone) if self.phone else ""

    def phone_for(self, viewer: "User") -> str:
        return self.phone if viewer.pk == self.pk else self.masked_phone

    @property
    def public_name(self) -> str:
        """What the other side of an order sees: a family-name initial, never the full name."""
        base = self.first_name or self.last_name or self.username
        return f"{base[:1]}**"


class Address(models.Model):
    """A saved drop-off place: a campus building, a room, a note for the rider."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(_("name"), max_length=30, help_text=_("For example: Dorm, Lab"))
    building = models.ForeignKey(
        "campus.Building", on_delete=models.CASCADE, related_name="+", verbose_name=_("building")
    )
    room = models.CharField(_("room"), max_length=40, blank=True)
    note = models.CharField(_("note for the rider"), max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        ordering = ["label", "pk"]

    def __str__(self) -> str:
        return f"{self.label}: {self.building} {self.room}".strip()

    @property
    def detail(self) -> str:
        """The order's drop-off detail made from this address."""
        return " · ".join(part for part in (self.room, self.note) if part)[:120]
