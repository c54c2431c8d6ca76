"""Settlement's tables: trades and obligations, exposure and the cap,
prefunding, cycles and DVP."""

from .cycles import (
    HOME,
    Batch,
    BatchItem,
    CarriedCredit,
    CounterpartyExclusion,
    Cycle,
    CycleLock,
    Delivery,
    FailReason,
    Leg,
)
from .exposure import CapConfig, CycleRequest, ExposurePosition, ReserveCover
from .prefunding import (
    CustodianAttestation,
    FundingEvent,
    HoldEvent,
    OpenOrdersSnapshot,
    PrefundingBalance,
    PrefundingCover,
    PrefundingFreeze,
    PrefundingHold,
    PrefundingSettlement,
)
from .trades import ComplianceException, Obligation, Trade, TradeException, TradeIngest

__all__ = [
    "HOME",
    "Batch",
    "BatchItem",
    "CapConfig",
    "CarriedCredit",
    "ComplianceException",
    "CounterpartyExclusion",
    "CustodianAttestation",
    "Cycle",
    "CycleLock",
    "CycleRequest",
    "Delivery",
    "ExposurePosition",
    "FailReason",
    "FundingEvent",
    "HoldEvent",
    "Leg",
    "Obligation",
    "OpenOrdersSnapshot",
    "PrefundingBalance",
    "PrefundingCover",
    "PrefundingFreeze",
    "PrefundingHold",
    "PrefundingSettlement",
    "ReserveCover",
    "Trade",
    "TradeException",
    "TradeIngest",
]
