#!/usr/bin/env python3
"""tools/cross_table.py: the cross-architecture tables of tools/cross-tables.sh.

    cross_table.py row DIR                  one row's numbers (JSON) from its seed-* directories
                                            (run directories, or the records cross-tables.sh
                                            keeps of them: config, metrics.csv, teacher)
    cross_table.py table tools/results/cross/TABLE   the markdown table from the rows' JSON files
    cross_table.py teacher RUNS/teacher-vit  the teacher run's numbers (JSON), for its table

Test top-1 at the best-by-validation epoch and at the last epoch, mean +- sample std over seeds,
and the mean training time of a seed's run. Standard library only."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from run_summary import cell, run_numbers  # noqa: E402

ORDER = ["alone", "kd", "fitnet", "at", "ofa", "cakd", "tat", "tat_ce1", "fourier", "fourier_nokd", "deit_hard",
         "cskd_alpha1", "cskd_ckf"]
LABELS = {"cskd_alpha1": "cskd, alpha fixed at 1", "cskd_ckf": "cskd with CKF (alpha 1 -> 0)",
          "alone": "student alone", "fourier_nokd": "fourier without kd",
          "cakd": "cakd (attention and GL terms, value term off)",
          "tat_ce1": "tat with the cross-entropy at weight 1"}


def teacher_of(seed_dir):
    """{"teacher": the first 16 hex digits of the teacher weights' SHA-256} where recorded."""
    path = pathlib.Path(seed_dir) / "teacher"
    return {"teacher": path.read_text().strip()} if path.exists() else {}


def row(row_dir):
    row_dir = pathlib.Path(row_dir)
    seeds = sorted(row_dir.glob("seed-*"), key=lambda p: int(p.name.split("-")[1]))
    runs = [dict(run_numbers(d), seed=int(d.name.split("-")[1]), **teacher_of(d)) for d in seeds]
    config = (seeds[0] / "config").read_text() if seeds else ""
    objectives = next((line.split("=", 1)[1].strip() for line in config.splitlines()
                       if line.strip().startswith("objectives")), "")
    print(json.dumps({"row": row_dir.name, "objectives": objectives, "runs": runs}, indent=1))


def teacher(run_dir):
    run_dir = pathlib.Path(run_dir)
    config = (run_dir / "config").read_text()
    spec = next((line.split("=", 1)[1].strip() for line in config.splitlines()
                 if line.strip().startswith("spec")), "")
    print(json.dumps(dict(run_numbers(run_dir), run=str(run_dir), spec=spec), indent=1))


def sort_key(name):
    student, _, method = name.rpartition("-") if "-" in name else ("", "", name)
    return (student, ORDER.index(method) if method in ORDER else len(ORDER), method)


def table(results_dir):
    rows = sorted(pathlib.Path(results_dir).glob("*.json"), key=lambda p: sort_key(p.stem))
    print("| row | objectives | test top-1 at best val epoch | test top-1 at last epoch "
          "| seconds per run | seeds |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for path in rows:
        r = json.loads(path.read_text())
        runs = r["runs"]
        student, _, method = r["row"].rpartition("-") if "-" in r["row"] else ("", "", r["row"])
        label = (student + " " if student else "") + LABELS.get(method, method)
        print(f"| {label} | `{r['objectives']}` | {cell([x['best_test'] for x in runs])} "
              f"| {cell([x['last_test'] for x in runs])} | {cell([x['seconds'] for x in runs], 0)} "
              f"| {len(runs)} |")


if __name__ == "__main__":
    commands = {"row": row, "table": table, "teacher": teacher}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2])
