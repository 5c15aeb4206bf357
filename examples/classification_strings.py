"""Classification with string labels: TorchClassifier on the iris flowers."""

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktorch_auto import TorchClassifier


def main():
    data = load_iris()
    X, y = data.data, np.asarray(data.target_names)[data.target]  # 'setosa', ...
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    model = make_pipeline(StandardScaler(), TorchClassifier(random_state=0, device="cpu"))
    model.fit(X_train, y_train)
    print(f"classes {model.classes_.tolist()}")
    print(f"test accuracy {model.score(X_test, y_test):.3f}")
    print("first predictions", model.predict(X_test[:3]).tolist())
    print("their probabilities\n", model.predict_proba(X_test[:3]).round(3))


if __name__ == "__main__":
    main()
