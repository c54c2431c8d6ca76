"""Shapes for the OpenAPI schema and the obligation list.

The trade intake validates items itself (per-item codes, JSON numbers in
decimal fields, speed at 10,000 items); these serializers describe it.
"""

from rest_framework import serializers

from controls.money import at_scale
from settlement.models import Batch, FailReason, Leg, Obligation


class SideSerializer(serializers.Serializer):
    operator = serializers.CharField(help_text="operator code, e.g. HK1")
    account = serializers.CharField(help_text="client reference on that operator")
    order_id = serializers.CharField(required=False, help_text="reserved for prefunding holds")


class TradeInSerializer(serializers.Serializer):
    trade_id = serializers.CharField(max_length=64)
    base_asset = serializers.CharField()
    quote_asset = serializers.CharField()
    price = serializers.CharField(help_text="decimal string")
    quantity = serializers.CharField(help_text="decimal string, at most the base asset's scale")
    buy = SideSerializer()
    sell = SideSerializer()
    executed_at = serializers.DateTimeField()


class TradesInSerializer(serializers.Serializer):
    trades = TradeInSerializer(many=True)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    trade_id = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class CounterpartyExposureSerializer(serializers.Serializer):
    operator = serializers.CharField()
    exposure_hkd = serializers.CharField(help_text="at replacement prices, mark x (1 + haircut): what the cap checks")
    exposure_at_marks_hkd = serializers.CharField(help_text="the same receivables at the plain marks")
    limit_hkd = serializers.CharField(allow_null=True)
    open_obligations = serializers.IntegerField()
    eligible = serializers.BooleanField()


class ExposureSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    method = serializers.ChoiceField(["gross", "net"])
    state = serializers.ChoiceField(["normal", "warning", "settling", "halted"])
    reasons = serializers.ListField(child=serializers.CharField())
    total_hkd = serializers.CharField(help_text="at replacement prices, mark x (1 + haircut): what the cap checks")
    total_at_marks_hkd = serializers.CharField(help_text="the same receivables at the plain marks")
    stale_marks = serializers.ListField(child=serializers.CharField(), help_text="assets owed with a stale mark")
    cap_hkd = serializers.CharField(allow_null=True)
    effective_cap_hkd = serializers.CharField()
    reserve_available_hkd = serializers.CharField()
    utilisation = serializers.CharField(allow_null=True)
    by_counterparty = CounterpartyExposureSerializer(many=True)


class TradesOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectionSerializer(many=True)
    exposure = ExposureSerializer()


class ExposureCheckInSerializer(serializers.Serializer):
    counterparty = serializers.CharField()
    asset = serializers.CharField(help_text="the asset home would receive")
    amount = serializers.CharField(help_text="decimal string")
    account = serializers.CharField(required=False, help_text="home client reference: checks shared-book opt-in")
    reserve = serializers.BooleanField(
        required=False,
        help_text="true: when allowed, hold the amount under the cap until a trade names the reservation_id or it expires",
    )


class ExposureCheckOutSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    exposure_hkd = serializers.CharField()
    added_hkd = serializers.CharField(allow_null=True)
    headroom_hkd = serializers.CharField()
    state = serializers.CharField()
    reservation_id = serializers.CharField(required=False, help_text="with reserve: true, when allowed")
    expires_at = serializers.DateTimeField(required=False, help_text="with reserve: true, when allowed")


class MarkInSerializer(serializers.Serializer):
    asset = serializers.CharField()
    price_hkd = serializers.CharField()
    as_of = serializers.DateTimeField(required=False)
    source = serializers.CharField(required=False)  # type: ignore[assignment]  # a field named like Field.source


class MarksInSerializer(serializers.Serializer):
    marks = MarkInSerializer(many=True)


class MarkOutSerializer(serializers.Serializer):
    asset = serializers.CharField()
    price_hkd = serializers.CharField(allow_null=True)
    as_of = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source
    stale = serializers.BooleanField()


class MarksOutSerializer(serializers.Serializer):
    marks = MarkOutSerializer(many=True)


