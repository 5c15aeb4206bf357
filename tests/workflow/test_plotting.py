"""Learning curves rendered with matplotlib's Agg backend (issue 6)."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sktorch_auto import ArrayDataset, PytorchTrainer, TorchRegressor  # noqa: E402
from sktorch_auto.plotting import TrainingCurveDisplay  # noqa: E402


def _fitted(n_best_nets=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    return TorchRegressor(n_epochs=25, n_best_nets=n_best_nets, device="cpu",
                          random_state=0).fit(X, X @ [1.0, 2.0, -1.0] + 50)


def test_curve_of_an_estimator_renders_to_png(tmp_path):
    est = _fitted()
    display = TrainingCurveDisplay.from_estimator(est)
    display.figure_.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 5000
    epochs, train = display.lines_["train"].get_data()
    assert list(epochs) == [h["epoch"] for h in est.history_]
    assert list(train) == [h["train_loss"] for h in est.history_]
    _, valid = display.lines_["valid"].get_data()
    assert list(valid) == [h["valid_objective"] for h in est.history_]
    labels = display.ax_.get_legend_handles_labels()[1]
    assert "best version" in labels and "averaged versions" in labels
    plt.close(display.figure_)


def test_decays_and_restarts_are_marked():
    history = [dict(epoch=e, train_loss=1.0 / e, valid_loss=2.0 / e, valid_objective=1.5 / e,
                    decay=e in (4, 6), restart=e == 3) for e in range(1, 8)]
    display = TrainingCurveDisplay(history, best_epoch=5).plot()
    labels = display.ax_.get_legend_handles_labels()[1]
    assert labels.count("learning-rate decay") == 1 and "optimizer restart" in labels
    vertical = [line for line in display.ax_.get_lines() if line.get_xdata()[0] ==
                line.get_xdata()[-1] and line not in display.lines_.values()]
    assert sorted(line.get_xdata()[0] for line in vertical) == [3, 4, 6]
    plt.close(display.figure_)


def test_curve_of_a_trainer_draws_on_a_given_axes():
    X = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    trainer = PytorchTrainer(lambda: __import__("torch").nn.Linear(2, 1), [], device="cpu")
    trainer.train(ArrayDataset(X, X[:, :1] * 3), name=None, n_epochs=5, verbose=False)
    fig, ax = plt.subplots()
    display = TrainingCurveDisplay.from_trainer(trainer, ax=ax)
    assert display.ax_ is ax
    assert len(display.lines_["train"].get_xdata()) == len(trainer.history) >= 1
    plt.close(fig)


def test_unfitted_estimator_is_refused():
    with pytest.raises(ValueError, match="not fitted"):
        TrainingCurveDisplay.from_estimator(TorchRegressor())
