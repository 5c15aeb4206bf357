"""Statistical equivalence of integer weights and repeated rows (issue 3).

scikit-learn's exact checks (``check_sample_weight_equivalence_on_*``) cannot hold
with a random internal validation split, so, as scikit-learn plans for such estimators
(meta-issue #16298), the equivalence is tested statistically: over several seeds, the
predictions of fits with integer weights and of fits on repeated rows are
indistinguishable, while fits with other integer weights are not.

Weights count like repetitions for what the network converges to; an epoch, however,
counts rows, so a weighted fit takes fewer steps per epoch than one on repeated rows.
The fits here are trained to convergence (a high learning rate on small linear and
MLP problems), which is where the equivalence is meant to hold.
"""

import numpy as np
import pytest
from scipy import stats

from sktorch_auto import TorchClassifier, TorchRegressor

N_SEEDS = 12


def _combined_pvalue(a, b):
    """Fisher-combined Welch t-test p-value of the per-point predictions of two fit sets."""
    pvalues = stats.ttest_ind(a, b, axis=0, equal_var=False).pvalue
    return stats.combine_pvalues(np.clip(pvalues, 1e-300, 1))[1]


def _predictions(make, X, y, weight, X_test, method, seed_offset):
    rows = []
    for seed in range(N_SEEDS):
        if weight is None:
            est = make(seed + seed_offset).fit(X, y)
        else:
            est = make(seed + seed_offset).fit(X, y, sample_weight=weight)
        out = getattr(est, method)(X_test)
        rows.append(out[:, 1] if out.ndim == 2 else out)
    return np.array(rows)


def _problem(kind):
    rng = np.random.RandomState(0)
    n = 40 if kind == "regression" else 200
    X = rng.uniform(-2, 2, size=(n, 2))
    score = np.sin(X[:, 0]) * 2 + X[:, 1] + rng.normal(scale=2.0, size=n)
    y = score if kind == "regression" else (score > 0).astype(int)
    weight = rng.randint(0, 4, size=n)
    other = 3 - weight  # other integer weights, emphasising the other rows
    return X, y, weight, other, rng.uniform(-2, 2, size=(50, 2))


@pytest.mark.parametrize(
    "kind, hidden",
    [("regression", ()), ("regression", (8,)), ("classification", ())],
)
def test_integer_weights_match_repeated_rows_statistically(kind, hidden):
    X, y, weight, other, X_test = _problem(kind)
    cls, method = (
        (TorchRegressor, "predict") if kind == "regression" else (TorchClassifier, "predict_proba")
    )

    def make(seed):
        # batch_size and train_prop fixed: their 'auto' rules count rows, not weights;
        # the best version alone: the converged model is what the equivalence is about
        # (an average over many epochs' versions depends on the steps per epoch); no
        # periodic embeddings: with their ~100 parameters per column for 40 rows there is
        # no one converged model, and how far a fit gets depends on the steps per epoch,
        # which differ between weighted and repeated rows (the weights reach the
        # embeddings through the loss's gradient, as test_numeric_embedding checks)
        return cls(hidden_layer_sizes=hidden, n_epochs=200, learning_rate=0.1, batch_size=16,
                   train_prop=0.9, device="cpu", random_state=seed, n_best_nets=1,
                   numeric_embedding=None)

    weighted = _predictions(make, X, y, weight, X_test, method, 0)
    repeated = _predictions(make, X.repeat(weight, axis=0), y.repeat(weight), None, X_test,
                            method, 100)
    other_weights = _predictions(make, X, y, other, X_test, method, 200)
    assert _combined_pvalue(weighted, repeated) > 0.05
    assert _combined_pvalue(weighted, other_weights) < 0.01
    assert _combined_pvalue(repeated, other_weights) < 0.01
