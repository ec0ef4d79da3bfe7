from django.apps import AppConfig


class TsappConfig(AppConfig):
    name = "tsapp"
    default_auto_field = "django.db.models.BigAutoField"
