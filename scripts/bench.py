"""Benchmark: the whole build at university scale, against the original loop
and a library recommender, side by side on the same data and machine.

    python scripts/bench.py                       # 20k, 200k and 2M enrollments
    python scripts/bench.py --sizes 200000 --skip-baseline --skip-peer

For each size it writes synthetic grades (rank-4 structure plus Gaussian noise
of a known sd, 20 grades per student, 500 courses), runs every stage of the
build as its own process (wall time and peak RSS per stage), then on the same
split trains the original workflow's loop (concat-linear model, DataLoader over
a TensorDataset, batch 256, Adam 1e-3, 10 epochs) and scikit-surprise's SVD (best
of 10/50/100 factors), and prints two tables (the build, then training) and
saves them as bench.json next to the --work folder (build/bench.json by default).
Linux only (it reads each stage's peak memory from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from coursedlc.dataset import Dataset  # noqa: E402
from coursedlc.settings import Layout  # noqa: E402
from coursedlc.synthetic import generate  # noqa: E402

STAGES = ("prepare", "train", "export", "convert", "quantize", "verify", "report")
NOISE = 5.0


# Runs one stage and reports the process's own peak RSS (VmHWM). The rusage
# of a child is no use here: Linux counts the parent's memory at fork time in
# the child's maximum, and this script holds the generated data and the peers.
STAGE_RUNNER = """
import sys
from coursedlc.__main__ import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    peak = next(line for line in status if line.startswith("VmHWM"))
sys.stderr.write("\\nPEAK_KB " + peak.split()[1] + "\\n")
sys.exit(code)
"""


def run_stage(stage: str, data: Path, out: Path) -> dict[str, float]:
    """One stage in its own process: wall seconds and peak RSS in MB."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    argv = [
        sys.executable,
        "-c",
        STAGE_RUNNER,
        stage,
        "--data",
        str(data),
        "--out",
        str(out),
        "--no-recommend-model",
    ]
    started = time.perf_counter()
    # Our interpreter, our arguments, no shell.
    done = subprocess.run(  # noqa: S603
        argv, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{done.stderr[-2000:]}")
    peak = int(done.stderr.rsplit("PEAK_KB ", 1)[1].split()[0])
    return {"seconds": seconds, "peak_rss_mb": peak / 1024}


def baseline(layout: Layout, epochs: int = 10) -> dict[str, Any]:
    """The original workflow's training loop, as described, on our split."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    data = Dataset.load(layout)
    users, courses, grades = data.part("train")
    t_users, t_courses, t_grades = data.part("test")
    torch.manual_seed(0)

    class Original(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user = nn.Embedding(len(data.students), 16)
            self.course = nn.Embedding(len(data.courses), 16)
            self.linear = nn.Linear(32, 1)

        def forward(self, u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return self.linear(torch.cat([self.user(u), self.course(c)], 1))

    model = Original()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(
        TensorDataset(
            torch.from_numpy(users).long(),
            torch.from_numpy(courses).long(),
            torch.from_numpy(grades / 10).float(),
        ),
        batch_size=256,
        shuffle=True,
    )
    per_epoch = []
    for _ in range(epochs):
        started = time.perf_counter()
        for u, c, y in loader:
            optimizer.zero_grad()
            loss = ((model(u, c)[:, 0] - y) ** 2).mean()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        with torch.no_grad():
            pred = (
                model(
                    torch.from_numpy(t_users).long(), torch.from_numpy(t_courses).long()
                )[:, 0].numpy()
                * 10
            )
        rmse = float(np.sqrt(np.mean((pred - t_grades) ** 2)))
        per_epoch.append({"seconds": seconds, "test_rmse": rmse})
    return {
        "seconds_per_epoch": float(np.mean([e["seconds"] for e in per_epoch])),
        "samples_per_second": len(grades)
        / float(np.mean([e["seconds"] for e in per_epoch])),
        "test_rmse_by_epoch": [e["test_rmse"] for e in per_epoch],
    }


def peer(layout: Layout) -> dict[str, Any] | None:
    """scikit-surprise's SVD, best of 10/50/100 factors, its defaults otherwise."""
    try:
        from surprise import SVD, Reader
        from surprise import Dataset as SDataset
    except ImportError:
        return None
    import pandas as pd

    data = Dataset.load(layout)
    users, courses, grades = data.part("train")
    t_users, t_courses, t_grades = data.part("test")
    frame = pd.DataFrame({"u": users, "c": courses, "g": grades})
    trainset = SDataset.load_from_df(
        frame, Reader(rating_scale=(data.grade_min, data.grade_max))
    ).build_full_trainset()
    best = None
    search = 0.0
    for factors in (10, 50, 100):
        started = time.perf_counter()
        algo = SVD(n_factors=factors, random_state=0)
        algo.fit(trainset)
        seconds = time.perf_counter() - started
        search += seconds
        pred = np.array(
            [
                algo.predict(u, c).est
                for u, c in zip(t_users.tolist(), t_courses.tolist(), strict=True)
            ]
        )
        rmse = float(np.sqrt(np.mean((pred - t_grades) ** 2)))
        if best is None or rmse < best["test_rmse"]:
            best = {"n_factors": factors, "test_rmse": rmse, "fit_seconds": seconds}
    if best is not None:
        best["search_fit_seconds"] = search
    return best


def bench_size(
    enrollments: int, root: Path, skip_baseline: bool, skip_peer: bool
) -> dict[str, Any]:
    students = enrollments // 20
    data = root / f"grades-{enrollments}.json"
    started = time.perf_counter()
    data.write_text(
        json.dumps(
            generate(
                students=students,
                courses=500,
                per_student=20,
                rank=4,
                noise=NOISE,
                seed=1,
            )
        )
    )
    print(
        f"{enrollments}: data written in {time.perf_counter() - started:.1f}s "
        f"({data.stat().st_size / 1e6:.0f} MB)",
        flush=True,
    )
    out = root / f"build-{enrollments}"
    stages = {}
    for stage in STAGES:
        stages[stage] = run_stage(stage, data, out)
        print(
            f"  {stage}: {stages[stage]['seconds']:.1f}s, "
            f"{stages[stage]['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    layout = Layout(out)
    metrics = json.loads(layout.metrics.read_text())
    verify = json.loads(layout.verify.read_text())
    result: dict[str, Any] = {
        "enrollments": enrollments,
        "noise": NOISE,
        "stages": stages,
        "build_seconds": sum(s["seconds"] for s in stages.values()),
        "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values()),
        "train_samples_per_second": metrics["training"]["samples_per_second"],
        "epochs": metrics["training"]["epochs_run"],
        # ALS tries several strengths, each but the first warm-started: the
        # per-epoch comparison uses the first, which starts from scratch.
        "epochs_all": sum(
            run["epochs_run"] for run in metrics["training"].get("l2_search", [])
        )
        or metrics["training"]["epochs_run"],
        "history_rmse": (
            metrics["training"]["l2_search"][0]["validation_rmse_by_epoch"]
            if "l2_search" in metrics["training"]
            else [h["validation_rmse"] for h in metrics["history"]]
        ),
        "fit_seconds": metrics["training"]["seconds"],
        "float_test_rmse": metrics["rmse"]["test"],
        "global_mean_rmse": metrics["baseline_global_mean_rmse"]["test"],
        "int8_test_rmse": verify["int8_rmse"],
        "float_dlc_mb": layout.float_dlc.stat().st_size / 1e6,
        "int8_dlc_mb": layout.int8_dlc.stat().st_size / 1e6,
    }
    if not skip_baseline:
        print("  original loop ...", flush=True)
        result["original"] = baseline(layout)
    if not skip_peer:
        print("  surprise SVD ...", flush=True)
        result["peer_svd"] = peer(layout)
        if result["peer_svd"] is None:
            print(
                "  scikit-surprise is not installed: "
                "python -m pip install -r requirements/bench.txt",
                flush=True,
            )
    return result


def table(results: list[dict[str, Any]]) -> str:
    """The benchmark as two Markdown tables: the build, then training."""
    stage_names = " | ".join(STAGES)
    rows = [
        f"| enrollments | build s | {stage_names} | peak RSS MB | DLC MB float/int8 |",
        "|" + "---:|" * (len(STAGES) + 4),
    ]
    for r in results:
        stages = r["stages"]
        rows.append(
            f"| {r['enrollments']:,} | {r['build_seconds']:.1f} | "
            + " | ".join(f"{stages[name]['seconds']:.1f}" for name in STAGES)
            + f" | {r['peak_rss_mb']:.0f} | "
            f"{r['float_dlc_mb']:.2f}/{r['int8_dlc_mb']:.2f} |"
        )
    rows += [
        "",
        "| enrollments | train samples/s | original loop samples/s | ratio | "
        "epochs (all runs) | test RMSE | int8 | global mean | noise sd | "
        "ours @10 ep (val, first run) | "
        "original @10 ep (test) | SVD RMSE | ours/SVD | fit s, ours | "
        "fit s, SVD (best; all 3) |",
        "|" + "---:|" * 15,
    ]
    for r in results:
        orig = r.get("original")
        svd = r.get("peer_svd")
        ours10 = r["history_rmse"][min(9, len(r["history_rmse"]) - 1)]
        speed = r["train_samples_per_second"]
        rows.append(
            f"| {r['enrollments']:,} | {speed:,.0f} | "
            + (
                f"{orig['samples_per_second']:,.0f} | "
                f"{speed / orig['samples_per_second']:.0f}x | "
                if orig
                else "- | - | "
            )
            + f"{r['epochs']} ({r['epochs_all']}) | {r['float_test_rmse']:.3f} | "
            f"{r['int8_test_rmse']:.3f} | {r['global_mean_rmse']:.3f} | "
            f"{r['noise']:.1f} | {ours10:.3f} | "
            + (f"{orig['test_rmse_by_epoch'][-1]:.3f} | " if orig else "- | ")
            + (
                f"{svd['test_rmse']:.3f} | "
                f"{r['float_test_rmse'] / svd['test_rmse']:.2f} | "
                if svd
                else "- | - | "
            )
            + f"{r['fit_seconds']:.1f} | "
            + (
                f"{svd['fit_seconds']:.1f}; {svd['search_fit_seconds']:.1f} |"
                if svd
                else "- |"
            )
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[20_000, 200_000, 2_000_000],
        help="enrollments per run",
    )
    p.add_argument(
        "--skip-baseline",
        action="store_true",
        help="do not run the original training loop",
    )
    p.add_argument(
        "--skip-peer", action="store_true", help="do not run scikit-surprise's SVD"
    )
    p.add_argument(
        "--work",
        type=Path,
        default=REPO / "build" / "bench",
        help="folder for data and builds",
    )
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = [
        bench_size(n, args.work, args.skip_baseline, args.skip_peer) for n in args.sizes
    ]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    report = {"machine": machine, "results": results}
    (args.work.parent / "bench.json").write_text(json.dumps(report, indent=2))
    print(f"\n{machine}\n\n{table(results)}")


if __name__ == "__main__":
    main()
