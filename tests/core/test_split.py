"""The reproducible train/validation split (S3)."""

import random

import numpy as np
import pytest
import torch

from sktorch_auto.core import ArrayDataset, PytorchTrainer
from sktorch_auto.core.split import train_valid_split

from .helpers import RecorderNet


def test_s3_split_is_a_partition_of_the_expected_sizes():
    train, valid = train_valid_split(100, 0.9)
    assert len(valid) == 10 and len(train) == 90
    assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(100))


def test_s3_split_is_reproducible_and_ignores_the_global_random_state():
    np.random.seed(1)
    torch.manual_seed(1)
    random.seed(1)
    first = train_valid_split(200, 0.8)
    np.random.seed(2)
    torch.manual_seed(2)
    random.seed(2)
    np.random.rand(10)
    second = train_valid_split(200, 0.8)
    assert np.array_equal(first[1], second[1]) and np.array_equal(first[0], second[0])


def test_s3_split_is_shuffled_not_the_last_rows():
    _, valid = train_valid_split(200, 0.9, shuffle=True)
    assert not np.array_equal(valid, np.arange(180, 200))
    _, valid = train_valid_split(200, 0.9, shuffle=False)
    assert np.array_equal(valid, np.arange(180, 200))


def test_s3_split_seed_changes_the_split():
    a = train_valid_split(200, 0.9, seed=1)[1]
    b = train_valid_split(200, 0.9, seed=2)[1]
    assert not np.array_equal(a, b)


def test_s3_train_prop_one_validates_on_the_training_part():
    train, valid = train_valid_split(10, 1.0)
    assert np.array_equal(train, np.arange(10)) and np.array_equal(valid, np.arange(10))


def test_s3_stratified_split_keeps_proportions():
    labels = np.array([0] * 80 + [1] * 20)
    _, valid = train_valid_split(100, 0.8, stratify=labels)
    assert np.bincount(labels[valid]).tolist() == [16, 4]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_s3_bad_train_prop_is_rejected(bad):
    with pytest.raises(ValueError):
        train_valid_split(10, bad)


def _validated_rows(seed):
    """Rows the trainer validated / trained on, training after seeding globally with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    X = np.zeros((50, 2), np.float32)
    X[:, 0] = np.arange(50)
    X[:, 1] = np.random.rand(50)
    y = X[:, 1:2] * 2
    trainer = PytorchTrainer(RecorderNet, [2, 1], device="cpu")
    trainer.train(ArrayDataset(X, y), name=None, n_epochs=2, batch_size=8, verbose=False)
    return (set(trainer.net.rows(False).long().tolist()),
            set(trainer.net.rows(True).long().tolist()))


def test_s3_retraining_validates_on_the_same_rows_it_never_trained_on():
    valid_a, train_a = _validated_rows(seed=1)
    valid_b, train_b = _validated_rows(seed=2)
    assert len(valid_a) == 5
    assert valid_a == valid_b
    assert not valid_a & train_a and not valid_b & train_b
    assert valid_a | train_a == set(range(50))
