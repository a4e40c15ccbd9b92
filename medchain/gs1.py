"""GS1 identifiers as EPCIS users write them: GLN checks, EPC URIs (GS1 Tag Data Standard) and
GS1 Digital Link URIs, with the character rules of GS1 AI encodable character set 82.

Pure functions, no chain: the EPCIS export (:mod:`medchain.epcis`), the deployment's directory
(:mod:`medchain.directory`) and the drug client's lot check use them.

- EPC pure identity URIs (TDS 2.x, section 6 "EPC URI"; Table A-1 / section 5 "Common grammar
  elements"): ``urn:epc:class:lgtin:<company prefix>.<indicator + item ref>.<lot>``,
  ``urn:epc:id:sgtin:<company prefix>.<indicator + item ref>.<serial>``,
  ``urn:epc:id:sgln:<company prefix>.<location ref>.<extension>`` (extension ``0``: the GLN itself),
  ``urn:epc:id:pgln:<company prefix>.<party ref>``. The company prefix and the reference together
  are 13 digits (12 for a GLN), so the GS1 Company Prefix's length must be known: it cannot be read
  from the number. In the lot or serial part, the characters ``"`` ``%`` ``&`` ``/`` ``<`` ``>`` ``?``
  are %-escaped (as ``%22 %25 %26 %2F %3C %3E %3F``); every other character of set 82 stands as itself.
- GS1 Digital Link (URI syntax standard, ABNF ``XCHAR``): in an AI value every character of set 82
  except digits, letters and ``- . _`` is percent-encoded, uppercase hex. The GS1 ABNF lists ``"``
  literally, but RFC 3986 allows no ``"`` in a URI (and EPCIS requires URIs), so it is written ``%22``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from biip.checksums import gs1_standard_check_digit

from medchain.errors import MedChainError

GS1_DIGITAL_LINK_DOMAIN = "https://id.gs1.org"
"""GS1's own resolver: the canonical domain of a Digital Link URI."""

AI82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
"""GS1 AI encodable character set 82 (GS1 General Specifications, figure 7.11-1)."""
_AI82_SET = frozenset(AI82)
_TDS_ESCAPES = {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}


class GS1Error(MedChainError, ValueError):
    """A GTIN, GLN, lot, serial or GS1 element string is malformed (bad check digit, character...)."""


def check_ai82(value: str, what: str, max_length: int = 20) -> str:
    """``value`` unchanged if it is 1 to ``max_length`` characters of GS1 set 82 (lot AI 10 and
    serial AI 21 allow 20).

    Raises:
        GS1Error: empty, too long, or a character GS1 does not allow, named with its position.
    """
    if not value:
        raise GS1Error(f"empty {what}: GS1 asks for 1 to {max_length} characters")
    if len(value) > max_length:
        raise GS1Error(f"{what} {value!r} has {len(value)} characters; GS1 allows at most {max_length}")
    for position, char in enumerate(value, 1):
        if char not in _AI82_SET:
            raise GS1Error(
                f"{what} {value!r}: character {position} ({char!r}) is not in GS1's character set 82 "
                "(letters, digits and ! \" % & ' ( ) * + , - . / : ; < = > ? _ only, no spaces)"
            )
    return value


def check_gln(gln: str) -> str:
    """A GLN (13 digits) with its GS1 check digit verified; returned unchanged.

    Raises:
        GS1Error: not 13 digits, or the check digit is wrong (saying which one it should be).
    """
    text = gln.strip()
    if not (len(text) == 13 and text.isascii() and text.isdigit()):
        raise GS1Error(f"invalid GLN {gln!r}: a GLN has 13 digits")
    expected = gs1_standard_check_digit(text[:-1])
    if int(text[-1]) != expected:
        raise GS1Error(f"invalid GLN {gln!r}: check digit is {text[-1]}, should be {expected}")
    return text


def check_company_prefix(prefix: str) -> str:
    """A GS1 Company Prefix: 6 to 12 digits (TDS: the partition tables allow these lengths)."""
    text = prefix.strip()
    if not (6 <= len(text) <= 12 and text.isascii() and text.isdigit()):
        raise GS1Error(f"invalid GS1 Company Prefix {prefix!r}: 6 to 12 digits")
    return text


def tds_escape(value: str) -> str:
    """The lot or serial part of an EPC URI: set-82 text with ``" % & / < > ?`` %-escaped (TDS)."""
    return "".join(_TDS_ESCAPES.get(c, c) for c in value)


def tds_unescape(value: str) -> str:
    """The inverse of :func:`tds_escape`."""
    return re.sub("%(22|25|26|2F|3C|3E|3F)", lambda m: chr(int(m.group(1), 16)), value)


