"""Forms of dispatch's rider pages."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

_CODE_IN_URL = re.compile(r"[?&]code=(\d+)")


class HandoffCodeForm(forms.Form):
    """The other rider's hand-over code: typed, or read from their QR (which holds the hand-over
    page's address with ``?code=``, so that a phone's own camera app lands there too)."""

    code = forms.CharField(
        label=_("The other rider's code"),
        max_length=300,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "off",
                "placeholder": "000000",
                "maxlength": "300",
            }
        ),
    )

    def clean_code(self) -> str:
        raw = self.cleaned_data["code"].strip()
        if match := _CODE_IN_URL.search(raw):
            raw = match.group(1)
        code = "".join(raw.split())
        if not re.fullmatch(r"\d{6}", code):
            raise forms.ValidationError(_("Enter the other rider's 6-digit code."))
        return code
