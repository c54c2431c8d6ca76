from django.contrib import admin

from .models import ReserveEntry, ReserveFund
from .selectors import reserve_available_hkd, reserve_balance_hkd


@admin.register(ReserveFund)
class ReserveFundAdmin(admin.ModelAdmin):
    list_display = ["name", "trustee", "deed", "bank_account", "currency", "balance", "available"]

    @admin.display(description="balance (HKD)")
    def balance(self, obj):
        return reserve_balance_hkd()

    @admin.display(description="available (HKD)")
    def available(self, obj):
        return reserve_available_hkd()


@admin.register(ReserveEntry)
class ReserveEntryAdmin(admin.ModelAdmin):
    """The ledger is append-only: entries are written by services, never edited."""

    list_display = ["id", "created_at", "kind", "amount_hkd", "reference", "actor"]
    list_filter = ["kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
