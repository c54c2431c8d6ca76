"""Settlement's tables: trades and obligations, exposure and the cap,
prefunding, cycles and DVP."""

from .cycles import Batch, BatchItem, Cycle, CycleLock, Delivery, Leg
from .exposure import CapConfig, CycleRequest, ExposurePosition, ExposureReservation, ReserveCover
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
    "Batch",
    "BatchItem",
    "CapConfig",
    "ComplianceException",
    "CustodianAttestation",
    "Cycle",
    "CycleLock",
    "CycleRequest",
    "Delivery",
    "ExposurePosition",
    "ExposureReservation",
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
