"""Document text made writable by every export format: any string the store holds must export.

Text pulled from PDFs carries control characters (``\\x0b``, ANSI escapes), and documents can hold lone
surrogates or bidirectional overrides. XML (so XLSX) cannot hold most C0 controls, UTF-8 cannot hold a lone
surrogate, a terminal or spreadsheet shows an ANSI escape as a command, and a right-to-left override makes
text display reversed. The human formats (HTML, PDF, XLSX, CSV) therefore show each such character as a
visible code, ``[U+001B]``; JSON and sentences.jsonl keep the exact text (JSON escapes controls itself; a lone
surrogate is written as its ``\\udXXX`` escape). Cells longer than a format's limit are cut with a marker
that says how long the text was and where it is whole.
"""

from __future__ import annotations

import json
import re

# C0 controls but tab and newline, DEL and C1 controls, surrogates, the two XML non-characters, and the
# bidirectional embedding / override / isolate controls.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")

XLSX_CELL_CHARS = 32_767  # Excel's limit for one cell
CSV_CELL_CHARS = XLSX_CELL_CHARS  # a CSV is opened in a spreadsheet, which cuts longer cells silently


def visible(text: str) -> str:
    """``text`` with every character a human format cannot show faithfully written as ``[U+XXXX]``."""
    return _HIDDEN.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)


def _marker(length: int) -> str:
    return f" … [cut: {length:,} characters in all; the whole text is in the JSON export and sentences.jsonl]"


def cut(text: str, limit: int) -> str:
    """``text`` if it fits ``limit`` characters, else its start and a marker, ``limit`` characters in all."""
    if len(text) <= limit:
        return text
    marker = _marker(len(text))
    return text[: max(0, limit - len(marker))] + marker


def for_cell(value, limit: int):
    """A spreadsheet cell's value: strings made visible and cut to ``limit``; other values as they are."""
    return cut(visible(value), limit) if isinstance(value, str) else value


_LINE_BREAKING = re.compile("[\x80-\x9f\u2028\u2029]")  # what str.splitlines (and JavaScript) also break at


def json_line(record) -> str:
    """One JSON Lines record on exactly one line: besides the controls JSON escapes itself, C1 controls and
    the Unicode line/paragraph separators are written as escapes, so no reader splits a record in two."""
    text = json.dumps(record, ensure_ascii=False)
    return _LINE_BREAKING.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
