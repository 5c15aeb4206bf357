"""The command line, run as a user runs it: a subprocess (issue 6)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from sktorch_auto.cli import choose_task, main
from sktorch_auto.tabular import read_table

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, cwd):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "sktorch_auto", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def write_csv(path, columns):
    names = list(columns)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(zip(*(columns[n] for n in names)))
    return path


def table(n=150, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return {
        "a": a.round(4), "b": b.round(4),
        "price": (1000 + 50 * a - 30 * b).round(2),
        "sold": (a + b > 0).astype(int),
        "kind": np.where(a > 0, "big", "small"),
    }


def test_demo_trains_reports_a_baseline_and_writes_the_curve(tmp_path):
    result = run("demo", "--device", "cpu", "--plot", "curve.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "baseline" in result.stdout and "held-out R^2" in result.stdout
    cv = [x for x in result.stdout.splitlines() if x.startswith("5-fold cross-validated")]
    assert len(cv) == 1 and float(cv[0].split("sktorch_auto ")[1].split()[0]) > 0.3
    assert "epoch" in result.stderr + result.stdout  # progress is shown
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_fit_predict_info_round_trip_for_a_regression(tmp_path):
    data = table()
    write_csv(tmp_path / "train.csv", {k: data[k] for k in ("a", "b", "price")})
    fit = run("fit", "train.csv", "--target", "price", "--out", "m.skt", "--epochs", "30",
              "--quiet", "--seed", "1", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "task: regression" in fit.stdout and "validation R^2" in fit.stdout
    assert "(range test)" in fit.stdout  # the estimators' default learning_rate='auto'
    pred = run("predict", "m.skt", "train.csv", "--out", "pred.csv", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    out = read_table(tmp_path / "pred.csv")
    assert list(out) == ["price"] and len(out["price"]) == 150
    assert np.corrcoef(out["price"], data["price"])[0, 1] > 0.9
    info = run("info", "m.skt", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    for expected in ("TorchRegressor", "regression", "a, b", "price", "epochs",
                     "validation R^2"):
        assert expected in info.stdout


def test_string_target_is_classification_with_probabilities(tmp_path):
    data = table()
    write_csv(tmp_path / "d.csv", {k: data[k] for k in ("a", "b", "kind")})
    fit = run("fit", "d.csv", "--target", "kind", "--out", "c.skt", "--epochs", "30",
              "--quiet", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "task: classification" in fit.stdout
    proba = run("predict", "c.skt", "d.csv", "--out", "p.csv", "--proba", cwd=tmp_path)
    assert proba.returncode == 0, proba.stderr
    out = read_table(tmp_path / "p.csv")
    assert list(out) == ["proba_big", "proba_small"]
    np.testing.assert_allclose(out["proba_big"] + out["proba_small"], 1.0, atol=1e-6)
    labels = run("predict", "c.skt", "d.csv", "--out", "l.csv", cwd=tmp_path)
    assert labels.returncode == 0, labels.stderr
    predicted = read_table(tmp_path / "l.csv")["kind"]
    assert set(predicted) <= {"big", "small"}
    assert (predicted == np.asarray(data["kind"])).mean() > 0.8


def test_two_targets_with_a_binary_one_are_the_mixed_task(tmp_path):
    data = table()
    write_csv(tmp_path / "d.csv", {k: data[k] for k in ("a", "b", "price", "sold")})
    fit = run("fit", "d.csv", "--target", "price", "--target", "sold", "--out", "m.skt",
              "--epochs", "20", "--hidden", "16", "--batch-size", "32", "--lr", "0.01",
              "--tol", "0", "--quiet", "--plot", "curve.png", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "task: mixed" in fit.stdout
    assert "learning rate 0.01;" in fit.stdout and "range test" not in fit.stdout
    assert (tmp_path / "curve.png").exists()
    run("predict", "m.skt", "d.csv", "--out", "p.csv", cwd=tmp_path)
    out = read_table(tmp_path / "p.csv")
    assert list(out) == ["price", "sold"]
    assert ((out["sold"] >= 0) & (out["sold"] <= 1)).all()
    assert np.abs(out["price"] - 1000).mean() < 200  # original units


@pytest.mark.parametrize("make_args, message", [
    (lambda p: ["fit", "missing.csv", "--target", "y", "--out", "m.skt"], "cannot read"),
    (lambda p: ["fit", "d.csv", "--target", "nope", "--out", "m.skt"], "nope"),
    (lambda p: ["fit", "d.csv", "--target", "empty", "--out", "m.skt"], "empty target"),
    (lambda p: ["fit", "d.csv", "--target", "kind", "--out", "m.skt", "--epochs", "0"],
     "argument --epochs: expected a value at least 1"),
    (lambda p: ["fit", "d.csv", "--out", "m.skt"], "the following arguments are required"),
    (lambda p: ["fit", "d.csv", "--target", "kind", "--out", "m.skt", "--dropout", "2"],
     "argument --dropout"),
    (lambda p: ["predict", "d.csv", "d.csv", "--out", "x.csv"], "d.csv"),
    (lambda p: ["info", "nothing.skt"], "cannot read"),
    (lambda p: ["info", "d.csv"], "not an sktorch_auto model file"),
    (lambda p: ["fit", "d.csv", "--target", "price", "--out", "no/m.skt"], "does not exist"),
    (lambda p: ["fit", "d.csv", "--target", "price", "--out", "."], "is a folder"),
    (lambda p: ["fit", "d.csv", "--target", "price", "--out", "m.skt", "--plot", "no/c.png"],
     "does not exist"),
    (lambda p: ["fit", "d.csv", "--target", "price", "--out", "d.csv/m.skt"],
     "is not a folder"),
    (lambda p: ["fit", "d.csv", "--target", "price", "--out", ""], "empty path"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, make_args, message):
    data = table(n=40)
    write_csv(tmp_path / "d.csv", {**data, "empty": [""] * 40})
    result = run(*make_args(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert message in lines[0]
    assert "weights_only" not in result.stderr  # torch's advice to unpickle: not passed on
    if message in ("does not exist", "is a folder", "is not a folder", "empty path"):
        assert "task:" not in result.stdout


def messy_table(n=300, seed=0):
    """Text columns, empty cells in features and in a target, a skewed number."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Paris", "Lyon", "Nice"], size=n)
    area = np.exp(rng.normal(4, 0.5, size=n)).round(1)
    price = area * 3000 * np.select([city == "Paris", city == "Lyon"], [2.0, 1.2], 1.5)
    columns = {"area": area.astype(object), "city": city.astype(object),
               "garden": rng.choice(["yes", "no", ""], size=n).astype(object),
               "price": price.round().astype(object)}
    columns["area"][::9] = ""
    columns["price"][5] = ""
    return columns


