#!/usr/bin/env python3
"""Makes the integer GELU table of core/src/quant/gelu.rs, or checks it (--check).

C[i] = round(c(i/64) * 2^18) for i = 0..=320, where c(a) = a * Phi(-a) = a * erfc(a/sqrt 2) / 2:
the correction that turns max(x, 0) into GELU(x). Python's float erfc is the C library's, good
to a few ulp of a double; c(a) * 2^18 is at most 44,557, so a double is exact to ~1e-11 in
these units, and every entry is at least 8.4e-4 from a rounding tie (the script fails if one
were within 1e-9 of a tie, where a double would not decide it).
"""

import math
import re
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "core/src/quant/gelu.rs"
STEP_EXP, VALUE_EXP, ENTRIES = 6, 18, 321


def table():
    out = []
    for i in range(ENTRIES):
        a = i / 2**STEP_EXP
        value = a * math.erfc(a / math.sqrt(2)) / 2 * 2**VALUE_EXP
        if abs(value - math.floor(value) - 0.5) < 1e-9:
            sys.exit(f"entry {i}: {value} is too close to a half for a double to round it")
        out.append(math.floor(value + 0.5))
    return out


def rust(values):
    """The array's body, about as rustfmt lays it out (run `cargo fmt` after pasting)."""
    lines, line = [], "   "
    for v in values:
        item = f" {v},"
        if len(line) + len(item) > 100:
            lines.append(line)
            line = "   "
        line += item
    lines.append(line)
    return "\n".join(lines)


def main():
    values = table()
    if sys.argv[1:] == ["--check"]:
        text = TABLE.read_text()
        body = re.search(r"GELU_TABLE: \[u16; 321\] = \[(.*?)\];", text, re.S).group(1)
        found = [int(v) for v in body.replace("\n", " ").split(",") if v.strip()]
        if found != values:
            bad = [i for i, (f, v) in enumerate(zip(found, values)) if f != v]
            sys.exit(f"{TABLE}: GELU_TABLE differs from the generator at {bad[:10]}")
        print(f"{TABLE.name}: GELU_TABLE matches the generator ({ENTRIES} entries)")
    elif sys.argv[1:]:
        sys.exit("usage: scripts/gelu_table.py [--check]")
    else:
        print(rust(values))


if __name__ == "__main__":
    main()
