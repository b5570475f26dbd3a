"""tools/run_summary.py: numbers of finished runs from their metrics.csv, for the table scripts
(generations_table.py, cross_table.py). Standard library only.

A run's numbers: the test top-1 at the epoch with the best validation top-1 (the first such
epoch), the test top-1 at the last epoch, and the training time (the `seconds` column of the
last row)."""
import csv
import pathlib
import statistics


def run_numbers(run_dir):
    """{"best_test", "last_test", "seconds", "epochs"} of one run directory."""
    run_dir = pathlib.Path(run_dir)
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val = {r["epoch"]: float(r["top1"]) for r in rows if r["split"] == "val"}
    test = {r["epoch"]: float(r["top1"]) for r in rows if r["split"] == "test"}
    if not test:
        raise SystemExit(f"{run_dir}: no test rows in metrics.csv (has the run finished an epoch?)")
    epochs = sorted(test, key=float)
    best = max(epochs, key=lambda e: (val.get(e, float("-inf")), -float(e)))
    return {"best_test": test[best], "last_test": test[epochs[-1]],
            "seconds": float(rows[-1]["seconds"]), "epochs": float(epochs[-1])}


def mean_std(values):
    """(mean, sample std or None, n) of the values that are not None."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None, 0
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None), len(values)


def cell(values, digits=2):
    """ "mean ± std" for a markdown table, "-" when there is nothing."""
    mean, std, _ = mean_std(values)
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{mean:.{digits}f}"
