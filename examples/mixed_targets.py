"""Mixed targets: one network predicts a price (raw units) and whether it sells (0/1).

The regressor's mixed criterion treats a column that holds only 0 and 1 as a binary
target (binary cross-entropy, probabilities out) and the others as regression
targets (scaled automatically, predicted in original units).
"""

import numpy as np
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import train_test_split

from sktorch_auto import TorchRegressor


def main():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    price = 250_000 + 40_000 * X[:, 0] + 25_000 * np.tanh(X[:, 1] * X[:, 2])
    sold = (X[:, 3] - 0.5 * X[:, 0] + rng.normal(scale=0.5, size=3000) > 0).astype(float)
    y = np.column_stack([price + rng.normal(scale=5_000, size=3000), sold])
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    reg = TorchRegressor(random_state=0, device="cpu").fit(X_train, y_train)
    pred = reg.predict(X_test)
    print(f"regression flags {reg.criterion_.regression_flags.tolist()} (1 = regression)")
    print(f"price MAE {mean_absolute_error(y_test[:, 0], pred[:, 0]):,.0f} "
          f"(target std {y_test[:, 0].std():,.0f})")
    print(f"sold: probabilities in [{pred[:, 1].min():.2f}, {pred[:, 1].max():.2f}], "
          f"ROC AUC {roc_auc_score(y_test[:, 1], pred[:, 1]):.3f}")


if __name__ == "__main__":
    main()
