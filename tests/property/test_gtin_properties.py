"""Property: the contract (`registerProduct`), the SDK (`parse_gtin`), python-stdnum (`stdnum.ean`)
and biip accept and refuse the same GTINs, whatever the length (8, 12, 13, 14), leading zeros and
check digit; the one documented exception is the all-zero GTIN, which stdnum and biip accept and
MedChain refuses (docs/architecture.md, "GTINs").

The contract is asked with eth_call (`registerProduct.call`): the answer is whether the
transaction would be accepted, with no product left registered to skew the next example.
"""

from __future__ import annotations

import warnings

import hypothesis
from biip import ParseError
from biip.gtin import Gtin
from brownie.exceptions import BrownieTestWarning, VirtualMachineError
from brownie.test import given
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st
from stdnum import ean

from medchain.drug import GS1Error, parse_gtin

LENGTHS = (8, 12, 13, 14)


@st.composite
def written_gtins(draw):
    """A GTIN as written: 8, 12, 13 or 14 digits, any run of leading zeros (all of them too),
    and a check digit that is right about half of the time."""
    length = draw(st.sampled_from(LENGTHS))
    zeros = draw(st.integers(min_value=0, max_value=length - 1))
    rest = draw(st.text(alphabet="0123456789", min_size=length - 1 - zeros, max_size=length - 1 - zeros))
    body = "0" * zeros + rest
    right = draw(st.booleans())
    check = ean.calc_check_digit(body) if right else str(draw(st.integers(min_value=0, max_value=9)))
    return body + check


def on_chain(drugs, manufacturer, value):
    """Whether registerProduct(value) would succeed; any refusal must be DrugInvalidGtin(value)."""
    try:
        drugs.registerProduct.call(value, {"from": manufacturer})
    except VirtualMachineError as exc:
        refusal = exc.revert_msg
    else:
        return True
    assert refusal == f"DrugInvalidGtin: {value}", refusal
    return False


def in_sdk(value):
    try:
        parsed = parse_gtin(value)
    except GS1Error:
        return None
    return parsed


def by_biip(written):
    try:
        Gtin.parse(written)
    except ParseError:
        return False
    return True


@given(written=written_gtins())
@example(written="00000000")
@example(written="00000000000000")
@example(written="01234565")
@example(written="012345678905")
@example(written="00000000000017")
@example(written="99999999999997")
def test_contract_sdk_and_stdnum_agree_on_written_gtins(drugs, manufacturer, written):
    value = int(written)
    by_stdnum = ean.is_valid(written)
    assert by_biip(written) == by_stdnum
    expected = by_stdnum and value != 0  # the documented exception: the all-zero GTIN
    parsed = in_sdk(written)
    assert (parsed is not None) == expected, written
    if parsed is not None:
        assert parsed == value
    assert on_chain(drugs, manufacturer, value) == expected, written


def offline_given(**strategies):
    """hypothesis's own `given`, for tests that never touch the chain: brownie's `given` reverts
    the chain before each example (a few hundred ms here), which thousands of examples cannot afford.
    """

    def decorate(test):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BrownieTestWarning)  # "use brownie.test.given"
            return hypothesis.given(**strategies)(test)

    return decorate


@offline_given(written=written_gtins())
@settings(max_examples=3000, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_sdk_stdnum_and_biip_agree_on_many_written_gtins(written):
    """Off chain, so many more examples: the SDK against the two libraries."""
    by_stdnum = ean.is_valid(written)
    assert by_biip(written) == by_stdnum
    assert (in_sdk(written) is not None) == (by_stdnum and int(written) != 0), written


@given(
    value=st.one_of(
        st.integers(min_value=0, max_value=10**14 - 1), st.integers(min_value=0, max_value=2**64 - 1)
    )
)
@example(value=0)
@example(value=17)
@example(value=10**14 - 3)
@example(value=10**14 + 7)
@example(value=2**64 - 1)
def test_contract_sdk_and_stdnum_agree_on_integers(drugs, manufacturer, value):
    """An integer is the 14-digit form's value, as the contract and its events hold it."""
    expected = value < 10**14 and ean.is_valid(f"{value:014d}") and value != 0
    assert (in_sdk(value) == value) == expected
    assert (in_sdk(value) is None) == (not expected)
    assert on_chain(drugs, manufacturer, value) == expected


NON_ASCII_DIGITS = "\u0663\uff19"  # ARABIC-INDIC DIGIT THREE, FULLWIDTH DIGIT NINE


@given(
    written=written_gtins(),
    at=st.integers(min_value=0, max_value=14),
    intruder=st.characters(blacklist_categories=("Nd", "Cs")) | st.sampled_from(NON_ASCII_DIGITS),
)
def test_a_gtin_with_any_non_digit_is_refused_by_the_sdk(written, at, intruder):
    """A character other than 0-9 anywhere in a GTIN; only whitespace at its ends is forgiven."""
    spoiled = written[:at] + intruder + written[at:]
    core = spoiled.strip()
    if core.isascii() and core.isdigit():
        return  # whitespace at an end: the SDK and stdnum both strip it
    assert in_sdk(spoiled) is None, spoiled
    # stdnum first maps look-alikes (fullwidth digits, Unicode spaces and dashes) to ASCII and
    # drops spaces and hyphens; parse_gtin refuses them. Otherwise stdnum refuses too.
    normalised = ean.compact(spoiled)
    if not (normalised.isascii() and normalised.isdigit()):
        assert not ean.is_valid(spoiled), spoiled
