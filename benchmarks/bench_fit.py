"""Training speed: ms per epoch of sktorch_auto against a hand-written loop and peers.

Run ``python benchmarks/bench_fit.py`` (options: ``--n``, ``--epochs``, ``--batch-sizes``,
``--repeats``, ``--skip-memory``; ``--mixed`` runs the real-table section instead: a
DataFrame of 100,000 rows with 20 numeric and 10 categorical columns of 3 to 1,000
categories, with gaps, against the same estimator on its one-hot-encoded numeric version,
plus encoding times and peak memory). All contenders train the same plain MLP
(``numeric_embedding=None`` for sktorch_auto; d -> 64 -> 64 -> 1)
on the same float32 data in one process. Reported per epoch: total fit time divided by the
epochs run (the best of ``--repeats`` runs). sktorch_auto's numbers include its validation
pass, input standardisation and best-version tracking; the others do no validation at all.
The estimator runs with a fixed learning rate; the range test of ``learning_rate='auto'``
(once per fit) is timed separately.

Not a test: nothing here asserts timings.
"""

import argparse
import gc
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sktorch_auto import PytorchTrainer, TorchRegressor
from sktorch_auto.core.data import ArrayDataset


def mlp(d):
    return nn.Sequential(nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1))


def hand_loop(X, y, batch_size, epochs):
    """The floor: random permutation, tensor indexing, Adam, no validation."""
    net = mlp(X.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n = len(X)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
    return epochs


def dataloader_loop(X, y, batch_size, epochs):
    """The same loop through TensorDataset + DataLoader (per-sample fetch and collate)."""
    net = mlp(X.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(xb), yb)
            loss.backward()
            opt.step()
    return epochs


def trainer_core(X, y, batch_size, epochs):
    trainer = PytorchTrainer(mlp, [X.shape[1]], device="cpu")
    trainer.train(ArrayDataset(X, y), name=None, batch_size=batch_size, n_epochs=epochs,
                  verbose=False)
    return len(trainer.history)


def estimator(X, y, batch_size, epochs):
    # A fixed rate: the per-fit range test of learning_rate='auto' is timed on its own.
    reg = TorchRegressor(batch_size=batch_size, n_epochs=epochs, device="cpu", random_state=0,
                         learning_rate=1e-3, hidden_layer_sizes=(64, 64), activation="relu",
                         numeric_embedding=None)  # the peers' plain MLP
    reg.fit(X.numpy(), y.numpy().ravel())
    return reg.n_iter_


def sklearn_mlp(X, y, batch_size, epochs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    reg = MLPRegressor(hidden_layer_sizes=(64, 64), batch_size=batch_size, max_iter=epochs,
                       tol=0, n_iter_no_change=epochs + 1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X.numpy(), y.numpy().ravel())
    return reg.n_iter_


def skorch_net(X, y, batch_size, epochs):
    from skorch import NeuralNetRegressor

    net = NeuralNetRegressor(mlp(X.shape[1]), max_epochs=epochs, batch_size=batch_size,
                             optimizer=torch.optim.Adam, lr=1e-3, train_split=None,
                             verbose=0)
    net.fit(X.numpy(), y.numpy())
    return epochs


def have_skorch():
    try:
        import skorch  # noqa: F401
    except ImportError:
        return False
    return True


def per_epoch_ms(fn, X, y, batch_size, epochs, repeats):
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        torch.manual_seed(0)
        start = time.perf_counter()
        ran = fn(X, y, batch_size, epochs)
        best = min(best, (time.perf_counter() - start) / ran * 1000)
    return best


def prediction(n_rows, d, repeats):
    """Rows per second of predict on n_rows: the estimator against a hand-written loop."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, d), dtype=np.float32)
    reg = TorchRegressor(n_epochs=1, device="cpu", random_state=0, numeric_embedding=None,
                         hidden_layer_sizes=(64, 64), activation="relu").fit(X, X[:, 0])
    big = rng.standard_normal((n_rows, d), dtype=np.float32)
    net = reg.net_

    def hand():
        with torch.inference_mode():
            t = torch.from_numpy(big)
            return torch.cat([net(t[i:i + 4096]) for i in range(0, len(t), 4096)]).numpy()

    timings = {}
    for name, fn in [("hand-written inference_mode loop", hand),
                     ("TorchRegressor.predict", lambda: reg.predict(big))]:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    return timings


def range_test_seconds(X, y, batch_size, repeats):
    """Seconds of learning_rate='auto''s range test on the benchmark data and network."""
    from sktorch_auto.core.batches import make_batches
    from sktorch_auto.core.criterion import MixedCriterion
    from sktorch_auto.core.lr_range import find_learning_rate

    dataset = ArrayDataset(X, y)
    batches = make_batches(dataset, np.arange(len(X)), batch_size, True, "cpu")
    criterion = MixedCriterion(dataset)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        find_learning_rate(mlp(X.shape[1]), criterion, batches)
        best = min(best, time.perf_counter() - start)
    return best


def optimizer_steps(d, batch_size, repeats, steps=1000):
    """Microseconds per optimizer step on the benchmark MLP: Adam against RAdam + Lookahead."""
    from sktorch_auto.core.optim import make_optimizer

    X, y = torch.randn(batch_size, d), torch.randn(batch_size, 1)
    makers = [("torch Adam (default)", lambda p: torch.optim.Adam(p, lr=1e-3)),
              ("torch RAdam (multi-tensor)", lambda p: torch.optim.RAdam(p, lr=1e-3,
                                                                         foreach=True)),
              ("sktorch_auto RAdam + Lookahead", lambda p: make_optimizer(p, 1e-3))]
    timings = {}
    for name, make in makers:
        net = mlp(d)
        opt = make(list(net.parameters()))
        nn.functional.mse_loss(net(X), y).backward()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                opt.step()
            best = min(best, (time.perf_counter() - start) / steps * 1e6)
        timings[name] = best
    return timings


MEMORY_SCRIPT = """
import sys, numpy as np, torch
from sktorch_auto import TorchRegressor

def peak_mib():  # the process's peak resident memory (VmHWM), reset by exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

n, d = int(sys.argv[1]), int(sys.argv[2])
TorchRegressor(n_epochs=1, device="cpu").fit(np.zeros((64, d), np.float32), np.zeros(64))
base = peak_mib()  # interpreter, torch and a first tiny fit
X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
y = X[:, 0].copy()
data = peak_mib()
TorchRegressor(n_epochs=1, batch_size=1024, device="cpu", random_state=0).fit(X, y)
print(base, data, peak_mib())
"""


def memory(n, d):
    """Peak resident memory (MiB) before the data, with it, and after a fit; fresh process."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(n), str(d)],
                         capture_output=True, text=True, check=True).stdout.split()
    return tuple(float(v) for v in out)


CARDINALITIES = (3, 5, 8, 12, 20, 50, 100, 200, 500, 1000)


def mixed_frame(n, seed=0):
    """20 numeric columns (some skewed) and 10 text columns of 3-1,000 categories, about
    5% gaps in each, and a target that depends on both kinds."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns, y = {}, np.zeros(n)
    for j in range(20):
        x = rng.normal(size=n) if j % 2 else np.exp(rng.normal(size=n))  # half skewed
        y += np.sin(x) if j < 10 else 0.1 * x
        columns[f"num{j}"] = np.where(rng.random(n) < 0.05, np.nan, x)
    for j, k in enumerate(CARDINALITIES):
        codes = rng.integers(0, k, size=n)
        y += rng.normal(size=k)[codes] * 0.5
        labels = np.array([f"c{j}_{i}" for i in range(k)], dtype=object)[codes]
        labels[rng.random(n) < 0.05] = None
        columns[f"cat{j}"] = labels
    return pd.DataFrame(columns), y + rng.normal(scale=0.3, size=n)


def one_hot_version(df):
    """The hand-written preprocessing: median imputation with indicators and one-hot
    (dense float32), as a user would write it without the table support."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c in df.columns if c.startswith("num")]
    text = [c for c in df.columns if c.startswith("cat")]
    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median", add_indicator=True), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False,
                              dtype=np.float32), text)])
    return pre


MIXED_MEMORY_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
from bench_fit import mixed_frame
from sktorch_auto import TorchRegressor

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

df, y = mixed_frame(200)
TorchRegressor(n_epochs=1, device="cpu").fit(df, y)
base = peak_mib()
df, y = mixed_frame(int(sys.argv[1]))
data = peak_mib()
reg = TorchRegressor(n_epochs=1, learning_rate=1e-3, device="cpu", random_state=0).fit(df, y)
numeric, codes = reg.encoder_.transform(df.head(1))
encoded = len(df) * (numeric.shape[1] * 4 + codes.shape[1] * 8) / 2**20
print(base, data, peak_mib(), encoded)
"""


def mixed(n, epochs, repeats):
    """Fit time per epoch, encoding times and memory on a mixed table."""
    from sklearn.preprocessing import OrdinalEncoder

    from sktorch_auto.estimators.table import TableEncoder

    df, y = mixed_frame(n)
    print(f"mixed table: {n:,} rows, 20 numeric + 10 text columns of "
          f"{CARDINALITIES[0]}-{CARDINALITIES[-1]:,} categories, ~5% gaps each\n")

    def best(fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    rows = np.arange(int(0.9 * n))
    encoder = TableEncoder().fit(df, rows)
    print("encoding (seconds, best of repeats):")
    fit_s = best(lambda: TableEncoder().fit(df, rows))
    print(f"  TableEncoder.fit on the training rows    {fit_s:.3f}")
    print(f"  TableEncoder.transform, {n:,} rows      {best(lambda: encoder.transform(df)):.3f}")
    text = df[[c for c in df.columns if c.startswith("cat")]].astype(object)
    text = text.where(text.notna(), "missing")
    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(text)
    print(f"  (scikit-learn OrdinalEncoder.transform of the 10 text columns "
          f"{best(lambda: ordinal.transform(text)):.3f})")
    pre = one_hot_version(df)
    start = time.perf_counter()
    dense = pre.fit_transform(df).astype(np.float32)
    print(f"  (ColumnTransformer one-hot fit_transform   {time.perf_counter() - start:.3f}; "
          f"{dense.shape[1]} columns, {dense.nbytes / 2**20:.0f} MiB)\n")

    def fit(X):
        reg = TorchRegressor(n_epochs=epochs, tol=0.0, learning_rate=1e-3, device="cpu",
                             random_state=0, numeric_embedding=None)  # the same network
        start = time.perf_counter()
        reg.fit(X, y)
        total = time.perf_counter() - start
        return total / reg.n_iter_, reg.history_[-1]["seconds"] / reg.n_iter_, reg

    raw = min((fit(df) for _ in range(repeats)), key=lambda r: r[0])
    hot = min((fit(dense) for _ in range(repeats)), key=lambda r: r[0])
    batch = raw[2].get_params()["batch_size"]
    print(f"TorchRegressor.fit, {epochs} epochs, batch {batch}: ms per epoch "
          "(whole fit / epochs; training loop only)")
    print(f"  the DataFrame as it is (embeddings)       {raw[0] * 1e3:8.1f}  {raw[1] * 1e3:8.1f}")
    print(f"  its one-hot numeric version (dense)       {hot[0] * 1e3:8.1f}  {hot[1] * 1e3:8.1f}")
    print(f"  ratio                                     {raw[0] / hot[0]:8.2f}  "
          f"{raw[1] / hot[1]:8.2f}")
    print(f"  (validation R^2 after {epochs} epochs: {raw[2].validation_score_:.3f} on the "
          f"DataFrame, {hot[2].validation_score_:.3f} one-hot)\n")
    start = time.perf_counter()
    raw[2].predict(df)
    print(f"predict on the {n:,}-row DataFrame: {time.perf_counter() - start:.3f} s "
          "(encoding included)")

    out = subprocess.run([sys.executable, "-c", MIXED_MEMORY_SCRIPT, str(n),
                          os.path.dirname(os.path.abspath(__file__))],
                         capture_output=True, text=True, check=True).stdout.split()
    base, data, peak, encoded = (float(v) for v in out)
    print(f"peak memory of fit: {peak - data:.0f} MiB over the interpreter, torch and the "
          f"DataFrame ({data - base:.0f} MiB) = {(peak - data) / encoded:.2f}x the encoded "
          f"data ({encoded:.0f} MiB: float32 numeric inputs + int64 codes); "
          f"{(peak - base) / encoded:.2f}x counting the DataFrame too")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 128, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--mixed", action="store_true",
                        help="the real-table section only (uses --repeats; 5 epochs)")
    args = parser.parse_args()
    if args.mixed:
        mixed(100_000, 5, args.repeats)
        return

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"data: {args.n} x {args.d} float32, MLP {args.d}-64-64-1, {args.epochs} epochs, "
          f"best of {args.repeats}\n")
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(args.n, args.d)).astype(np.float32))
    y = (X[:, :1] * 2 + torch.sin(X[:, 1:2])).contiguous()
    contenders = [
        ("hand-written loop (floor)", hand_loop),
        ("TensorDataset + DataLoader loop", dataloader_loop),
        ("sktorch_auto PytorchTrainer", trainer_core),
        ("sktorch_auto TorchRegressor.fit", estimator),
        ("scikit-learn MLPRegressor", sklearn_mlp),
    ]
    if have_skorch():
        contenders.append(("skorch NeuralNetRegressor", skorch_net))
    for batch_size in args.batch_sizes:
        print(f"batch {batch_size}: ms/epoch (ratio to the floor)")
        floor = None
        for name, fn in contenders:
            ms = per_epoch_ms(fn, X, y, batch_size, args.epochs, args.repeats)
            floor = floor or ms
            print(f"  {name:34s} {ms:9.1f}  ({ms / floor:.2f}x)")
        print()

    print("learning_rate='auto' range test (100 steps, once per fit): seconds")
    for batch_size in args.batch_sizes:
        print(f"  batch {batch_size:<5d} {range_test_seconds(X, y, batch_size, args.repeats):.3f}")
    print()

    print("optimizer step on the MLP's parameters: microseconds")
    for name, us in optimizer_steps(args.d, 128, args.repeats).items():
        print(f"  {name:34s} {us:9.1f}")
    print()

    timings = prediction(1_000_000, args.d, args.repeats)
    hand = timings["hand-written inference_mode loop"]
    print("predict on 1,000,000 rows: seconds (ratio to the hand-written loop)")
    for name, seconds in timings.items():
        print(f"  {name:34s} {seconds:9.3f}  ({seconds / hand:.2f}x)")

    if not args.skip_memory:
        n_mem = 1_000_000
        base, data, peak = memory(n_mem, args.d)
        size = n_mem * args.d * 4 / 2**20
        print(f"\npeak memory of TorchRegressor.fit on {n_mem:,} x {args.d} float32 rows "
              f"({size:.0f} MiB of data): {peak - base:.0f} MiB over the interpreter + torch "
              f"baseline of {base:.0f} MiB = {(peak - base) / size:.2f}x the data "
              f"(the data itself: {data - base:.0f} MiB)")

if __name__ == "__main__":
    main()
