"""tools/peer_train_fashion.py: the PyTorch peer of `retort train` on Fashion-MNIST.

Trains RepDistiller's CIFAR resnet20 (1 input channel, 10 classes) with the same recipe as
tools/fashion-resnet20.conf: 55,000 training images (5,000 held out for validation), random crop
with 4 px zero padding and horizontal flip, normalization, SGD (momentum 0.9, nesterov, weight
decay 5e-4), lr 0.1 with a per-step cosine schedule, batch 128, 5 epochs. Prints one line per
epoch: seconds, train loss, validation and test top-1.

Run with Debian's python3 (python3-torch): /usr/bin/python3 tools/peer_train_fashion.py
  --epochs N --threads T --data /usr/share/datasets/fashion-mnist --max-steps S
"""
import argparse
import gzip
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet20(nn.Module):
    def __init__(self, in_chans=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in [(16, 1), (32, 2), (64, 2)]:
            blocks = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout, 1) for _ in range(2)]
            layers.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def augment(x, gen):
    """Random crop (4 px zero padding) and horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def evaluate(model, x, y, batch=256):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i:i + batch])
            loss += F.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    return loss / len(x), 100.0 * correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=0, help="steps per epoch (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    def load(prefix):
        images = read_idx(os.path.join(args.data, prefix + "-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(args.data, prefix + "-labels-idx1-ubyte.gz"))
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        return (x - 0.2860) / 0.3530, torch.from_numpy(labels.astype(np.int64))

    x_all, y_all = load("train")
    x_test, y_test = load("t10k")
    order = torch.randperm(len(x_all), generator=gen)
    val_idx, train_idx = order[:5000], order[5000:]
    x_val, y_val, x_train, y_train = x_all[val_idx], y_all[val_idx], x_all[train_idx], y_all[train_idx]

    model = ResNet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    batch = 128
    steps_per_epoch = math.ceil(len(x_train) / batch)
    if args.max_steps:
        steps_per_epoch = min(steps_per_epoch, args.max_steps)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    print("pytorch %s, %d threads, resnet20 (1 channel), %d train / %d val / %d test"
          % (torch.__version__, args.threads, len(x_train), len(x_val), len(x_test)), flush=True)
    for epoch in range(args.epochs):
        model.train()
        start = time.time()
        perm = torch.randperm(len(x_train), generator=gen)
        running = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * batch:(step + 1) * batch]
            xb = augment(x_train[idx], gen)
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
        seconds = time.time() - start
        _, val_top1 = evaluate(model, x_val, y_val)
        test_loss, test_top1 = evaluate(model, x_test, y_test)
        print("epoch %d  train_seconds %.1f  img/s %.0f  train_loss %.4f  val_top1 %.2f  test_top1 %.2f"
              % (epoch + 1, seconds, steps_per_epoch * batch / seconds, running / steps_per_epoch,
                 val_top1, test_top1), flush=True)


if __name__ == "__main__":
    main()
