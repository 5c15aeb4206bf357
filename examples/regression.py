"""Regression quick start: TorchRegressor on scikit-learn's diabetes data."""

from sklearn.datasets import load_diabetes
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktorch_auto import TorchRegressor


def main():
    X, y = load_diabetes(return_X_y=True)  # targets in raw units: no scaling needed
    model = make_pipeline(StandardScaler(), TorchRegressor(random_state=0, device="cpu"))
    scores = cross_val_score(model, X, y, cv=5, scoring="r2")
    baseline = cross_val_score(DummyRegressor(), X, y, cv=5, scoring="r2")
    print(f"TorchRegressor R^2 {scores.mean():.3f} +/- {scores.std():.3f} "
          f"(predicting the mean: {baseline.mean():.3f})")
    reg = model.fit(X, y)[-1]
    print(f"epochs run {reg.n_iter_}, best epoch {reg.best_epoch_}, stopped by {reg.stop_reason_}")


if __name__ == "__main__":
    main()
