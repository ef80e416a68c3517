"""Performance benchmark: every performance target, measured on this machine, with a verdict per row.

    .venv/bin/python -m benchmarks.bench           # how long each takes: benchmarks/README.md
    .venv/bin/python -m benchmarks.bench --full    # plus a from-scratch `dvc repro` in a clone

Accuracy rows read the committed results of record (``metrics/compare/comparison.json``, written by
a real ``dvc repro`` of the defaults). Training throughput, FLOP efficiency and the plain-Keras
ratio are measured here, in one process, on the real preprocessed data. Run it with nothing else
on the machine. Writes ``metrics/benchmark.json`` (git-tracked: ``dvc metrics diff`` shows
performance changes) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fmnist.all_params import load_params
from fmnist.config.params import family_config
from fmnist.data.splits import PROCESSED_DIR, load_split
from fmnist.docs import benchmark_table as table
from fmnist.evaluation.inference import images_per_second, median_latency_ms
from fmnist.models import families, model_path, saving
from fmnist.models.cost import training_flops_per_image
from fmnist.quick_profile import QUICK_PROFILE
from fmnist.training import inputs, loop
from fmnist.utils import runtime
from fmnist.utils.atomic import write_json

ROOT = Path(__file__).resolve().parent.parent
COMPARE = ROOT / "metrics/compare/comparison.json"
EVALUATED = ROOT / "metrics/evaluate"
OUT = ROOT / "metrics/benchmark.json"
LATENCY_RUNS = 200  # single-image predictions behind each median latency


def peak_gflops(n: int = 4096, repeats: int = 10) -> float:
    """The machine's fp32 matmul rate: the denominator of FLOP efficiency."""
    a, b = tf.random.normal((n, n), seed=1), tf.random.normal((n, n), seed=2)
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        matmul().numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def epoch_seconds(fit: Any) -> float:
    """Wall time of the one epoch ``fit`` runs, from the epoch's first batch to its end (not fit's set-up)."""

    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            times.append(time.perf_counter() - self.start)

    fit(Timer())
    return times[0]


def side_by_side(runs: dict[str, Any], rounds: int) -> dict[str, float]:
    """Median epoch seconds of each run, timed in alternating order over ``rounds`` rounds.

    A first, untimed round traces the graphs and fills caches. Alternating who goes first cancels
    the drift of a machine warming up, which decided the ratio of one-second epochs run once each.
    """
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds + 1):
        for name in list(runs)[:: 1 if r % 2 else -1]:
            elapsed = epoch_seconds(runs[name])
            if r:
                seconds[name].append(elapsed)
    return {name: float(np.median(times)) for name, times in seconds.items()}


def throughput(family: str, images: int, rounds: int) -> dict[str, float]:
    """Training images/s of the pipeline's input path and callbacks, and of plain ``fit`` on NumPy arrays."""

    cfg = family_config(load_params(ROOT / "params.yaml"), family)
    x, y = load_split(ROOT / PROCESSED_DIR, "train")
    x, y = (x[:images], y[:images]) if images else (x, y)
    steps = math.ceil(len(x) / cfg["batch_size"])

    def fresh(steps_per_execution: int) -> Any:
        keras.utils.set_random_seed(cfg["seed"])
        model = families.build(family, cfg)
        loop.compile_model(model, cfg, steps, steps_per_execution)
        return model

    # Plain is what the seeds do: Keras' default of one step per execution, no callbacks, arrays into fit.
    ours_model, plain_model = fresh(loop.STEPS_PER_EXECUTION), fresh(1)
    ds = inputs.training_batches(x, y, cfg, cfg["batch_size"])
    callbacks = loop.callbacks(cfg)
    onehot = keras.utils.to_categorical(y, 10)
    seconds = side_by_side(
        {
            "ours": lambda t: ours_model.fit(ds, epochs=1, callbacks=[*callbacks, t], shuffle=False, verbose=0),
            "plain": lambda t: plain_model.fit(
                x, onehot, batch_size=cfg["batch_size"], epochs=1, callbacks=[t], verbose=0
            ),
        },
        rounds,
    )
    return {
        "ours_images_per_second": len(x) / seconds["ours"],
        "plain_images_per_second": len(x) / seconds["plain"],
        "ratio": seconds["plain"] / seconds["ours"],
        "training_flops_per_image": training_flops_per_image(ours_model),
        "augment": cfg["augment"],
    }


def inference(family: str, batch_size: int) -> dict[str, float]:
    """Test-set prediction throughput at ``evaluate.batch_size`` and the median single-image latency
    of the pipeline's trained model (information, not a target)."""

    model = saving.load_model(ROOT / model_path(family))
    x, _ = load_split(ROOT / PROCESSED_DIR, "test")
    return {
        "images_per_second": round(images_per_second(model, x, batch_size), 1),
        "latency_ms": round(median_latency_ms(model, x, LATENCY_RUNS), 3),
    }


def venv_env() -> dict[str, str]:
    """The environment with this interpreter's ``bin`` first, so ``dvc`` and the stages run in the venv."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def require_up_to_date(root: Path) -> None:
    """Refuse in one line unless ``root``'s pipeline is built: the no-op and throughput rows measure its outputs."""
    if subprocess.run(["dvc", "status", "--quiet"], cwd=root, env=venv_env()).returncode:
        raise SystemExit(
            f"error: the pipeline in {root} is not up to date ('dvc status' lists what changed); "
            "run 'make run' first, then the benchmark"
        )


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=venv_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"error: '{' '.join(cmd)}' failed in {cwd}: {(result.stderr or result.stdout)[-500:]}")
    return seconds


