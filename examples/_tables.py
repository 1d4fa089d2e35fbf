"""Output shared by the speed benchmarks: a Markdown table on stdout and the same rows as CSV."""

from __future__ import annotations

import csv
import os
from typing import Dict, List


def write_rows(rows: List[Dict[str, object]], out: str) -> None:
    """Print ``rows`` as a Markdown table and write them to the CSV file ``out``."""
    if not rows:
        raise SystemExit(f"nothing to write to {out}: no rows were measured (see the messages above)")
    header = list(rows[0])
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {out}")
