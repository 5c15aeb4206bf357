"""The main job: train on datasets bundled with scikit-learn, compare with a baseline.

Run ``python examples/demo.py``. It shows the training progress, then the validation
scores of TorchRegressor and TorchClassifier next to a simple baseline.
"""

from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktorch_auto import TorchClassifier, TorchRegressor


def run(name, load, estimator, baseline, metric):
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    print(f"\n== {name}: {X.shape[0]} samples, {X.shape[1]} features")
    model = make_pipeline(StandardScaler(), estimator).fit(X_train, y_train)
    net = model[-1]
    base = baseline.fit(X_train, y_train)
    print(f"{metric} on held-out data: sktorch_auto {model.score(X_test, y_test):.3f}, "
          f"baseline {base.score(X_test, y_test):.3f}  "
          f"({net.n_iter_} epochs, best {net.best_epoch_}, stopped by {net.stop_reason_})")


def main():
    run("diabetes (regression)", load_diabetes,
        TorchRegressor(random_state=0, verbose=True), DummyRegressor(), "R^2")
    run("breast cancer (classification)", load_breast_cancer,
        TorchClassifier(random_state=0, verbose=True), DummyClassifier(), "accuracy")


if __name__ == "__main__":
    main()
