"""Seeding for reproducible training (S30)."""

import random

import numpy as np
import torch


def set_seed(seed):
    """Seed Python's, numpy's and torch's random generators (and CUDA's when present).

    Call it before anything random happens (before building a dataset that draws
    random augmentations, for instance) to make training reproducible.

    Parameters
    ----------
    seed : int
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
