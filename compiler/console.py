"""Text for the terminal: aligned tables and percentages."""

from __future__ import annotations

__all__ = ["percent", "table"]


def table(rows: list[list[str]], right: set[int]) -> list[str]:
    """``rows`` (the first is the header) as aligned lines; columns in ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return lines


def percent(value: float | None) -> str:
    return "n/a (no labels)" if value is None else f"{value:.2%}"
