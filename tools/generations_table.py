#!/usr/bin/env python3
"""tools/generations_table.py: the generations table (markdown) from the run directories of
tools/generations-table.sh: RUNS/born-again/seed-S/gen-K and RUNS/self-distill/seed-S.

Every number comes from the runs' metrics.csv: the test top-1 at the epoch with the best
validation top-1 and at the last epoch, and the training time (the `seconds` column of the last
row). A born-again generation's time is cumulative: generation k needed generations 0..k-1 first.
Ensembles come from each seed's generations.json. Mean +- sample standard deviation over seeds.
--time-seeds S,T,... averages the times over those seeds only (the ones that ran on an otherwise
idle machine); the training epochs, cumulative like the times, do not depend on the machine.
Standard library only."""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from run_summary import cell, run_numbers  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=pathlib.Path)
    parser.add_argument("--json", type=pathlib.Path)
    parser.add_argument("--time-seeds", default="",
                        help="comma-separated seeds whose times to average (default: all)")
    args = parser.parse_args()
    time_seeds = {int(s) for s in args.time_seeds.split(",") if s}

    rows = {}  # label -> list over seeds of {"best_test", "last_test", "seconds"}
    order = []

    def add(label, numbers):
        if label not in rows:
            rows[label] = []
            order.append(label)
        rows[label].append(numbers)

    epochs_per_run = None
    for seed_dir in sorted((args.runs / "born-again").glob("seed-*")):
        seed = int(seed_dir.name.split("-")[1])
        gens = sorted(seed_dir.glob("gen-*"), key=lambda p: int(p.name.split("-")[1]))
        total, epochs = 0.0, 0
        for g in gens:
            numbers = run_numbers(g)
            total += numbers["seconds"]
            epochs += int(numbers["epochs"])
            k = int(g.name.split("-")[1])
            label = "plain training (generation 0)" if k == 0 else f"born-again, generation {k}"
            add(label, dict(numbers, seconds=total, epochs=epochs, seed=seed))
        summary_file = seed_dir / "generations.json"
        if summary_file.exists():
            summary = json.loads(summary_file.read_text())
            for e in summary.get("ensembles", []):
                members = e.get("members", [])
                label = f"ensemble of generations {members[0]}..{members[-1]}" if members else "ensemble"
                add(label, {"best_test": e.get("test_top1"), "last_test": e.get("test_top1"),
                            "seconds": total, "epochs": epochs, "seed": seed})
    for seed_dir in sorted((args.runs / "self-distill").glob("seed-*")):
        seed = int(seed_dir.name.split("-")[1])
        add("self-distillation, one generation", dict(run_numbers(seed_dir), seed=seed))

    timed = "all seeds" if not time_seeds else "seeds " + ", ".join(map(str, sorted(time_seeds)))
    print("| resnet8 on Fashion-MNIST | test top-1 at best val epoch | test top-1 at last epoch "
          f"| epochs (cumulative) | training time (s, cumulative; {timed}) | seeds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label in order:
        r = rows[label]
        times = [x["seconds"] for x in r if not time_seeds or x["seed"] in time_seeds]
        print(f"| {label} | {cell([x['best_test'] for x in r])} | {cell([x['last_test'] for x in r])} "
              f"| {int(r[0]['epochs'])} | {cell(times, 0)} | {len(r)} |")
    if args.json:
        tmp = args.json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
