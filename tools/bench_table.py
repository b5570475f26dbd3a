"""tools/bench_table.py: the markdown tables of tools/bench-cpu.sh, from its JSON lines.

Reads the records `retort bench ... --json` and tools/peer_bench.py print (one JSON object per
line; a record with a "peer" key is PyTorch's) and prints:
  - the FMA peak retort measured;
  - workload | retort img/s | PyTorch img/s | ratio | retort peak MiB | PyTorch peak MiB,
    one row per training step (`model --train`), forward and KD step, retort and PyTorch
    matched on the model(s), mode, batch, input and threads; ratio = retort / PyTorch;
  - shape | retort GFLOP/s | % of peak | OpenBLAS AVX-512 | PyTorch (env as is) [| system BLAS],
    the PyTorch GEMM records told apart by their "tag" (openblas-avx512, as-is, system);
  - what each PyTorch column ran on (the records' "peer" text).
A measurement missing from the file (a run that failed) shows as "-".

  python3 tools/bench_table.py [tools/results/bench-cpu.jsonl]
"""
import json
import sys

GEMM_PEER_COLUMNS = [("openblas-avx512", "OpenBLAS AVX-512 GFLOP/s"),
                     ("as-is", "PyTorch (env as is) GFLOP/s"),
                     ("system", "PyTorch (system BLAS) GFLOP/s")]


def read_records(path):
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit("bench_table: %s:%d is not JSON (%s)" % (path, number, e))
    return records


def fmt(value, decimals=1):
    return "-" if value is None else "%.*f" % (decimals, value)


def step_key(r):
    """What a retort record and its PyTorch twin share."""
    if r["workload"] == "model":
        return ("model", r["model"], r["mode"], r["batch"], r["input"], r["threads"],
                r.get("device", "cpu") + ("" if r.get("precision", "f32") == "f32" else ", " + r["precision"])
                + (", fused attention" if r.get("attention") == "fused" else "")
                + (", depthwise kernel" if r.get("conv") == "cudnn, depthwise kernel" else "")
                + (", %d ranks" % r["ranks"] if r.get("ranks", 1) > 1 else "")
                + (", PyTorch " + r["variant"] if r.get("variant") else ""))
    return ("kd", r["teacher"], r["student"], r["batch"], r["input"], r["threads"],
            r.get("device", "cpu") + ("" if r.get("precision", "f32") == "f32" else ", " + r["precision"]))


def step_label(key):
    device = "" if key[-1] == "cpu" else " (%s)" % key[-1]
    if key[0] == "model":
        _, model, mode, batch, size, _, _ = key
        return "%s %s%s" % ("train" if mode == "train" else "forward", model, device)
    _, teacher, student, batch, size, _, _ = key
    return "KD %s -> %s%s" % (teacher, student, device)


def step_table(records):
    rows, order = {}, []
    for r in records:
        if r.get("workload") not in ("model", "kd"):
            continue
        key = step_key(r)
        if key not in rows:
            rows[key] = {}
            order.append(key)
        rows[key]["pytorch" if "peer" in r else "retort"] = r
    if not order:
        return []
    lines = ["| workload | retort img/s | PyTorch img/s | ratio | retort peak MiB | PyTorch peak MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    batch, size, threads = order[0][3], order[0][4], order[0][5]
    for key in order:
        ours, theirs = rows[key].get("retort", {}), rows[key].get("pytorch", {})
        a, b = ours.get("img_per_s"), theirs.get("img_per_s")
        ratio = "%.2fx" % (a / b) if a and b else "-"
        label = step_label(key)
        if (key[3], key[4]) != (batch, size):  # not the batch and input the footer names
            label += " [batch %s, %s]" % (key[3], key[4])
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            label, fmt(a), fmt(b), ratio, fmt(ours.get("peak_mib"), 0),
            fmt(theirs.get("peak_mib"), 0)))
    lines.append("")
    lines.append("Batch %s, input %s, %s threads; img/s of whole steps (3 warm-up steps, then timed "
                 "ones on one fixed batch); peak MiB: resident memory above the idle process."
                 % (batch, size, threads))
    return lines


def gemm_table(records):
    rows, order, tags = {}, [], []
    for r in records:
        if r.get("workload") != "gemm":
            continue
        shape = r["shape"]
        if shape not in rows:
            rows[shape] = {}
            order.append(shape)
        tag = r.get("tag", "as-is") if "peer" in r else "retort"
        rows[shape][tag] = r
        if tag != "retort" and tag not in tags:
            tags.append(tag)
    if not order:
        return []
    columns = [(tag, title) for tag, title in GEMM_PEER_COLUMNS if tag in tags]
    lines = ["| shape | retort GFLOP/s | % of peak | " + " | ".join(t for _, t in columns) + " |",
             "| --- | ---: | ---: |" + " ---: |" * len(columns)]
    for shape in order:
        ours = rows[shape].get("retort", {})
        cells = [fmt(rows[shape].get(tag, {}).get("gflops")) for tag, _ in columns]
        lines.append("| %s | %s | %s | %s |" % (shape, fmt(ours.get("gflops")),
                                               fmt(ours.get("pct_of_peak"), 0), " | ".join(cells)))
    return lines


def legend(records):
    """Which PyTorch and BLAS each PyTorch column ran on, and retort's GEMM kernel."""
    lines, seen = [], set()
    for r in records:
        if r.get("workload") == "gemm" and "peer" not in r and "retort-gemm" not in seen:
            seen.add("retort-gemm")
            lines.append("- retort GEMM: %s kernel, %s threads" % (r["kernel"], r["threads"]))
    for r in records:
        if "peer" not in r:
            continue
        what = "GEMM " + r.get("tag", "as-is") if r["workload"] == "gemm" else "model and KD steps"
        if what not in seen:
            seen.add(what)
            lines.append("- PyTorch %s: %s" % (what, r["peer"]))
    return lines


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tools/results/bench-cpu.jsonl"
    records = read_records(path)
    out = []
    peaks = [r for r in records if r.get("workload") == "peak"]
    if peaks:
        p = peaks[0]
        out += ["FMA peak (retort bench peak): %s GFLOP/s, %s, %s threads"
                % (fmt(p["gflops"]), p["isa"], p["threads"]), ""]
    for table in (step_table(records), gemm_table(records)):
        if table:
            out += table + [""]
    out += legend(records)
    print("\n".join(out).rstrip())


if __name__ == "__main__":
    main()
