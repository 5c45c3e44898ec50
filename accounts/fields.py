from django.db import models

from accounts import crypto


class EncryptedTextField(models.TextField):
    """A text value stored Fernet-encrypted; the empty string stays empty (nothing to hide)."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
