"""A small CNN on synthetic images, with online augmentation and ``repeat_train``.

The dataset draws a random flip and shift every time an image is fetched, so each
pass over the training part sees new variants; ``repeat_train=3`` makes an epoch three
such passes, whose losses are averaged (S8). Images go through a DataLoader (the
dataset is not in memory as tensors): ``n_workers`` could generate them in parallel.
"""

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from sktorch_auto import PytorchTrainer, set_seed


class Shapes(Dataset):
    """16x16 images of a bright square (class 1) or a bright bar (class 0)."""

    def __init__(self, n=400, seed=0, augment=True):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 2, size=n)
        self.images = np.zeros((n, 1, 16, 16), dtype=np.float32)
        for img, label in zip(self.images, self.labels):
            r, c = rng.integers(3, 9, size=2)
            if label:
                img[0, r:r + 5, c:c + 5] = 1.0
            else:
                img[0, r:r + 2, c - 2:c + 7] = 1.0
            img += rng.normal(scale=0.2, size=img.shape).astype(np.float32)
        self.augment = augment

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = torch.from_numpy(self.images[i])
        if self.augment:  # online augmentation: a new variant at every fetch
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
            shift = [int(s) for s in torch.randint(-2, 3, (2,))]
            image = torch.roll(image, shifts=shift, dims=(-2, -1))
        return image, torch.tensor([float(self.labels[i])])


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 1),
    )


def main():
    set_seed(0)
    trainer = PytorchTrainer(small_cnn, [], device="cpu")
    trainer.train(Shapes(), name=None, batch_size=32, n_epochs=20, repeat_train=3,
                  learning_rate=1e-2, verbose=False)
    test = Shapes(n=200, seed=1, augment=False)
    proba = trainer.predict_dataset(test, verbose=False).ravel()  # sigmoid applied (S26)
    accuracy = ((proba > 0.5) == test.labels).mean()
    print(f"{len(trainer.history)} epochs of 3 augmented passes each; "
          f"test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
