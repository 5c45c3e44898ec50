from django import forms
from django.utils.translation import gettext_lazy as _

from tracking.models import TrackAccessLog


class ChatForm(forms.Form):
    body = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off", "maxlength": 500}),
    )
    quick = forms.CharField(required=False, max_length=24, widget=forms.HiddenInput)


class ProofStepForm(forms.Form):
    """The rider's step with its proof: the code, a photo, or both."""

    to = forms.CharField(max_length=16, widget=forms.HiddenInput)
    code = forms.CharField(
        label=_("Code"),
        required=False,
        max_length=24,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    photo = forms.FileField(
        label=_("Photo"),
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp", "capture": "environment"}
        ),
    )
    next = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)


class ReplayReasonForm(forms.Form):
    """Why an operator opens a rider's recorded track: asked every time, and logged."""

    reason = forms.ChoiceField(label=_("Reason"), choices=TrackAccessLog.Reason.choices)
    note = forms.CharField(
        label=_("Details (ticket, complaint, case number)"),
        min_length=5,
        max_length=300,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
