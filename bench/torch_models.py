"""PyTorch mirror of softseg's zoo models and training step, for bench/torch.ts (bench-only helper).

The architectures copy src/models/unet.ts and src/models/mobile-unet.ts layer for layer (same channel counts,
same order, conv without bias before batch norm, 1x1 classifier with bias, bilinear upsampling), the
loss copies softseg's hardLabelObjective without an aux head (0.25 * 0.5 * CE + 0.75 * JML1,
per-batch, PRESENT classes, smooth 1), and the optimizer is AdamW (lr 1e-3, weight decay 1e-4 on
convolution kernels only, as softseg's SegOptimizer).

  /usr/bin/python3 bench/torch_models.py params [--classes 11]
  /usr/bin/python3 bench/torch_models.py row --model unet --size 64 --batch 8 [--threads 2]

Each command prints one JSON line prefixed with MARKER on stdout. A row runs in its own process so
that its peak RSS (ru_maxrss) is that row's alone.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MARKER = "@@TORCH_BENCH_ROW "


def conv_bn_relu(cin, cout, k=3, stride=1):
    return [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),  # = TF.js momentum 0.9
        nn.ReLU(inplace=True),
    ]


class UNet(nn.Module):
    """src/models/unet.ts: stages of two conv3x3+BN+ReLU with a 3x3 stride-2 max-pool between, decoder per level:
    bilinear x2 up, concat [up, skip], one conv3x3+BN+ReLU; 1x1 classifier."""

    def __init__(self, stages, num_classes):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 3
        for c in stages:
            self.enc.append(nn.Sequential(*conv_bn_relu(cin, c), *conv_bn_relu(c, c)))
            cin = c
        self.dec = nn.ModuleList()
        for i in range(len(stages) - 2, -1, -1):
            self.dec.append(nn.Sequential(*conv_bn_relu(cin + stages[i], stages[i])))
            cin = stages[i]
        self.head = nn.Conv2d(cin, num_classes, 1, bias=True)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 3, 2, 1)  # softseg's centred pool (src/models/base.ts maxPool)
            x = block(x)
            skips.append(x)
        for j, block in enumerate(self.dec):
            skip = skips[len(skips) - 2 - j]
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def dw_sep(cin, cout, stride=1):
    return [
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin, eps=1e-5, momentum=0.1),
        nn.ReLU(inplace=True),
        *conv_bn_relu(cin, cout, k=1),
    ]


class MobileUNet(nn.Module):
    """src/models/mobile-unet.ts: conv3x3 s2 stem 16, depthwise-separable blocks 16->32 s1, 32->64 s2,
    64->64, 64->128 s2, 128->128 x2, 1x1 classifier at stride 8, bilinear x8 up."""

    def __init__(self, num_classes):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_relu(3, 16, 3, stride=2),
            *dw_sep(16, 32),
            *dw_sep(32, 64, 2),
            *dw_sep(64, 64),
            *dw_sep(64, 128, 2),
            *dw_sep(128, 128),
            *dw_sep(128, 128),
        )
        self.head = nn.Conv2d(128, num_classes, 1, bias=True)

    def forward(self, x):
        return F.interpolate(self.head(self.body(x)), scale_factor=8, mode="bilinear", align_corners=False)


def create_model(name, num_classes):
    if name == "unet":
        return UNet([32, 64, 128, 256], num_classes)
    if name == "unet-lite":
        return UNet([16, 32, 64, 128], num_classes)
    if name == "mobile-unet":
        return MobileUNet(num_classes)
    raise SystemExit(f"unknown model {name}")


def count_params(model):
    """(all, trainable) counted as TF.js does: parameters plus batch-norm running mean and variance."""
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable + stats, trainable


def objective(logits, labels, ignore_index=255, smooth=1.0, threshold=0.01):
    """softseg's hardLabelObjective without aux: 0.25 * (0.5 * CE) + 0.75 * JML1 (per-batch, PRESENT)."""
    n, c, h, w = logits.shape
    ce = F.cross_entropy(logits, labels, ignore_index=ignore_index)
    keep = (labels != ignore_index).float().unsqueeze(1)
    prob = torch.exp(F.log_softmax(logits, dim=1)) * keep
    y = F.one_hot(labels.clamp(0, c - 1), c).permute(0, 3, 1, 2).float() * keep
    diff = prob - y
    a = diff.abs()
    tp = (prob + y - a).sum(dim=(0, 2, 3)) / 2
    fp = (diff + a).sum(dim=(0, 2, 3)) / 2
    fn = (a - diff).sum(dim=(0, 2, 3)) / 2
    active = (y.amax(dim=(0, 2, 3)) > threshold).float()
    loss_c = 1 - (tp + smooth) / (tp + fp + fn + smooth)
    jml = (loss_c * active).sum() / active.sum().clamp(min=1)
    return 0.25 * 0.5 * ce + 0.75 * jml


