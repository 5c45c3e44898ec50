import re

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Gender
from campus.models import Campus
from riders.models import ComplaintCategory

PHONE = re.compile(r"^\+?[\d\- ]{7,20}$")


class RiderApplicationForm(forms.Form):
    campus = forms.ModelChoiceField(label=_("Campus"), queryset=Campus.objects.order_by("pk"))
    real_name = forms.CharField(
        label=_("Real name"),
        max_length=60,
        help_text=_("As on your student card. Only operators see it."),
    )
    student_number = forms.CharField(label=_("Student number"), max_length=30)
    student_card = forms.ImageField(
        label=_("Photo of your student card"),
        help_text=_("JPEG, PNG or WebP. Only operators see it, to check your application."),
    )
    gender = forms.ChoiceField(
        label=_("Gender"),
        choices=[(Gender.MALE, Gender.MALE.label), (Gender.FEMALE, Gender.FEMALE.label)],
        help_text=_(
            "Riders are grouped by gender: you will see orders for your pool, and only "
            "buildings you may enter."
        ),
    )
    phone = forms.CharField(
        label=_("Phone"),
        max_length=20,
        help_text=_("For operators only; customers never see your number."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        campuses = self.fields["campus"].queryset
        if campuses.count() == 1:
            self.fields["campus"].initial = campuses.first()
            self.fields["campus"].widget = forms.HiddenInput()
        self.fields["student_card"].widget.attrs.update({"accept": "image/*"})
        self.fields["phone"].widget.attrs.update({"inputmode": "tel", "autocomplete": "tel"})

    def clean_student_number(self):
        value = self.cleaned_data["student_number"].strip()
        if not re.fullmatch(r"[A-Za-z0-9\-]{4,30}", value):
            raise forms.ValidationError(_("Letters and digits only, as on your card."))
        return value

    def clean_phone(self):
        value = self.cleaned_data["phone"].strip()
        if not PHONE.match(value):
            raise forms.ValidationError(_("Enter a phone number."))
        return value


class ReasonForm(forms.Form):
    """The admin actions' intermediate step: the reason the rider will read."""

    reason = forms.CharField(
        label=_("Reason (shown to the rider)"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


class ComplaintForm(forms.Form):
    """The customer reports a problem with the order's rider (order page)."""

    category = forms.ChoiceField(
        label=_("What went wrong?"), choices=ComplaintCategory.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("What happened"),
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("An operator reads it and may lower the rider's credit score."),
    )

    def clean(self):
        data = super().clean()
        if data.get("category") == ComplaintCategory.OTHER and not data.get("reason", "").strip():
            self.add_error("reason", _("Tell us what happened."))
        return data
