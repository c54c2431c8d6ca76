"""Settlement's tables: trades and obligations, exposure and the cap, cycles and DVP."""

from .cycles import Batch, BatchItem, Cycle, CycleLock, Delivery, Leg
from .exposure import CapConfig, CycleRequest, ExposurePosition, ReserveCover
from .trades import ComplianceException, Obligation, Trade, TradeException, TradeIngest

__all__ = [
    "Batch",
    "BatchItem",
    "CapConfig",
    "ComplianceException",
    "Cycle",
    "CycleLock",
    "CycleRequest",
    "Delivery",
    "ExposurePosition",
    "Leg",
    "Obligation",
    "ReserveCover",
    "Trade",
    "TradeException",
    "TradeIngest",
]
