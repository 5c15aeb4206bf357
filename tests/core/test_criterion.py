"""MixedCriterion and the criterion protocol (S22, S25-S28)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sktorch_auto.core import ArrayDataset, MixedCriterion, SoftmaxCriterion
from sktorch_auto.core.criterion import build_criterion, criterion_from_state, criterion_state

from .helpers import ItemDataset


def mixed_targets(n=50, seed=0):
    rng = np.random.default_rng(seed)
    reg = rng.normal(1000.0, 5.0, size=n)
    cls = rng.integers(0, 2, size=n).astype(float)
    return np.stack([reg, cls], axis=1).astype(np.float32)


def test_s27_flags_inferred_from_binary_columns():
    y = mixed_targets()
    crit = MixedCriterion(ArrayDataset(np.zeros((len(y), 2), np.float32), y))
    assert crit.regression_flags.tolist() == [1, 0]


def test_s27_flags_inferred_from_the_first_1000_samples_only():
    n = 1200
    y = np.zeros((n, 2), np.float32)
    y[:, 0] = np.arange(n) % 2  # 0/1 everywhere
    y[:, 1] = np.arange(n) % 2
    y[1000:, 1] = 7.0  # not binary, but only after the first 1000 samples
    ds = ItemDataset(np.zeros((n, 1), np.float32), y)
    crit = MixedCriterion(ds)
    assert crit.regression_flags.tolist() == [0, 0]
    assert ds.n_getitem <= 1000


def test_s27_s25_declared_regression_flags_override_inference():
    y = mixed_targets()
    ds = ArrayDataset(np.zeros((len(y), 2), np.float32), y, regression_flags=[1, 1])
    crit = MixedCriterion(ds)
    assert crit.regression_flags.tolist() == [1, 1]
    # The binary column is now scaled like a regression column.
    assert crit.mean[1] == pytest.approx(y[:, 1].mean(), rel=1e-5)


def test_s28_scale_inferred_for_regression_and_identity_for_classification():
    y = mixed_targets()
    crit = MixedCriterion(ArrayDataset(np.zeros((len(y), 2), np.float32), y))
    assert crit.mean[0] == pytest.approx(y[:, 0].mean(), rel=1e-6)
    assert crit.std[0] == pytest.approx(y[:, 0].std(), rel=1e-4)
    assert (crit.mean[1], crit.std[1]) == (0.0, 1.0)


def test_s28_all_classification_columns_are_not_scaled():
    y = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    crit = MixedCriterion(ArrayDataset(np.zeros((4, 1), np.float32), y))
    assert crit.regression_flags.tolist() == [0, 0]
    assert crit.mean.tolist() == [0.0, 0.0] and crit.std.tolist() == [1.0, 1.0]


def test_s28_s25_declared_scale_is_used():
    y = mixed_targets()
    ds = ArrayDataset(np.zeros((len(y), 2), np.float32), y, scale=[[10.0, 0.0], [4.0, 1.0]])
    crit = MixedCriterion(ds)
    assert crit.mean.tolist() == [10.0, 0.0] and crit.std.tolist() == [4.0, 1.0]


def test_s28_constant_regression_column_gets_unit_std():
    y = np.array([[5.0, 2.0], [5.0, 3.0], [5.0, 4.0]], np.float32)
    crit = MixedCriterion(ArrayDataset(np.zeros((3, 1), np.float32), y))
    assert crit.std[0] == 1.0 and np.isfinite(crit.mean[0])


def test_s26_scaled_and_unscaled_regression_losses():
    crit = MixedCriterion(None, regression_flags=[1], scale=([10.0], [2.0]))
    out = torch.tensor([[0.0], [1.0], [-1.0]])
    tgt = torch.tensor([[10.0], [13.0], [8.0]])
    scaled = ((out - (tgt - 10.0) / 2.0) ** 2).mean()
    unscaled = ((out * 2.0 + 10.0 - tgt) ** 2).mean()
    assert crit(out, tgt).item() == pytest.approx(scaled.item())
    assert crit(out, tgt, unscaled=True).item() == pytest.approx(unscaled.item())
    assert unscaled.item() != pytest.approx(scaled.item())



def test_s28_targets_far_from_zero_keep_their_precision_when_scaled():
    # Targets near 5e5 with unit spread: float32 holds them to 1/32, and the scaled
    # target must be (t - m) / s, not t / s - m / s (whose rounding error is ~1/8).
    crit = MixedCriterion(None, regression_flags=[1], scale=([5e5], [0.3]))
    tgt = torch.tensor([[5e5 + 0.5], [5e5 - 1.25], [5e5 + 2.0]])
    out = ((tgt.double() - 5e5) / 0.3).float()  # the exact scaled targets
    assert crit(out, tgt).item() < 1e-10


def test_s27_classification_columns_get_binary_cross_entropy_on_logits():
    crit = MixedCriterion(None, regression_flags=[1, 0], scale=([0.0, 0.0], [1.0, 1.0]))
    out = torch.tensor([[0.5, 2.0], [1.5, -1.0]])
    tgt = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    mse = (out[:, 0] - tgt[:, 0]) ** 2
    bce = F.binary_cross_entropy_with_logits(out[:, 1], tgt[:, 1], reduction="none")
    expected = torch.stack([mse, bce], dim=1).mean()
    assert crit(out, tgt).item() == pytest.approx(expected.item())


def test_s26_postproc_unscales_regression_and_applies_sigmoid_to_classification():
    crit = MixedCriterion(None, regression_flags=[1, 0], scale=([100.0, 0.0], [5.0, 1.0]))
    pred = torch.tensor([[1.0, 0.0], [-2.0, 3.0]])
    out = crit.postproc(pred)
    assert torch.allclose(out[:, 0], torch.tensor([105.0, 90.0]))
    assert torch.allclose(out[:, 1], torch.sigmoid(torch.tensor([0.0, 3.0])))


def test_s22_zero_sample_weight_removes_sample_from_loss():
    crit = MixedCriterion(None, regression_flags=[1], scale=([0.0], [1.0]))
    out = torch.tensor([[1.0], [100.0]])
    tgt = torch.tensor([[0.0], [0.0]])
    w = torch.tensor([1.0, 0.0])
    # The mean is over all samples (weights are not normalised): only sample 0 counts.
    assert crit(out, tgt, w).item() == pytest.approx(0.5)
    assert crit(out, tgt).item() == pytest.approx((1.0 + 1e4) / 2)


def test_s22_per_output_weights_weight_each_column():
    crit = MixedCriterion(None, regression_flags=[1, 1], scale=([0.0, 0.0], [1.0, 1.0]))
    out = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    tgt = torch.zeros(2, 2)
    w = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert crit(out, tgt, w).item() == pytest.approx((1.0 + 2 * 16.0) / 4)


def test_s22_weight_vectors_are_not_normalised():
    crit = MixedCriterion(None, regression_flags=[1], scale=([0.0], [1.0]))
    out, tgt = torch.tensor([[1.0], [1.0]]), torch.zeros(2, 1)
    assert crit(out, tgt, torch.tensor([3.0, 3.0])).item() == pytest.approx(3.0)


def test_s26_criterion_state_round_trip():
    crit = MixedCriterion(None, regression_flags=[1, 0], scale=([3.0, 0.0], [2.0, 1.0]))
    again = criterion_from_state(criterion_state(crit))
    assert isinstance(again, MixedCriterion)
    pred = torch.randn(4, 2)
    assert torch.equal(crit.postproc(pred), again.postproc(pred))
    assert isinstance(criterion_from_state(criterion_state(SoftmaxCriterion())), SoftmaxCriterion)


def test_s26_build_criterion_auto_class_and_object():
    y = mixed_targets()
    ds = ArrayDataset(np.zeros((len(y), 2), np.float32), y)
    assert isinstance(build_criterion("auto", ds), MixedCriterion)

    class Custom:
        def __init__(self, dataset):
            self.dataset = dataset

        def __call__(self, output, target, weights=None, unscaled=False):
            return ((output - target) ** 2).mean()

        def postproc(self, pred):
            return pred

    built = build_criterion(Custom, ds)
    assert isinstance(built, Custom) and built.dataset is ds
    obj = Custom(None)
    assert build_criterion(obj, ds) is obj
    with pytest.raises(ValueError):
        build_criterion("mse", ds)
    with pytest.raises(TypeError):
        build_criterion(lambda o, t: 0.0, ds)  # no postproc


def test_s27_output_column_count_mismatch_is_reported():
    crit = MixedCriterion(None, regression_flags=[1, 0], scale=([0.0, 0.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="3 values per sample"):
        crit(torch.zeros(2, 3), torch.zeros(2, 3))


def test_s28_scale_length_must_match_flags():
    with pytest.raises(ValueError):
        MixedCriterion(None, regression_flags=[1, 0], scale=([0.0], [1.0]))


def test_softmax_criterion_is_the_cross_entropy_with_and_without_weights():
    torch.manual_seed(0)
    out = torch.randn(6, 3)
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    onehot = torch.nn.functional.one_hot(labels, 3).float()
    crit = SoftmaxCriterion()
    expected = torch.nn.functional.cross_entropy(out, labels)
    torch.testing.assert_close(crit(out, onehot), expected)
    soft = torch.full((6, 3), 1 / 3)  # soft targets: the mean of the log-probabilities
    torch.testing.assert_close(crit(out, soft), -torch.log_softmax(out, 1).mean(1).mean())
    w = torch.tensor([1.0, 2.0, 0.0, 1.0, 3.0, 1.0])
    per_sample = torch.nn.functional.cross_entropy(out, labels, reduction="none")
    torch.testing.assert_close(crit(out, onehot, w), (w * per_sample).mean())