class MarkPostedSerializer(serializers.Serializer):
    asset = serializers.CharField()
    price_hkd = serializers.CharField()
    as_of = serializers.DateTimeField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.source


class MarksPostedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    marks = MarkPostedSerializer(many=True)


class ObligationSerializer(serializers.ModelSerializer):
    trade_id = serializers.CharField(source="trade.trade_id")
    counterparty = serializers.CharField(source="counterparty.code")
    debtor = serializers.CharField(source="debtor.code")
    creditor = serializers.CharField(source="creditor.code")
    asset = serializers.CharField(source="asset.code")
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Obligation
        fields = [
            "id",
            "trade_id",
            "counterparty",
            "debtor",
            "creditor",
            "direction",
            "asset",
            "amount",
            "status",
            "fail_count",
            "created_at",
            "settled_at",
        ]

    def get_amount(self, obligation: Obligation) -> str:
        # Quantised to the asset's scale, so "1.5" BTC reads "1.50000000".
        return format(at_scale(obligation.amount, obligation.asset.scale), "f")


class LegSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.CharField()
    direction = serializers.ChoiceField(["inbound", "outbound"])
    amount = serializers.CharField()
    status = serializers.ChoiceField(Leg.Status.values)
    deadline = serializers.DateTimeField()
    value_date = serializers.DateField()
    lead_time_minutes = serializers.IntegerField()
    instructed_at = serializers.DateTimeField(allow_null=True)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    evidence = serializers.JSONField(allow_null=True)
    failed_by = serializers.CharField(allow_null=True, help_text='a failed leg: "home" or the counterparty\'s code')
    fail_reason = serializers.ChoiceField(FailReason.values, allow_null=True)


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    counterparty = serializers.CharField()
    dvp_policy = serializers.ChoiceField(["receive_first", "escrow"])
    escrow_custodian = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(["open", "settled", "failed"])
    settled_by_netting = serializers.BooleanField()
    waiting_reason = serializers.CharField(allow_null=True)
    failed_by = serializers.CharField(allow_null=True, help_text='a failed batch: "home" or the counterparty\'s code')
    fail_reason = serializers.ChoiceField(FailReason.values, allow_null=True)
    fail_detail = serializers.CharField(allow_null=True, help_text="every failed leg with who failed it and why")
    obligations = serializers.IntegerField()
    settled_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    held = serializers.BooleanField()
    held_at = serializers.DateTimeField(allow_null=True)
    hold_reason = serializers.CharField(allow_null=True)
    affirmation = serializers.ChoiceField(Batch.Affirmation.values)
    affirmation_due = serializers.DateTimeField(allow_null=True)
    affirmed_at = serializers.DateTimeField(allow_null=True)
    dispute_reason = serializers.CharField(allow_null=True)
    credits_netted = serializers.ListField(
        child=serializers.DictField(), help_text="carried credits of failed batches netted into this one"
    )
    legs = LegSerializer(many=True, required=False)


class CycleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(["intraday", "eod"])
    as_of = serializers.DateTimeField()
    status = serializers.ChoiceField(["running", "done"])
    requested_by = serializers.CharField(allow_null=True, help_text="null for an overseas operator's key")
    obligations_taken = serializers.IntegerField(help_text="an overseas operator's key: its own obligations only")
    obligations_deferred = serializers.IntegerField(allow_null=True, help_text="null for an overseas operator's key")
    finished_at = serializers.DateTimeField(allow_null=True)
    batches = BatchSerializer(many=True)


class CycleRunSerializer(CycleSerializer):
    """A cycle run on request: ``replayed`` when that (kind, as_of) cycle
    had run already and nothing new was run (200 instead of 201)."""

    replayed = serializers.BooleanField()


class DeliveryOutSerializer(serializers.Serializer):
    leg = serializers.IntegerField()
    tx_hash = serializers.CharField(allow_null=True)
    bank_reference = serializers.CharField(allow_null=True)
    reported_at = serializers.DateTimeField()