def adamw(model, lr=1e-3, weight_decay=1e-4):
    decay = [p for p in model.parameters() if p.dim() == 4]  # conv kernels (softseg: */kernel)
    rest = [p for p in model.parameters() if p.dim() != 4]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=lr, betas=(0.9, 0.999), eps=1e-8,
    )


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed_loop(fn, min_n, max_n, seconds):
    times = []
    start = time.perf_counter()
    while len(times) < min_n or (len(times) < max_n and time.perf_counter() - start < seconds):
        s = time.perf_counter()
        fn()
        times.append((time.perf_counter() - s) * 1000)
    return times


def run_row(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rss_import = peak_rss_mb()
    model = create_model(a.model, a.classes)
    params, trainable = count_params(model)
    x = torch.randn(a.batch, 3, a.size, a.size)
    labels = torch.randint(0, a.classes, (a.batch, a.size, a.size))
    device = torch.device(a.device)
    model, x, labels = model.to(device), x.to(device), labels.to(device)
    opt = adamw(model)
    losses = []

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = objective(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    def infer():
        model.eval()
        with torch.inference_mode():
            p = F.softmax(model(x), dim=1)
            p.cpu().numpy().sum()  # touch the result as the engine bench reads it back

    warm = timed_loop(train_step, a.warmup, a.warmup, 0)
    min_steps = a.steps or 5
    max_steps = a.steps or 50
    cpu0, wall0 = time.process_time(), time.perf_counter()
    train_ms = timed_loop(train_step, min_steps, max_steps, a.train_seconds)
    cpu_s = time.process_time() - cpu0
    cpu_per_wall = cpu_s / (time.perf_counter() - wall0)
    infer()
    infer_ms = timed_loop(infer, 5, 100, a.infer_seconds)
    t_med = statistics.median(train_ms)
    i_med = statistics.median(infer_ms)
    return {
        "model": a.model, "size": a.size, "batch": a.batch, "classes": a.classes,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": a.device,
        "params": params, "trainableParams": trainable,
        "trainImgS": a.batch * 1000 / t_med, "trainStepMs": train_ms, "warmupStepMs": warm,
        "inferImgS": a.batch * 1000 / i_med, "inferBatchMs": infer_ms,
        "peakRssMB": peak_rss_mb(), "rssAfterImportMB": rss_import,
        "lossFirst": losses[0], "lossLast": losses[-1],
        "loadAvg": os.getloadavg()[0], "cpuPerWall": cpu_per_wall, "trainImgPerCpuS": a.batch * len(train_ms) / cpu_s,
        "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["row", "params"])
    ap.add_argument("--model", default="unet")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--train-seconds", type=float, default=5.0)
    ap.add_argument("--infer-seconds", type=float, default=2.0)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (bench/gpu/train-throughput.ts)")
    a = ap.parse_args()
    if a.command == "params":
        out = {}
        for name in ["unet", "unet-lite", "mobile-unet"]:
            p, t = count_params(create_model(name, a.classes))
            out[name] = {"params": p, "trainableParams": t}
        out["torch"] = torch.__version__
        print(MARKER + json.dumps(out))
        return
    print(MARKER + json.dumps(run_row(a)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
