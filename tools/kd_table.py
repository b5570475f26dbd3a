#!/usr/bin/env python3
"""tools/kd_table.py: the Fashion-MNIST KD table (markdown) from tools/results/kd-fashion/*/summary.json,
as tools/kd-table.sh leaves them: one row per method, test top-1 (mean +- sample std over the
seeds) at the best-by-validation epoch and at the last epoch. Standard library only."""
import json
import pathlib
import sys

ORDER = ["student", "kd", "dkd", "dist", "logit_std", "fitnet", "at", "sp", "nst", "rkd", "pkt",
         "cc", "vid", "crd"]


def cell(stats):
    if stats.get("mean") is None:
        return "-"
    std = stats.get("std")
    return f"{stats['mean']:.2f} ± {std:.2f}" if std is not None else f"{stats['mean']:.2f}"


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tools/results/kd-fashion")
    rows = {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/summary.json")}
    names = [n for n in ORDER if n in rows] + sorted(n for n in rows if n not in ORDER)
    print("| student resnet8 with | test top-1 at best val epoch | test top-1 at last epoch | seeds |")
    print("| --- | ---: | ---: | ---: |")
    for n in names:
        r = rows[n]
        label = "alone (ce)" if n == "student" else n
        print(f"| {label} | {cell(r['best_test_top1'])} | {cell(r['last_test_top1'])} | "
              f"{r['best_test_top1'].get('n', len(r.get('runs', [])))} |")


if __name__ == "__main__":
    main()
