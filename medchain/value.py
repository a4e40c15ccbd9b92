"""The seed paper's value models (section 4): efficiency gain and data-management cost.

Efficiency (paper 4.1): a data-sharing process has steps whose efficiency rises by ``alpha_i``
(0..1) each once the chain is in place; the overall gain is

    eta = 1 - prod(1 - alpha_i)

Cost (paper 4.2): the yearly cost of data management ``C = C1 + C2 + C3`` (technology, labour,
risk losses) becomes

    C' = C1 (1 + beta) + C2 (1 - gamma) + C3 (1 - delta)

with ``beta`` the technology premium, ``gamma`` the labour saving and ``delta`` the reduction of
risk losses.

Everything here is computed from its inputs. The paper's own inputs are :data:`PAPER_EFFICIENCY`
and :data:`PAPER_COST`; the figures it prints are kept apart (:data:`PAPER_PRINTED_ETA` and
friends) because one of them does not follow from its inputs: the paper prints eta = 98.1 %
while 1 - 0.4 x 0.15 x 0.3 x 0.5 = 99.1 %. A report shows both, with :data:`PAPER_ETA_REMARK`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from medchain.errors import MedChainError


class ValueModelError(MedChainError, ValueError):
    """An input to a value model is outside the model's domain (the message says which and why)."""


