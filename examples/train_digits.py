"""Train a small CNN on scikit-learn's 8x8 handwritten digits with fastbp.nn and fastbp.optim.

    pip install fastbp[examples]      # scikit-learn ships the digits data, nothing is downloaded
    python examples/train_digits.py [--model cnn|resnet] [--epochs 15] [--seed 0] [--quick]

--model resnet trains a small residual CNN: BatchNorm, residual adds, adaptive average pooling.
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastbp
import fastbp.nn.functional as F
from fastbp import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual add (a 1x1 projection when the shape
    changes), as in ResNet."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def make_resnet():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),  # 16 x 8 x 8
        BasicBlock(16, 16), BasicBlock(16, 32, stride=2),                          # 32 x 4 x 4
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def make_model(name="cnn"):
    if name == "resnet":
        return make_resnet()
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),      # 16 x 8 x 8
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),     # 32 x 8 x 8
        nn.MaxPool2d(2),                                # 32 x 4 x 4
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        nn.Linear(64, 10))


def accuracy(model, x, y, batch_size=500):
    with fastbp.no_grad():
        pred = np.concatenate([model(fastbp.Tensor(x[i:i + batch_size])).data.argmax(1)
                               for i in range(0, len(x), batch_size)])
    return float((pred == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["cnn", "resnet"], default="cnn")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few batches only (smoke test)")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = digits.target
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y)
    if args.quick:
        x_train, y_train = x_train[:256], y_train[:256]

    nn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = make_model(args.model)
    opt = fastbp.optim.Adam(model.parameters(), lr=args.lr)
    print(f"{len(x_train)} training and {len(x_test)} test images; "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        if epoch == int(0.7 * args.epochs) + 1:
            for group in opt.param_groups:
                group["lr"] *= 0.2  # one step decay settles the last epochs
        model.train()
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.cross_entropy(model(fastbp.Tensor(x_train[idx])), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        print(f"epoch {epoch:2d}  loss {total / len(order):.4f}  "
              f"train acc {accuracy(model, x_train, y_train):.4f}  "
              f"test acc {accuracy(model, x_test, y_test):.4f}  {time.perf_counter() - t0:.2f} s")
    print(f"final test accuracy {accuracy(model, x_test, y_test):.4f} "
          f"after {time.perf_counter() - start:.1f} s of training")


if __name__ == "__main__":
    main()
