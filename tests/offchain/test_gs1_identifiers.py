"""GS1 identifiers as EPCIS users expect them: GLN check digits (against python-stdnum), EPC URI
escaping (GS1 Tag Data Standard), Digital Link percent-encoding, and the AI 82 character set."""

from __future__ import annotations

import json
import random
from urllib.parse import urlsplit

import pytest
from stdnum import ean

from medchain.directory import Directory, DirectoryEntry, DirectoryError, sample_directory
from medchain.drug import lot_bytes
from medchain.gs1 import (
    AI82,
    GS1Error,
    check_ai82,
    check_gln,
    dl_escape,
    dl_lot_uri,
    dl_serial_uri,
    dl_unescape,
    gln_with_check_digit,
    lgtin_uri,
    pgln_uri,
    sgln_uri,
    sgtin_uri,
    tds_escape,
    tds_unescape,
)
from tests.helpers import epcis_check

GTIN14 = "09506000134352"
PREFIX = "9506000"  # GS1 Company Prefix of GTIN 0 9506000 13435 2
TRICKY_LOT = "A/1%?&"


def test_tricky_lot_round_trips_through_a_digital_link():
    uri = dl_lot_uri(GTIN14, TRICKY_LOT)
    assert uri == "https://id.gs1.org/01/09506000134352/10/A%2F1%25%3F%26"
    segment = urlsplit(uri).path.split("/")[-1]
    assert dl_unescape(segment) == TRICKY_LOT


def test_tricky_lot_round_trips_through_an_lgtin():
    uri = lgtin_uri(GTIN14, TRICKY_LOT, PREFIX)
    assert uri == "urn:epc:class:lgtin:9506000.013435.A%2F1%25%3F%26"
    assert tds_unescape(uri.split(".", 2)[2]) == TRICKY_LOT


def test_digital_link_encodes_every_ai82_symbol_but_the_unreserved():
    """GS1 Digital Link ABNF (XCHAR): letters, digits, - . _ stand as themselves; every other symbol
    is percent-encoded (and " as %22, since RFC 3986 allows no " in a URI)."""
    for char in AI82:
        encoded = dl_escape(char)
        if char.isalnum() or char in "-._":
            assert encoded == char
        else:
            assert encoded == f"%{ord(char):02X}", char
        assert dl_unescape(encoded) == char


def test_epc_uri_escapes_exactly_the_seven_tds_characters():
    """TDS: in an EPC URI's lot or serial, " % & / < > ? are %-escaped; the rest of set 82 is not."""
    escaped = {c: tds_escape(c) for c in AI82 if tds_escape(c) != c}
    assert escaped == {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
    assert tds_unescape(tds_escape(AI82)) == AI82


def test_every_ai82_lot_round_trips_both_ways():
    rng = random.Random(12)
    for _ in range(200):
        lot = "".join(rng.choice(AI82) for _ in range(rng.randint(1, 20)))
        assert dl_unescape(urlsplit(dl_lot_uri(GTIN14, lot)).path.split("/")[-1]) == lot
        assert tds_unescape(lgtin_uri(GTIN14, lot, PREFIX).split(".", 2)[2]) == lot


@pytest.mark.parametrize("lot", ["A 1", "LOT#1", "ÄB", "A\t1", "", "L" * 21, "a~b", "x[1]"])
def test_lot_outside_gs1_character_set_82_is_refused(lot):
    with pytest.raises(GS1Error):
        check_ai82(lot, "lot")
    with pytest.raises(GS1Error):
        lot_bytes(lot)
    with pytest.raises(GS1Error):
        dl_lot_uri(GTIN14, lot)


def test_gln_check_digit_agrees_with_python_stdnum():
    """Independent reference: stdnum.ean validates 13-digit GS1 check digits."""
    rng = random.Random(7)
    for _ in range(500):
        first12 = "".join(rng.choice("0123456789") for _ in range(12))
        gln = gln_with_check_digit(first12)
        assert ean.is_valid(gln)
        assert check_gln(gln) == gln
        wrong = gln[:-1] + str((int(gln[-1]) + 1) % 10)
        assert not ean.is_valid(wrong)
        with pytest.raises(GS1Error, match="check digit"):
            check_gln(wrong)


@pytest.mark.parametrize("gln", ["952000100001", "95200010000111", "95200O1000011", ""])
def test_malformed_gln_is_refused(gln):
    with pytest.raises(GS1Error, match="13 digits"):
        check_gln(gln)


def test_sgln_pgln_and_sgtin_split_by_the_company_prefix():
    gln = gln_with_check_digit("952000700001")
    assert sgln_uri(gln, "9520007") == "urn:epc:id:sgln:9520007.00001.0"
    assert pgln_uri(gln, "9520007") == "urn:epc:id:pgln:9520007.00001"
    assert sgtin_uri(GTIN14, "K7/2", PREFIX) == "urn:epc:id:sgtin:9506000.013435.K7%2F2"
    assert dl_serial_uri(GTIN14, "K7/2") == "https://id.gs1.org/01/09506000134352/21/K7%2F2"


def test_gtin_outside_the_company_prefix_is_refused():
    with pytest.raises(GS1Error, match="does not carry GS1 Company Prefix"):
        lgtin_uri(GTIN14, "A1", "9520007")


def test_directory_entry_checks_gln_and_prefix():
    address = "0x" + "11" * 20
    good = gln_with_check_digit("952000700001")
    DirectoryEntry(address, good, "9520007")
    with pytest.raises(GS1Error, match="check digit"):
        DirectoryEntry(address, good[:-1] + str((int(good[-1]) + 3) % 10), "9520007")
    with pytest.raises(GS1Error, match="does not start with"):
        DirectoryEntry(address, good, "9520008")


def test_directory_file_with_a_wrong_check_digit_is_one_error(tmp_path):
    address = "0x" + "22" * 20
    path = tmp_path / "31337.json"
    path.write_text(
        json.dumps(
            {
                "format": "medchain-directory-v1",
                "chain_id": 31337,
                "members": {address: {"gln": "9520007000012", "company_prefix": "9520007"}},
            }
        )
    )
    with pytest.raises(DirectoryError, match="check digit is 2, should be"):
        Directory.load(path, 31337)


def test_directory_round_trips_and_refuses_another_chain(tmp_path):
    names = {"0x" + f"{i:02x}" * 20: f"member {i}" for i in range(1, 4)}
    directory = sample_directory(31337, names)
    path = tmp_path / "dir.json"
    directory.save(path)
    assert Directory.load(path, 31337) == directory
    with pytest.raises(DirectoryError, match="chain 31337, not 1"):
        Directory.load(path, 1)
    assert all(ean.is_valid(e.gln) and e.gln.startswith("952") for e in directory.entries.values())


def test_digital_links_pass_gs1_digital_link_grammar():
    """digital-link.js (GS1's grammar) accepts our links; the lot with every symbol it allows."""
    lot_symbols = "!%&'()*+,-./:;<=>?_"
    links = [
        dl_lot_uri(GTIN14, TRICKY_LOT),
        dl_lot_uri(GTIN14, lot_symbols),
        dl_serial_uri(GTIN14, "A/1%?&"),
    ]
    document = {"epcisBody": {"eventList": [{"ids": links}]}}
    result = epcis_check(document | {"@context": [], "type": "x"})
    assert result["links"] == len(links)
    assert not [e for e in result["errors"] if e.startswith("digital-link.js")], result["errors"]