def clone(to: Path) -> Path:
    """A fresh git clone of the committed project, with its own empty DVC cache."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(to)], check=True)
    return to


def row(what: str, target: str, value: float | None, shown: str, met: bool | None) -> dict[str, Any]:
    verdict = "not measured" if met is None else ("met" if met else "NOT met")
    return {"row": what, "target": target, "value": value, "shown": shown, "verdict": verdict}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time a from-scratch dvc repro in a clone")
    parser.add_argument("--images", type=int, default=0, help="training images per throughput epoch; 0: all")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each side, alternating")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    require_up_to_date(ROOT)
    params = load_params()
    families = list(params["families"])
    runtime.configure(params["train"])
    rows = []

    record = json.loads(COMPARE.read_text())
    accuracy = {f["family"]: f for f in record["families"]}
    best = record["best"]
    rows.append(
        row(
            "best family, test accuracy",
            ">= 94.5%",
            best["test_accuracy"],
            f"{best['test_accuracy']:.2%} ({best['family']})",
            best["test_accuracy"] >= 0.945,
        )
    )
    mlp = accuracy["mlp"]["test_accuracy"]
    rows.append(row("mlp test accuracy", ">= 90.0%", mlp, f"{mlp:.2%}", mlp >= 0.90))
    alex = accuracy["alexnet"]
    rows.append(
        row(
            "alexnet test accuracy in <= 10 epochs",
            ">= 93.2%",
            alex["test_accuracy"],
            f"{alex['test_accuracy']:.2%} in {alex['epochs']} epochs",
            alex["test_accuracy"] >= 0.932 and alex["epochs"] <= 10,
        )
    )

    peak = peak_gflops()
    speeds = {family: throughput(family, args.images, args.rounds) for family in families}
    serving = {family: inference(family, params["evaluate"]["batch_size"]) for family in families}
    for family, s in speeds.items():
        rows.append(
            row(
                f"{family} training throughput vs plain fit",
                ">= 1.0x",
                s["ratio"],
                f"{s['ratio']:.2f}x ({s['ours_images_per_second']:,.0f} vs {s['plain_images_per_second']:,.0f} img/s"
                + (", ours augments" if s["augment"] else "")
                + ")",
                s["ratio"] >= 1.0,
            )
        )
    for family in families:  # test-time views: the gain, chosen on validation, beside the cost
        views = json.loads((EVALUATED / family / "scores.json").read_text())["views"]
        if views["name"] == "none":
            continue
        gain = views["val_accuracy"][views["name"]] - views["val_accuracy"]["none"]
        test_gain = accuracy[family]["test_accuracy"] - views["test_accuracy_one_view"]
        rate = serving[family]["images_per_second"] / views["forward_passes"]
        rows.append(
            row(
                f"{family} test-time views ({views['name']}), gain",
                "> 0 on validation",
                gain,
                f"{gain:+.2%} val, {test_gain:+.2%} test; {views['forward_passes']} passes: {rate:,.0f} img/s",
                gain > 0,
            )
        )
    cnn = speeds["cnn"]
    efficiency = cnn["training_flops_per_image"] * cnn["ours_images_per_second"] / (peak * 1e9)
    rows.append(
        row(
            "cnn training FLOP efficiency",
            ">= 40%",
            efficiency,
            f"{efficiency:.0%} ({cnn['training_flops_per_image'] / 1e6:.0f} MFLOP/img, peak {peak:.0f} GFLOP/s)",
            efficiency >= 0.40,
        )
    )

    noop = timed(["dvc", "repro"], ROOT)
    rows.append(row("no-op dvc repro", "<= 3 s", noop, f"{noop:.1f} s", noop <= 3))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "data/raw", work / "data/raw")
        shutil.copy(ROOT / "params.yaml", work / "params.yaml")
        pre = timed(
            [
                sys.executable,
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); "
                "from stages import preprocess; from fmnist.utils import errors; "
                "sys.exit(errors.run_stage(preprocess.main, []))",
                str(ROOT),
            ],
            work,
        )
        rows.append(row("preprocess stage", "<= 5 s", pre, f"{pre:.1f} s", pre <= 5))
        quick = timed(["dvc", "exp", "run", *QUICK_PROFILE], clone(work / "quick"))
        compared = json.loads((work / "quick" / COMPARE.relative_to(ROOT)).read_text())
        reached = [f["test_accuracy"] for f in compared["families"]]
        shown = f"{quick / 60:.1f} min ({min(reached):.0%} to {max(reached):.0%} test accuracy)"
        rows.append(row("quick profile, whole pipeline", "<= 3 min", quick, shown, quick <= 180))
        full = timed(["dvc", "repro"], clone(work / "full")) if args.full else None
        rows.append(
            row(
                "whole default dvc repro from scratch",
                "<= 30 min",
                full,
                f"{full / 60:.1f} min" if full else "run with --full",
                None if full is None else full <= 1800,
            )
        )

    write_json(
        OUT,
        {"rows": rows, "peak_gflops": peak, "throughput": speeds, "inference": serving, "quick_profile": QUICK_PROFILE},
    )
    print(table(rows))


if __name__ == "__main__":
    main()
