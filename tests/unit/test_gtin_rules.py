"""One GTIN rule in the contract, the SDK and python-stdnum (docs/architecture.md, "GTINs").

A GTIN is the value of its 14-digit form: 0 < gtin < 10**14 with a right GS1 check digit. Each
example below is a value on which the contract, the SDK and stdnum used to disagree; the property
test (tests/property/test_gtin_properties.py) compares them on drawn values.
"""

from __future__ import annotations

import pytest
from stdnum import ean

from medchain.drug import GS1Error, parse_gtin
from medchain.errors import ContractRevert
from tests.helpers import reverts

GTIN8_LEADING_ZERO = "01234565"  # a GTIN-8 whose value (1,234,565) has seven digits
GTIN12_LEADING_ZERO = "012345678905"  # GS1's GTIN-12 example; its value has eleven digits
SMALLEST = "00000000000017"  # the smallest valid GTIN: value 17
LARGEST = "99999999999997"  # the largest valid GTIN


def test_gtin8_with_a_leading_zero_is_registered(drugs, manufacturer):
    assert ean.is_valid(GTIN8_LEADING_ZERO)
    tx = drugs.registerProduct(parse_gtin(GTIN8_LEADING_ZERO), {"from": manufacturer})
    assert tx.events["ProductRegistered"]["gtin"] == 1234565


@pytest.mark.parametrize(
    "written",
    ["000001234565", "0000001234565", "00000001234565", SMALLEST, "00000017", LARGEST],
    ids=["gtin12", "gtin13", "gtin14", "smallest", "smallest-as-gtin8", "largest"],
)
def test_gtin_with_leading_zeros_of_any_length_is_registered(drugs, manufacturer, written):
    assert ean.is_valid(written)
    value = parse_gtin(written)
    assert value == int(written)
    drugs.registerProduct(value, {"from": manufacturer})
    assert drugs.manufacturerOf(value) == manufacturer


@pytest.mark.parametrize(
    ("gtin", "why"),
    [
        (0, "all zeros"),
        (9506000134353, "wrong check digit"),
        (1234566, "wrong check digit, seven significant digits"),
        (99999999999998, "wrong check digit, largest 14 digits"),
        (10**14 + 7, "15 digits, right check digit"),
        (2**64 - 1, "uint64 max"),
    ],
)
def test_gtin_outside_the_rule_is_refused_on_chain(drugs, manufacturer, gtin, why):
    with reverts("DrugInvalidGtin", gtin):
        drugs.registerProduct(gtin, {"from": manufacturer})


def test_one_gtin_written_in_two_lengths_is_one_product(suite, drugs, manufacturer):
    """GTIN-8 96385074 and GTIN-12 000096385074 are one GS1 key: nobody registers it twice."""
    assert suite.drugs.register_product(manufacturer.address, "96385074") == 96385074
    with pytest.raises(ContractRevert, match="DrugProductExists"):
        suite.drugs.register_product(manufacturer.address, "000096385074")
    with reverts("DrugProductExists", 96385074, manufacturer):
        drugs.registerProduct(parse_gtin("00000096385074"), {"from": manufacturer})


def test_sdk_registers_a_gtin8_with_a_leading_zero(suite, drugs, manufacturer):
    """Used to pass the SDK's check, then revert on chain."""
    assert suite.drugs.register_product(manufacturer.address, GTIN8_LEADING_ZERO) == 1234565
    assert drugs.manufacturerOf(1234565) == manufacturer


# ─── The SDK on its own ─────────────────────────────────────────────────────────────────────


def test_sdk_takes_a_gtin_with_leading_zeros_as_an_integer():
    """A GTIN read back from the chain is an integer without its leading zeros."""
    assert parse_gtin(12345678905) == parse_gtin(GTIN12_LEADING_ZERO) == 12345678905
    assert parse_gtin(1234565) == parse_gtin(GTIN8_LEADING_ZERO) == 1234565
    assert parse_gtin(17) == 17


@pytest.mark.parametrize("written", ["00000000", "000000000000", "0000000000000", "00000000000000", 0])
def test_sdk_refuses_the_all_zero_gtin(written):
    with pytest.raises(GS1Error, match="all zeros"):
        parse_gtin(written)


def other_digits(ascii_digits, zero):
    """``ascii_digits`` in another script's digits, ``zero`` being that script's 0."""
    return ascii_digits.translate({ord("0") + i: zero + i for i in range(10)})


@pytest.mark.parametrize(
    "written",
    [
        other_digits("96385074", 0x0660),
        other_digits("96385074", 0xFF10),
        "9638507" + other_digits("4", 0xFF10),
    ],
    ids=["arabic-indic", "fullwidth", "one-fullwidth"],
)
def test_sdk_refuses_digits_other_than_ascii(written):
    """The old SDK took Arabic-Indic digits (str.isdigit) and int() read them as a GTIN."""
    with pytest.raises(GS1Error, match="only the digits 0-9"):
        parse_gtin(written)


@pytest.mark.parametrize("written", ["9638 5074", "9638-5074", "96385074x", "+96385074", "", "0x5BEC8F2"])
def test_sdk_refuses_non_digits(written):
    with pytest.raises(GS1Error, match="only the digits 0-9"):
        parse_gtin(written)


@pytest.mark.parametrize("written", ["9638507", "096385074", "0096385074", "00096385074", "123456789012345"])
def test_sdk_refuses_a_gtin_of_the_wrong_length(written):
    with pytest.raises(GS1Error, match="a GTIN has 8, 12, 13 or 14"):
        parse_gtin(written)


@pytest.mark.parametrize("value", [-17, 10**14 + 7, 2**64 - 1])
def test_sdk_refuses_an_integer_out_of_range(value):
    with pytest.raises(GS1Error, match="at most 14 digits"):
        parse_gtin(value)


@pytest.mark.parametrize("value", [True, 96385074.0, None, b"96385074"])
def test_sdk_refuses_what_is_neither_text_nor_an_integer(value):
    with pytest.raises(GS1Error, match="give its digits"):
        parse_gtin(value)


def test_sdk_names_the_right_check_digit():
    with pytest.raises(GS1Error, match="check digit is 3, should be 2"):
        parse_gtin("09506000134353")
    with pytest.raises(GS1Error, match="check digit is 3, should be 2"):
        parse_gtin(9506000134353)


def test_gs1_error_is_a_medchain_error():
    from medchain.errors import MedChainError

    assert issubclass(GS1Error, MedChainError)
