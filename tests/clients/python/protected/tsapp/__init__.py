"""A Django app for the protected-scenario suite: unmanaged models over the
scenario tables (see models.py). Configured in code by test_django_protected.py."""
