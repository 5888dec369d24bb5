"""Output-scalar parsing throughput: ``OutputScalarParser().parse(line)`` per line.

Lines are a realistic, shuffled mix of what a training script prints:
70 % plain text (a third of it with a colon: logging prefixes, progress bars,
clock times, so the "no colon" shortcut does not take every plain line),
20 % ``loss: 0.123``, 5 % ``acc: 0.9 (step 12)``, 5 % ``step: 7``.

Bar (DESIGN "Bars"): >= 200,000 lines/s with Guild's default patterns.
Baseline, same lines, same run: one precompiled ``re.match`` per line (the
default ``key: value`` pattern), which is the cost of the cheapest possible
regex parser.

``--quick``: 100,000 lines instead of 500,000.
"""

from __future__ import annotations

import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _util  # noqa: E402
from _util import Bars, table  # noqa: E402

BAR_LINES_PER_S = 200_000
REPEAT = 5

PLAIN_NO_COLON = [
    "Epoch {i}/100",
    "Loading dataset from /data/cifar10/train ...",
    "  saving checkpoint to checkpoints/model-{i}.pt",
    "Using device cuda and mixed precision",
    "{i} batches done, 3 remaining in this shard",
    "---------------------------------------------------------------",
    "Validation improved, keeping the new weights",
]
PLAIN_COLON = [
    "INFO:root:starting epoch {i}",
    "Epoch {i}: 100%|##########| 50/50 [00:01<00:00, 41.2it/s]",
    "2026-12-04 10:31:{s:02d} worker {i} ready",
]


def make_lines(n: int) -> list[str]:
    rng = random.Random(0)
    lines = []
    for i in range(n):
        r = rng.random()
        if r < 0.70:
            pool = PLAIN_COLON if rng.random() < 1 / 3 else PLAIN_NO_COLON
            lines.append(rng.choice(pool).format(i=i, s=i % 60))
        elif r < 0.90:
            lines.append(f"loss: {rng.random():.3f}")
        elif r < 0.95:
            lines.append(f"acc: {rng.random():.4f} (step {i})")
        else:
            lines.append(f"step: {i}")
    return lines


def main() -> int:
    _util.header("bench_output_scalars: OutputScalarParser.parse vs one precompiled re.match per line")
    _util.temp_home("output-scalars")
    from guild_jupyter.tracking.output_scalars import DEFAULT_PATTERNS, OutputScalarParser, expand_template

    n = 100_000 if _util.quick() else 500_000
    lines = make_lines(n)
    share = {
        "plain": sum(1 for x in lines if not re.match(r"^(loss|acc|step): ", x)),
        "(with a ':'": sum(1 for x in lines if ":" in x and not re.match(r"^(loss|acc|step): ", x)),
        "loss:": sum(1 for x in lines if x.startswith("loss:")),
        "acc: (step)": sum(1 for x in lines if x.startswith("acc:")),
        "step:": sum(1 for x in lines if x.startswith("step:")),
    }
    print(f"{n:,} lines: " + ", ".join(f"{k} {v / n:.1%}" + (")" if k.startswith("(") else "")
                                         for k, v in share.items()).replace("%, (", "% ("))

    def ours() -> int:
        parse = OutputScalarParser().parse
        hits = 0
        for line in lines:
            if parse(line):
                hits += 1
        return hits

    pattern = re.compile(expand_template(DEFAULT_PATTERNS[1]))

    def baseline() -> int:
        match = pattern.match
        hits = 0
        for line in lines:
            if match(line):
                hits += 1
        return hits

    hits = ours()
    assert hits == share["loss:"] + share["acc: (step)"], (hits, share)
    check = OutputScalarParser()
    assert check.parse("step: 7") == [] and check.parse("loss: 0.5") == [("loss", 7, 0.5)]
    assert check.parse("acc: 0.9 (step 12)") == [("acc", 12, 0.9)]

    t_ours = _util.timed(ours, REPEAT)
    t_base = _util.timed(baseline, REPEAT)
    m_ours, m_base = _util.median(t_ours), _util.median(t_base)
    rate, base_rate = n / m_ours, n / m_base
    rows = [
        ("OutputScalarParser().parse", f"{m_ours * 1000:.0f} ms", f"{rate:,.0f}", f"{m_ours / n * 1e6:.2f} us", "1.00x"),
        ("baseline: one precompiled re.match", f"{m_base * 1000:.0f} ms", f"{base_rate:,.0f}",
         f"{m_base / n * 1e6:.2f} us", f"{m_base / m_ours:.2f}x"),
    ]
    print()
    print(table(rows, (f"median of {REPEAT}", "time", "lines/s", "per line", "time vs ours")))
    bars = Bars()
    bars.check("output-scalar parsing, lines/s", f"{rate:,.0f}", f">= {BAR_LINES_PER_S:,}", rate >= BAR_LINES_PER_S)
    bars.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
