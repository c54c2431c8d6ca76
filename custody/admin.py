from django.contrib import admin

from .models import BankAccount, Custodian, Rail, Wallet


@admin.register(Rail)
class RailAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "kind",
        "status",
        "status_reason",
        "chain_id",
        "confirmations",
        "window_minutes",
        "currency",
        "calendars",
        "cutoff",
        "timezone",
    ]
    list_filter = ["kind", "status"]
    # Rail status changes come through the operations API with an audit
    # event (cycles issue); the admin shows them.
    readonly_fields = ["status", "status_reason"]


@admin.register(Custodian)
class CustodianAdmin(admin.ModelAdmin):
    list_display = ["name"]


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["operator", "rail", "address", "temperature", "custodian", "lead_time_minutes"]
    list_filter = ["operator", "rail", "temperature"]


@admin.register(BankAccount)
class BankAccountAdmin(admin.ModelAdmin):
    list_display = ["operator", "rail", "number", "bank"]
    list_filter = ["operator", "rail"]