def _finite(value: object, what: str) -> float:
    """``value`` as a float, or a ValueModelError naming ``what`` when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueModelError(f"{what} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueModelError(f"{what} is {number}; it must be a finite number")
    return number


# ─── Efficiency (paper 4.1) ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class EfficiencyInputs:
    """Per-step efficiency gain coefficients of a process.

    Attributes:
        alphas: ``alpha_i`` for each step, each in [0, 1] (0: the step is no faster, 1: it
            disappears). At least one.
        steps: The steps' names, in the same order; empty when unnamed.

    Raises:
        ValueModelError: no step, an alpha outside [0, 1] or not a finite number, or names
            that do not match the alphas one for one.
    """

    alphas: tuple[float, ...]
    steps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        alphas = tuple(_finite(a, "an efficiency coefficient alpha") for a in self.alphas)
        if not alphas:
            raise ValueModelError("the efficiency model needs at least one process step (no alphas given)")
        for i, alpha in enumerate(alphas):
            if not 0.0 <= alpha <= 1.0:
                raise ValueModelError(
                    f"alpha for step {self._label(i)} is {alpha}; each alpha must be between 0 and 1"
                )
        if self.steps and len(self.steps) != len(alphas):
            raise ValueModelError(
                f"{len(self.steps)} step names for {len(alphas)} alphas; give one name per alpha or none"
            )
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "steps", tuple(self.steps))

    def _label(self, index: int) -> str:
        if self.steps and index < len(self.steps):
            return f"{index + 1} ({self.steps[index]})"
        return str(index + 1)


@dataclass(frozen=True)
class EfficiencyResult:
    """The efficiency model's answer.

    Attributes:
        inputs: What it was computed from.
        remaining: ``prod(1 - alpha_i)``, the share of the original effort left.
        eta: ``1 - remaining``, the overall efficiency gain (0..1).
    """

    inputs: EfficiencyInputs
    remaining: float
    eta: float


def efficiency_gain(inputs: EfficiencyInputs) -> EfficiencyResult:
    """Computes eta = 1 - prod(1 - alpha_i) (paper 4.1).

    Args:
        inputs: The per-step coefficients (validated when they were built).

    Returns:
        The remaining share and eta.
    """
    remaining = math.prod(1.0 - alpha for alpha in inputs.alphas)
    return EfficiencyResult(inputs, remaining, 1.0 - remaining)


@dataclass(frozen=True)
class StepTiming:
    """How long one process step took before and after, in any one unit for both.

    Attributes:
        name: The step.
        before: Its duration without the chain (greater than 0).
        after: Its duration with the chain (0 up to ``before``).
    """

    name: str
    before: float
    after: float


@dataclass(frozen=True)
class MeasuredEfficiency:
    """Eta from measured step times, beside the plain end-to-end saving.

    Attributes:
        timings: The measurements.
        efficiency: The paper's model over ``alpha_i = 1 - after_i / before_i``.
        end_to_end_saving: ``1 - sum(after) / sum(before)``: how much shorter the whole process
            became. It is not eta: eta multiplies the steps' remaining shares, as if each step's
            gain compounded on the others', so it is always at least as large as the largest
            single alpha, and usually far above the end-to-end saving.
    """

    timings: tuple[StepTiming, ...]
    efficiency: EfficiencyResult
    end_to_end_saving: float


def efficiency_from_timings(timings: Sequence[StepTiming]) -> MeasuredEfficiency:
    """Computes eta from measured per-step durations: ``alpha_i = 1 - after_i / before_i``.

    Args:
        timings: One entry per process step.

    Returns:
        The model's result and the end-to-end saving for comparison.

    Raises:
        ValueModelError: no steps; a duration that is not a finite number; ``before`` not above
            0; ``after`` below 0 or above ``before`` (a step that got slower is outside the
            model, whose alphas run from 0 to 1).
    """
    steps = tuple(timings)
    if not steps:
        raise ValueModelError("no step timings given; the efficiency model needs at least one step")
    alphas: list[float] = []
    for step in steps:
        before = _finite(step.before, f"the 'before' duration of step {step.name!r}")
        after = _finite(step.after, f"the 'after' duration of step {step.name!r}")
        if before <= 0:
            raise ValueModelError(f"step {step.name!r}: 'before' is {before}; it must be above 0")
        if after < 0:
            raise ValueModelError(f"step {step.name!r}: 'after' is {after}; it cannot be negative")
        if after > before:
            raise ValueModelError(
                f"step {step.name!r} got slower ({before} before, {after} after); the efficiency "
                "model only covers steps that got faster or stayed the same"
            )
        alphas.append(1.0 - after / before)
    inputs = EfficiencyInputs(tuple(alphas), tuple(step.name for step in steps))
    saving = 1.0 - sum(step.after for step in steps) / sum(step.before for step in steps)
    return MeasuredEfficiency(steps, efficiency_gain(inputs), saving)


# ─── Cost (paper 4.2) ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class CostInputs:
    """Yearly data-management cost before the chain, and how the chain changes each part.

    All three costs are in one unit (the paper uses 10,000 yuan a year).

    Attributes:
        technology: C1, technology spending (0 or more).
        labour: C2, labour and operations (0 or more).
        risk: C3, losses from leaks and disputes (0 or more).
        premium: beta, the extra technology spending the chain brings (0 or more).
        labour_saving: gamma, the share of labour saved (0..1).
        risk_reduction: delta, the share of risk losses avoided (0..1).

    Raises:
        ValueModelError: a negative or non-finite cost, all costs zero, or a rate out of range.
    """

    technology: float
    labour: float
    risk: float
    premium: float
    labour_saving: float
    risk_reduction: float

    def __post_init__(self) -> None:
        for name, label in (("technology", "C1"), ("labour", "C2"), ("risk", "C3")):
            value = _finite(getattr(self, name), f"the {name} cost {label}")
            if value < 0:
                raise ValueModelError(f"the {name} cost {label} is {value}; a cost cannot be negative")
            object.__setattr__(self, name, value)
        if self.technology + self.labour + self.risk == 0:
            raise ValueModelError("all three costs are 0; the cost model needs a cost to save on")
        premium = _finite(self.premium, "the technology premium beta")
        if premium < 0:
            raise ValueModelError(f"the technology premium beta is {premium}; it cannot be negative")
        object.__setattr__(self, "premium", premium)
        for name, label in (("labour_saving", "gamma"), ("risk_reduction", "delta")):
            rate = _finite(getattr(self, name), f"the rate {label}")
            if not 0.0 <= rate <= 1.0:
                raise ValueModelError(f"{name} ({label}) is {rate}; it must be between 0 and 1")
            object.__setattr__(self, name, rate)


@dataclass(frozen=True)
class CostResult:
    """The cost model's answer, in the inputs' unit.

    Attributes:
        inputs: What it was computed from.
        before: C = C1 + C2 + C3.
        technology_after: C1 (1 + beta).
        labour_after: C2 (1 - gamma).
        risk_after: C3 (1 - delta).
        after: C', the sum of the three.
        saving: C - C' (negative if the premium outweighs the savings).
        saving_rate: (C - C') / C.
    """

    inputs: CostInputs
    before: float
    technology_after: float
    labour_after: float
    risk_after: float
    after: float
    saving: float
    saving_rate: float


def cost_model(inputs: CostInputs) -> CostResult:
    """Computes C' = C1 (1 + beta) + C2 (1 - gamma) + C3 (1 - delta) (paper 4.2).

    Args:
        inputs: The costs and rates (validated when they were built).

    Returns:
        Each part after, the total before and after, and the saving.
    """
    before = inputs.technology + inputs.labour + inputs.risk
    technology = inputs.technology * (1.0 + inputs.premium)
    labour = inputs.labour * (1.0 - inputs.labour_saving)
    risk = inputs.risk * (1.0 - inputs.risk_reduction)
    after = technology + labour + risk
    return CostResult(
        inputs, before, technology, labour, risk, after, before - after, (before - after) / before
    )


# ─── The paper's inputs and printed figures ─────────────────────────────────────────────────

PAPER_EFFICIENCY = EfficiencyInputs(
    alphas=(0.6, 0.85, 0.7, 0.5),
    steps=("data request", "review and authorisation", "transfer and verification", "use and feedback"),
)
"""The paper's section 4.1 coefficients for its four data-sharing steps."""

PAPER_COST = CostInputs(
    technology=200.0, labour=350.0, risk=180.0, premium=0.3, labour_saving=0.45, risk_reduction=0.98
)
"""The paper's section 4.2 inputs: averages of 120 tertiary hospitals, in 10,000 yuan a year."""

PAPER_COST_UNIT = "10,000 CNY / year"
"""The unit of :data:`PAPER_COST` and of the cost figures printed in the paper."""

PAPER_PRINTED_ETA = 0.981
"""Eta as the paper prints it (98.1 %). It does not follow from the paper's own inputs:
``1 - 0.4 x 0.15 x 0.3 x 0.5 = 1 - 0.009 = 0.991`` (99.1 %), which is what
``efficiency_gain(PAPER_EFFICIENCY)`` returns. Kept only so that a report can show the printed
figure beside the computed one (with :data:`PAPER_ETA_REMARK`); never use it in a computation."""

PAPER_ETA_REMARK = (
    "The paper prints eta = 98.1 %, but its own inputs give 1 - 0.4 x 0.15 x 0.3 x 0.5 = 99.1 %; "
    "the value computed from the inputs is used."
)
"""One line for a report to print beside the two eta figures."""

PAPER_PRINTED_COST_AFTER = 456.1
"""C' as the paper prints it (10,000 yuan a year); it agrees with the inputs."""

PAPER_PRINTED_SAVING_RATE = 0.375
"""The cost saving rate as the paper prints it (about 37.5 %); it agrees with the inputs."""
