"""Text bound for a spreadsheet (CSV exports): a cell never runs as a formula.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel and
LibreOffice (CSV injection, OWASP): ``=HYPERLINK(...)`` in a user agent or a name would run, or leak the sheet,
on the compliance officer's machine. Such a cell starts with a quote instead, which the spreadsheet shows as text.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    return "'" + text if text[:1] in FORMULA_STARTS else text
