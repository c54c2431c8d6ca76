"""Reads of the registry: who is eligible, and the snapshot the intake checks against."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Asset, Jurisdiction, Operator

HKD = "HKD"  # the valuation currency: its mark is always 1


def jurisdiction_problems(j: Jurisdiction) -> list[str]:
    problems = []
    fatf = j.fatf_member and not j.fatf_suspended
    if not fatf and not j.fsrb_bodies:
        suspended = " (membership suspended)" if j.fatf_member else ""
        problems.append(f"jurisdiction {j.code} is not a FATF{suspended} or FATF-style regional body member")
    if not j.iosco_aligned:
        problems.append(f"jurisdiction {j.code} is not recorded as having IOSCO-aligned regulation")
    if j.call_for_action:
        problems.append(f"jurisdiction {j.code} is on the FATF call-for-action list")
    if j.increased_monitoring:
        problems.append(f"jurisdiction {j.code} is under FATF increased monitoring")
    return problems


def operator_eligibility(operator: Operator) -> list[str]:
    """Why an overseas operator may not be a counterparty; empty when eligible."""
    if operator.is_home:
        return []
    problems = []
    if operator.status != Operator.Status.ACTIVE:
        problems.append(f"operator {operator.code} is {operator.status}")
    if not operator.sfc_approval or operator.approved_on is None:
        problems.append(f"operator {operator.code} has no SFC approval reference and date")
    problems.extend(jurisdiction_problems(operator.jurisdiction))
    return problems


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    id: int
    code: str
    is_home: bool
    status: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AssetInfo:
    id: int
    code: str
    scale: int


@dataclass(frozen=True, slots=True)
class Registry:
    home: OperatorInfo | None
    operators: dict[str, OperatorInfo]
    assets: dict[str, AssetInfo]


def registry_load() -> Registry:
    operators = {}
    home = None
    for op in Operator.objects.select_related("jurisdiction"):
        info = OperatorInfo(op.id, op.code, op.is_home, op.status, tuple(operator_eligibility(op)))
        operators[op.code] = info
        if op.is_home:
            home = info
    assets = {a.code: AssetInfo(a.id, a.code, a.scale) for a in Asset.objects.only("id", "code", "scale")}
    return Registry(home=home, operators=operators, assets=assets)
