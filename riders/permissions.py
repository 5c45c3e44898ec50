from django.contrib.auth.decorators import user_passes_test


def is_rider(user) -> bool:
    return user.is_authenticated and hasattr(user, "rider_profile")


rider_required = user_passes_test(is_rider)
