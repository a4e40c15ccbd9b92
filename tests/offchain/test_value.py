"""The value models against the paper's inputs, bad input named, and their invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.core import given

from medchain.errors import MedChainError
from medchain.value import (
    PAPER_COST,
    PAPER_EFFICIENCY,
    PAPER_ETA_REMARK,
    PAPER_PRINTED_COST_AFTER,
    PAPER_PRINTED_ETA,
    PAPER_PRINTED_SAVING_RATE,
    CostInputs,
    EfficiencyInputs,
    StepTiming,
    ValueModelError,
    cost_model,
    efficiency_from_timings,
    efficiency_gain,
)

# ─── The paper's figures ──────────────────────────────────────────────────────────────────


def test_paper_inputs_give_eta_99_1_percent():
    result = efficiency_gain(PAPER_EFFICIENCY)
    assert result.remaining == pytest.approx(0.4 * 0.15 * 0.3 * 0.5)  # 0.009
    assert result.eta == pytest.approx(0.991)
    assert f"{result.eta:.1%}" == "99.1%"


def test_paper_printed_eta_is_kept_apart_and_differs_from_its_inputs():
    computed = efficiency_gain(PAPER_EFFICIENCY).eta
    assert PAPER_PRINTED_ETA == 0.981
    assert computed - PAPER_PRINTED_ETA == pytest.approx(0.01)
    assert "98.1" in PAPER_ETA_REMARK
    assert "99.1" in PAPER_ETA_REMARK


def test_paper_steps_are_named_in_order():
    assert PAPER_EFFICIENCY.alphas == (0.6, 0.85, 0.7, 0.5)
    assert PAPER_EFFICIENCY.steps[0] == "data request"
    assert len(PAPER_EFFICIENCY.steps) == 4


def test_paper_cost_inputs_give_456_1_and_37_5_percent_saving():
    result = cost_model(PAPER_COST)
    assert result.before == pytest.approx(730.0)
    assert result.technology_after == pytest.approx(260.0)
    assert result.labour_after == pytest.approx(192.5)
    assert result.risk_after == pytest.approx(3.6)
    assert result.after == pytest.approx(456.1)
    assert result.saving == pytest.approx(273.9)
    assert f"{result.saving_rate:.1%}" == "37.5%"


def test_paper_printed_cost_figures_agree_with_its_inputs():
    result = cost_model(PAPER_COST)
    assert round(result.after, 1) == PAPER_PRINTED_COST_AFTER
    assert round(result.saving_rate, 3) == PAPER_PRINTED_SAVING_RATE


# ─── Eta from measured step times ─────────────────────────────────────────────────────────


def test_eta_from_timings_uses_one_minus_after_over_before():
    measured = efficiency_from_timings(
        [StepTiming("request", 40.0, 16.0), StepTiming("authorise", 20.0, 3.0)]
    )
    assert measured.efficiency.inputs.alphas == pytest.approx((0.6, 0.85))
    assert measured.efficiency.inputs.steps == ("request", "authorise")
    assert measured.efficiency.eta == pytest.approx(1 - 0.4 * 0.15)
    assert measured.end_to_end_saving == pytest.approx(1 - 19.0 / 60.0)


def test_eta_from_paper_shaped_timings_matches_the_paper_inputs():
    timings = [
        StepTiming(name, 100.0, 100.0 * (1 - a))
        for name, a in zip(PAPER_EFFICIENCY.steps, PAPER_EFFICIENCY.alphas, strict=True)
    ]
    measured = efficiency_from_timings(timings)
    assert measured.efficiency.eta == pytest.approx(efficiency_gain(PAPER_EFFICIENCY).eta)


def test_unchanged_step_times_give_no_gain():
    measured = efficiency_from_timings([StepTiming("a", 5, 5), StepTiming("b", 7, 7)])
    assert measured.efficiency.eta == 0
    assert measured.end_to_end_saving == 0


# ─── Bad input: one clear error, a ValueError and a MedChainError ─────────────────────────


def test_value_model_error_is_a_value_error_and_a_medchain_error():
    assert issubclass(ValueModelError, ValueError)
    assert issubclass(ValueModelError, MedChainError)


def test_no_alphas_is_rejected():
    with pytest.raises(ValueModelError, match="at least one process step"):
        EfficiencyInputs(())


@pytest.mark.parametrize("alpha", [-0.01, 1.01, 2.0])
def test_alpha_outside_zero_to_one_is_rejected(alpha):
    with pytest.raises(ValueModelError, match=r"alpha for step 2 \(b\) is .*between 0 and 1"):
        EfficiencyInputs((0.5, alpha), ("a", "b"))


@pytest.mark.parametrize("alpha", [math.nan, math.inf, "0.5", None, True])
def test_alpha_that_is_not_a_finite_number_is_rejected(alpha):
    with pytest.raises(ValueModelError, match="alpha"):
        EfficiencyInputs((alpha,))


def test_step_names_must_match_alphas():
    with pytest.raises(ValueModelError, match="2 step names for 1 alphas"):
        EfficiencyInputs((0.5,), ("a", "b"))


def test_no_timings_is_rejected():
    with pytest.raises(ValueModelError, match="no step timings"):
        efficiency_from_timings([])


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        (0.0, 0.0, "'before' is 0.0; it must be above 0"),
        (-3.0, 1.0, "'before' is -3.0"),
        (10.0, -1.0, "'after' is -1.0; it cannot be negative"),
        (10.0, 12.0, "got slower"),
        (math.nan, 1.0, "finite"),
        (10.0, math.inf, "finite"),
    ],
)
def test_bad_timing_is_rejected_naming_the_step(before, after, message):
    with pytest.raises(ValueModelError, match=message) as info:
        efficiency_from_timings([StepTiming("fine", 2.0, 1.0), StepTiming("audit", before, after)])
    assert "audit" in str(info.value)


@pytest.mark.parametrize("field", ["technology", "labour", "risk"])
def test_negative_cost_is_rejected(field):
    values = {"technology": 200.0, "labour": 350.0, "risk": 180.0}
    values[field] = -1.0
    with pytest.raises(ValueModelError, match=f"the {field} cost C. is -1.0; a cost cannot be negative"):
        CostInputs(**values, premium=0.3, labour_saving=0.45, risk_reduction=0.98)


def test_all_costs_zero_is_rejected():
    with pytest.raises(ValueModelError, match="all three costs are 0"):
        CostInputs(0, 0, 0, premium=0.3, labour_saving=0.45, risk_reduction=0.98)


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"premium": -0.1}, "premium beta is -0.1"),
        ({"labour_saving": 1.5}, r"labour_saving \(gamma\) is 1.5"),
        ({"risk_reduction": -0.2}, r"risk_reduction \(delta\) is -0.2"),
        ({"premium": math.nan}, "finite"),
    ],
)
def test_rate_out_of_range_is_rejected(rates, message):
    arguments = {"premium": 0.3, "labour_saving": 0.45, "risk_reduction": 0.98, **rates}
    with pytest.raises(ValueModelError, match=message):
        CostInputs(200, 350, 180, **arguments)


def test_inputs_are_frozen():
    with pytest.raises(AttributeError):
        PAPER_COST.labour = 1.0  # type: ignore[misc]


# ─── Properties ───────────────────────────────────────────────────────────────────────────
# Pure Python, no chain: hypothesis's own `given` (brownie's wrapper, and the `hypothesis.given`
# it patches, would snapshot and revert the chain for every example, ~0.3 s each). The autouse
# chain-isolation fixture runs once per test, which is harmless here, so its health check is off.

pure = settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
alpha_lists = st.lists(unit, min_size=1, max_size=8)


@given(alphas=alpha_lists)
@pure
def test_eta_is_between_zero_and_one_and_at_least_each_alpha(alphas):
    eta = efficiency_gain(EfficiencyInputs(tuple(alphas))).eta
    assert 0.0 <= eta <= 1.0
    assert eta >= max(alphas) - 1e-12


@given(alphas=alpha_lists, index=st.integers(min_value=0, max_value=7), raised=unit)
@pure
def test_eta_never_falls_when_one_alpha_rises(alphas, index, raised):
    index %= len(alphas)
    higher = list(alphas)
    higher[index] = max(alphas[index], raised)
    before = efficiency_gain(EfficiencyInputs(tuple(alphas))).eta
    after = efficiency_gain(EfficiencyInputs(tuple(higher))).eta
    assert after >= before - 1e-12


@given(alphas=alpha_lists)
@pure
def test_eta_does_not_depend_on_step_order(alphas):
    forward = efficiency_gain(EfficiencyInputs(tuple(alphas))).eta
    backward = efficiency_gain(EfficiencyInputs(tuple(reversed(alphas)))).eta
    assert forward == pytest.approx(backward, abs=1e-12)


costs = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@given(c1=costs, c2=costs, c3=costs, beta=st.floats(0.0, 5.0), gamma=unit, delta=unit, more=unit)
@pure
def test_cost_after_never_rises_with_more_saving(c1, c2, c3, beta, gamma, delta, more):
    if c1 + c2 + c3 == 0:
        return
    base = cost_model(CostInputs(c1, c2, c3, beta, gamma, delta))
    better = cost_model(CostInputs(c1, c2, c3, beta, max(gamma, more), max(delta, more)))
    assert better.after <= base.after + 1e-6
    assert base.after == pytest.approx(base.technology_after + base.labour_after + base.risk_after)
    assert base.saving_rate <= 1.0