def dl_escape(value: str) -> str:
    """An AI value in a Digital Link path: everything but letters, digits and ``- . _``
    percent-encoded (uppercase hex)."""
    return quote(value, safe="")  # quote leaves A-Z a-z 0-9 _ . - ~ alone; ~ is not in set 82


def dl_unescape(value: str) -> str:
    return unquote(value)


def _gtin_parts(gtin14: str, company_prefix: str) -> tuple[str, str]:
    """(company prefix, indicator digit + item reference) of a GTIN-14 whose prefix is known."""
    prefix = check_company_prefix(company_prefix)
    if len(gtin14) != 14 or not gtin14.isdigit():
        raise GS1Error(f"invalid GTIN-14 {gtin14!r}")
    if gtin14[1 : 1 + len(prefix)] != prefix:
        raise GS1Error(
            f"GTIN {gtin14} does not carry GS1 Company Prefix {prefix} (digits 2 to {len(prefix) + 1} "
            f"are {gtin14[1 : 1 + len(prefix)]}): check the manufacturer's directory entry"
        )
    return prefix, gtin14[0] + gtin14[1 + len(prefix) : 13]


def lgtin_uri(gtin14: str, lot: str, company_prefix: str) -> str:
    """``urn:epc:class:lgtin:…``: a batch/lot as an EPC class (TDS 2.x, LGTIN)."""
    prefix, item = _gtin_parts(gtin14, company_prefix)
    return f"urn:epc:class:lgtin:{prefix}.{item}.{tds_escape(check_ai82(lot, 'lot'))}"


def sgtin_uri(gtin14: str, serial: str, company_prefix: str) -> str:
    """``urn:epc:id:sgtin:…``: one pack (TDS 2.x, SGTIN pure identity)."""
    prefix, item = _gtin_parts(gtin14, company_prefix)
    return f"urn:epc:id:sgtin:{prefix}.{item}.{tds_escape(check_ai82(serial, 'serial'))}"


def _gln_parts(gln: str, company_prefix: str) -> tuple[str, str]:
    prefix = check_company_prefix(company_prefix)
    number = check_gln(gln)
    if not number.startswith(prefix) or len(prefix) > 12:
        raise GS1Error(f"GLN {number} does not start with its GS1 Company Prefix {prefix}")
    return prefix, number[len(prefix) : 12]


def sgln_uri(gln: str, company_prefix: str) -> str:
    """``urn:epc:id:sgln:<prefix>.<location ref>.0``: the physical location a GLN names."""
    prefix, ref = _gln_parts(gln, company_prefix)
    return f"urn:epc:id:sgln:{prefix}.{ref}.0"


def pgln_uri(gln: str, company_prefix: str) -> str:
    """``urn:epc:id:pgln:<prefix>.<party ref>``: the party (legal entity) a GLN names."""
    prefix, ref = _gln_parts(gln, company_prefix)
    return f"urn:epc:id:pgln:{prefix}.{ref}"


def dl_lot_uri(gtin14: str, lot: str, domain: str = GS1_DIGITAL_LINK_DOMAIN) -> str:
    """``https://id.gs1.org/01/<gtin14>/10/<lot>``: a batch as a GS1 Digital Link."""
    return f"{domain}/01/{gtin14}/10/{dl_escape(check_ai82(lot, 'lot'))}"


def dl_serial_uri(gtin14: str, serial: str, domain: str = GS1_DIGITAL_LINK_DOMAIN) -> str:
    """``https://id.gs1.org/01/<gtin14>/21/<serial>``: one pack as a GS1 Digital Link."""
    return f"{domain}/01/{gtin14}/21/{dl_escape(check_ai82(serial, 'serial'))}"


def dl_location_uri(gln: str, domain: str = GS1_DIGITAL_LINK_DOMAIN) -> str:
    """``https://id.gs1.org/414/<gln>``: a physical location (AI 414) as a Digital Link."""
    return f"{domain}/414/{check_gln(gln)}"


def dl_party_uri(gln: str, domain: str = GS1_DIGITAL_LINK_DOMAIN) -> str:
    """``https://id.gs1.org/417/<gln>``: a party (AI 417) as a Digital Link."""
    return f"{domain}/417/{check_gln(gln)}"


def gln_with_check_digit(first12: str) -> str:
    """The 13-digit GLN whose first 12 digits are ``first12``."""
    if not (len(first12) == 12 and first12.isdigit()):
        raise GS1Error(f"{first12!r}: a GLN's first 12 digits")
    return first12 + str(gs1_standard_check_digit(first12))
