"""Read the fenced code blocks that README.md marks with an HTML comment."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def marked_blocks(marker: str) -> dict[str, str]:
    """``{label: code}`` for every block right after ``<!-- marker: label -->`` (or ``<!-- marker -->``)."""
    pattern = re.compile(rf"<!-- {marker}(?:: (?P<label>[^>]+?))? -->\n```[a-z]*\n(?P<code>.*?)```", re.S)
    return {(m["label"] or ""): m["code"] for m in pattern.finditer(README.read_text())}
