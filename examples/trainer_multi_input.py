"""The trainer core on a custom Dataset with a two-input network.

Each item is ``([numeric, category], weight, target)``: the network's ``forward``
takes two arguments (S20), the weight is per sample (S22), and the target has two
columns, one in raw units and one binary (the mixed criterion handles both).
"""

import os
import tempfile

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from sktorch_auto import PytorchTrainer, set_seed


class Shops(Dataset):
    """Synthetic shops: numeric features, a category id, sales (raw units) and 'busy'."""

    def __init__(self, n=2000, seed=0):
        rng = np.random.default_rng(seed)
        self.numeric = torch.tensor(rng.normal(size=(n, 4)), dtype=torch.float32)
        self.category = torch.tensor(rng.integers(0, 5, size=n))
        effect = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5])[self.category]
        sales = 1000 + 100 * (self.numeric[:, 0] - self.numeric[:, 1] ** 2 + effect)
        busy = (self.numeric[:, 2] + effect > 0.5).float()
        self.target = torch.stack([sales, busy], dim=1)
        self.weight = torch.tensor(rng.uniform(0.5, 1.5, size=n), dtype=torch.float32)

    def __len__(self):
        return len(self.target)

    def __getitem__(self, i):
        return [self.numeric[i], self.category[i]], self.weight[i], self.target[i]


class ShopNet(nn.Module):
    def __init__(self, n_numeric=4, n_categories=5, width=32):
        super().__init__()
        self.embedding = nn.Embedding(n_categories, 4)
        self.body = nn.Sequential(nn.Linear(n_numeric + 4, width), nn.ReLU(),
                                  nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, numeric, category):
        return self.body(torch.cat([numeric, self.embedding(category)], dim=1))


def main():
    set_seed(0)
    dataset = Shops()
    with tempfile.TemporaryDirectory() as folder:
        name = os.path.join(folder, "shops")
        trainer = PytorchTrainer(ShopNet, [4, 5, 32], device="cpu")
        trainer.train(dataset, name=name, batch_size=64, n_epochs=30, n_best_nets=3,
                      verbose=False)
        print(f"best validation loss {trainer.best_loss:.4g} at epoch {trainer.best_epoch}, "
              f"averaged epochs {trainer.averaged_epochs}, stopped by {trainer.stop_reason}")
        # Loading rebuilds the network from the builder the file records; ShopNet is
        # defined here, so we pass it (files never get to call code of their choosing).
        loaded = PytorchTrainer.load(name, device="cpu", net_builder=ShopNet)
        test = Shops(n=5, seed=1)
        pred = loaded.predict(test.numeric, test.category)
        for (sales, busy), (true_sales, true_busy) in zip(pred, test.target.numpy()):
            print(f"sales {sales:8.1f} (true {true_sales:8.1f})   "
                  f"P(busy) {busy:.2f} (true {true_busy:.0f})")


if __name__ == "__main__":
    main()