def test_fit_predict_info_on_text_columns_and_empty_cells(tmp_path):
    write_csv(tmp_path / "houses.csv", messy_table())
    fit = run("fit", "houses.csv", "--target", "price", "--out", "m.skt", "--epochs", "40",
              "--quiet", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    assert "1 row(s) without a target left out" in fit.stdout
    assert "299 rows, 3 features" in fit.stdout
    assert "categorical: city (3 categories), garden (2 categories)" in fit.stdout
    write_csv(tmp_path / "new.csv", {"area": ["50", "", "80"], "city": ["Rome", "Paris", ""],
                                     "garden": ["yes", "maybe", "no"]})
    pred = run("predict", "m.skt", "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    out = read_table(tmp_path / "p.csv")
    assert len(out["price"]) == 3 and np.isfinite(out["price"]).all()
    info = run("info", "m.skt", cwd=tmp_path)
    assert "categorical columns: city (3 categories), garden (2 categories)" in info.stdout


def run_here(*args, cwd, capsys, monkeypatch):
    """``main`` in this process (no interpreter to start): (status, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_iso_date_columns_are_read_as_dates(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(3)
    days = rng.integers(0, 600, size=200)
    sold = (np.datetime64("2021-01-01") + days).astype(str).astype(object)
    weekend = ((days + 4) % 7 >= 5).astype(float)  # 2021-01-01 was a Friday
    price = 100 + 0.05 * days + 20 * weekend + rng.normal(size=200)
    sold[::13] = ""  # an empty cell: a gap
    write_csv(tmp_path / "sales.csv", {"sold": sold, "price": price.round(2)})
    here = dict(cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    status, out, err = run_here("fit", "sales.csv", "--target", "price", "--out", "m.skt",
                                "--epochs", "40", "--quiet", **here)
    assert status == 0, err
    assert "dates: sold (time, month, day, weekday)" in out
    assert "categorical:" not in out
    status, out, err = run_here("info", "m.skt", **here)
    assert "date columns: sold (time, month, day, weekday)" in out
    write_csv(tmp_path / "new.csv", {"sold": ["2022-09-03", "", "2022-09-05"]})
    status, out, err = run_here("predict", "m.skt", "new.csv", "--out", "p.csv", **here)
    assert status == 0, err
    assert np.isfinite(read_table(tmp_path / "p.csv")["price"]).all()


NO_PANDAS = """
import sys

class NoPandas:  # as if pandas were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("no pandas here")

sys.meta_path.insert(0, NoPandas())
from sktorch_auto.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_text_features_are_read_without_pandas_too(tmp_path):
    write_csv(tmp_path / "houses.csv", messy_table(n=120))
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", NO_PANDAS, "fit", "houses.csv", "--target",
                             "price", "--out", "m.skt", "--epochs", "3", "--quiet"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "city (3 categories), garden (2 categories)" in result.stdout


def test_proba_of_a_regression_model_is_refused(tmp_path):
    data = table(n=60)
    write_csv(tmp_path / "d.csv", {k: data[k] for k in ("a", "b", "price")})
    run("fit", "d.csv", "--target", "price", "--out", "m.skt", "--epochs", "2", "--quiet",
        cwd=tmp_path)
    result = run("predict", "m.skt", "d.csv", "--out", "p.csv", "--proba", cwd=tmp_path)
    assert result.returncode == 2 and "classification" in result.stderr


def test_missing_feature_column_at_predict_is_named(tmp_path, capsys):
    data = table(n=60)
    write_csv(tmp_path / "d.csv", {k: data[k] for k in ("a", "b", "price")})
    assert main(["fit", str(tmp_path / "d.csv"), "--target", "price", "--out",
                 str(tmp_path / "m.skt"), "--epochs", "2", "--quiet"]) == 0
    write_csv(tmp_path / "other.csv", {"a": data["a"]})
    assert main(["predict", str(tmp_path / "m.skt"), str(tmp_path / "other.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "b" in capsys.readouterr().err


def test_csv_is_read_without_pandas(tmp_path, monkeypatch):
    write_csv(tmp_path / "d.csv", {"x": [1.5, 2.0], "label": ["u", "v"]})
    with_pandas = read_table(tmp_path / "d.csv")
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    without = read_table(tmp_path / "d.csv")
    assert list(without) == ["x", "label"]
    np.testing.assert_array_equal(without["x"], with_pandas["x"])
    assert without["label"].tolist() == ["u", "v"]


def test_task_choice_from_the_target_columns():
    cols = {"r": np.array([0.5, 1.5, 2.5]), "b": np.array([0, 1, 1]),
            "s": np.array(["x", "y", "x"], dtype=object), "i": np.array([1, 2, 3])}
    assert choose_task(cols, ["r"]) == "regression"
    assert choose_task(cols, ["b"]) == "classification"
    assert choose_task(cols, ["s"]) == "classification"
    assert choose_task(cols, ["i"]) == "regression"
    assert choose_task(cols, ["i"], "classification") == "classification"
    assert choose_task(cols, ["r", "b"]) == "mixed"
    assert choose_task(cols, ["r", "i"]) == "regression"


def test_learning_rate_option_takes_auto_or_a_number(tmp_path):
    from sktorch_auto.cli import _estimator, _parser

    def estimator(*options):
        args = _parser().parse_args(["fit", "d.csv", "--target", "y", "--out", "m", *options])
        return _estimator("regression", args, verbose=False)

    from sktorch_auto import TorchRegressor

    assert estimator().get_params() == TorchRegressor(random_state=0, device="auto").get_params()
    assert estimator("--lr", "auto").learning_rate == "auto"
    chosen = estimator("--lr", "0.02", "--tol", "0", "--epochs", "7", "--batch-size", "8")
    assert (chosen.learning_rate, chosen.tol, chosen.n_epochs, chosen.batch_size) == (
        0.02, 0.0, 7, 8)
    with pytest.raises(SystemExit):
        estimator("--lr", "fast")


def test_model_options_reach_the_estimator():
    from sktorch_auto.cli import UsageError, _estimator, _parser

    def estimator(*options, features=("a", "b", "code")):
        args = _parser().parse_args(["fit", "d.csv", "--target", "y", "--out", "m", *options])
        return _estimator("classification", args, verbose=False, features=list(features))

    chosen = estimator("--numeric-embedding", "none", "--standardize", "standard",
                       "--dropout", "0.1", "--weight-decay", "1e-4", "--categorical", "code",
                       "--categorical", "a")
    params = chosen.get_params()
    assert (params["numeric_embedding"], params["standardize"], params["dropout"],
            params["weight_decay"]) == (None, "standard", 0.1, 1e-4)
    assert params["categorical_features"] == [0, 2]  # positions: no names without pandas
    assert estimator("--standardize", "none").standardize is None
    assert estimator("--numeric-embedding", "periodic").numeric_embedding == "periodic"
    assert estimator().get_params()["categorical_features"] == "auto"
    with pytest.raises(UsageError, match="--categorical names 'price', not a feature"):
        estimator("--categorical", "price")
    with pytest.raises(SystemExit):
        estimator("--standardize", "minmax")


@pytest.mark.parametrize("option, value, says", [
    ("--dropout", "1.5", "expected a value at least 0 and below 1, got '1.5'"),
    ("--dropout", "-0.1", "expected a value at least 0 and below 1"),
    ("--weight-decay", "-1", "expected a value at least 0, got '-1'"),
    ("--epochs", "0", "expected a value at least 1, got '0'"),
    ("--epochs", "2.5", "expected an integer, got '2.5'"),
    ("--batch-size", "-8", "expected a value at least 1"),
    ("--tol", "nan", "expected a value at least 0, got 'nan'"),
    ("--hidden", "0", "expected a value at least 1"),
    ("--lr", "0", "expected a positive number or 'auto', got '0'"),
    ("--lr", "inf", "expected a positive number or 'auto'"),
])
def test_bad_option_values_fail_before_the_file_is_read(capsys, option, value, says):
    # The file does not exist: the option is refused first, by argparse (status 2).
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "no_such_file.csv", "--target", "y", "--out", "m.skt", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {says}" in err and "no_such_file" not in err


def test_fit_says_which_inputs_got_numeric_embeddings(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(5)
    wide = {f"x{j}": rng.normal(size=80).round(3) for j in range(66)}
    wide["flag"] = rng.integers(0, 2, size=80)
    wide["y"] = (wide["x0"] + rng.normal(size=80)).round(3)
    write_csv(tmp_path / "wide.csv", wide)
    write_csv(tmp_path / "narrow.csv", {k: wide[k] for k in ("x0", "x1", "flag", "y")})
    write_csv(tmp_path / "flags.csv", {"flag": wide["flag"], "y": wide["y"]})
    said = {}
    for name in ("wide", "narrow", "flags"):
        status, out, err = run_here("fit", f"{name}.csv", "--target", "y", "--out", "m.skt",
                                    "--epochs", "3", "--quiet", cwd=tmp_path, capsys=capsys,
                                    monkeypatch=monkeypatch)
        assert status == 0, err
        said[name] = [line for line in out.splitlines()
                      if line.startswith("numeric embeddings")]
    assert said["narrow"] == ["numeric embeddings: periodic, on 2 of 3 numeric inputs"]
    assert said["wide"][0].startswith("numeric embeddings: none: more than 64 numeric inputs")
    assert said["flags"] == ["numeric embeddings: none: no numeric input has more than two "
                             "values"]


def test_integer_codes_declared_categorical_on_the_command_line(tmp_path, capsys,
                                                                monkeypatch):
    rng = np.random.default_rng(4)
    code = rng.integers(1, 6, size=200)
    effect = np.array([0, 5, -3, 8, 1, -6])[code]  # no order: a category, not a number
    write_csv(tmp_path / "c.csv", {"code": code, "x": rng.normal(size=200).round(3),
                                   "y": (effect + rng.normal(size=200)).round(3)})
    here = dict(cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    status, out, err = run_here("fit", "c.csv", "--target", "y", "--out", "m.skt",
                                "--epochs", "30", "--categorical", "code",
                                "--numeric-embedding", "none", "--quiet", **here)
    assert status == 0, err
    assert "categorical: code (5 categories)" in out
    assert "numeric embeddings" not in out  # --numeric-embedding none
    status, out, err = run_here("fit", "c.csv", "--target", "y", "--out", "m.skt",
                                "--categorical", "y", **here)
    assert status == 2 and "--categorical names 'y', not a feature" in err
    # --categorical adds to the columns that are categorical anyway (text columns)
    write_csv(tmp_path / "t.csv", {"code": code, "town": rng.choice(["a", "b"], size=200),
                                   "y": (effect + rng.normal(size=200)).round(3)})
    status, out, err = run_here("fit", "t.csv", "--target", "y", "--out", "m.skt",
                                "--epochs", "5", "--categorical", "code", "--quiet", **here)
    assert status == 0, err
    assert "categorical: code (5 categories), town (2 categories)" in out


def test_class_names_with_commas_are_quoted_by_info(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(6)
    events = rng.choice(["Fog", "Fog, Rain", "Rain"], size=120)
    write_csv(tmp_path / "w.csv", {"t": rng.normal(size=120).round(3), "events": events})
    here = dict(cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    status, out, err = run_here("fit", "w.csv", "--target", "events", "--out", "m.skt",
                                "--epochs", "3", "--quiet", **here)
    assert status == 0, err
    status, out, err = run_here("info", "m.skt", **here)
    assert "classes: 'Fog', 'Fog, Rain', 'Rain'" in out


@pytest.mark.parametrize("content, says", [
    (b"a,b\n1,\x002\n", "is not a text (CSV) file: it holds binary data"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 4, "is not a UTF-8 text (CSV) file"),
])
def test_files_that_are_no_text_are_named_as_such(tmp_path, capsys, monkeypatch, content,
                                                   says):
    (tmp_path / "bad.csv").write_bytes(content)
    status, out, err = run_here("fit", "bad.csv", "--target", "b", "--out", "m.skt",
                                cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert status == 2 and says in err


def test_predictions_go_to_an_existing_writable_file_such_as_dev_null(tmp_path):
    data = table(n=60)
    write_csv(tmp_path / "d.csv", {k: data[k] for k in ("a", "b", "price")})
    fit = run("fit", "d.csv", "--target", "price", "--out", "m.skt", "--epochs", "3",
              "--quiet", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    pred = run("predict", "m.skt", "d.csv", "--out", os.devnull, cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    assert "60 predictions written" in pred.stdout


def test_gaps_at_predict_in_a_column_without_gaps_in_fit_get_a_one_line_warning(
        tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.normal(size=120)
    write_csv(tmp_path / "t.csv", {"x": x.round(3), "y": (2 * x).round(3)})
    here = dict(cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    status, _, err = run_here("fit", "t.csv", "--target", "y", "--out", "m.skt",
                              "--epochs", "5", "--quiet", **here)
    assert status == 0, err
    write_csv(tmp_path / "new.csv", {"x": ["0.5", "", "1.5"]})
    status, out, err = run_here("predict", "m.skt", "new.csv", "--out", "p.csv", **here)
    assert status == 0
    assert "3 predictions written" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sktorch-auto predict: warning: ")
    assert "new.csv has empty cells in column(s) that had none in training: x (1 of 3 rows)" \
        in lines[0]


def test_a_tiny_table_fits_with_a_warning_and_an_undefined_score_is_said_so(
        tmp_path, capsys, monkeypatch):
    write_csv(tmp_path / "t.csv", {"a": ["1", "2", "3", "4", "5"],
                                   "y": ["3.1", "4.9", "7.2", "9", "11.1"]})
    here = dict(cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    status, out, err = run_here("fit", "t.csv", "--target", "y", "--out", "m.skt",
                                "--epochs", "5", "--quiet", **here)
    assert status == 0, err
    assert "sktorch-auto fit: warning: only 5 rows" in err
    # One validation row: R^2 is undefined, and said so instead of "nan".
    assert "validation R^2 undefined (too few validation rows)" in out
    status, out, err = run_here("info", "m.skt", **here)
    assert "validation R^2: undefined" in out and "nan" not in out
    write_csv(tmp_path / "big.csv", {"a": [str(i) for i in range(40)],
                                     "y": [str(2 * i) for i in range(40)]})
    status, out, err = run_here("fit", "big.csv", "--target", "y", "--out", "m.skt",
                                "--epochs", "5", "--quiet", **here)
    assert status == 0 and "warning" not in err
