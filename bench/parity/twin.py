"""The PyTorch twin of softseg's recipes (bench-only; Debian's python3-torch).

Two sides, chosen by --side:
  mirror  every choice softseg makes: symmetric padding before stride-2 convs (softseg's ZeroPadding2D +
          'valid'), TF.js's legacy bilinear upsampling (src = dst * in/out, no half-pixel offset), torch's
          default initialisers (softseg's since Dec 2026), weight decay on conv kernels only — to find
          implementation differences. --pad tf --init mirror gives softseg's earlier choices (TF 'same'
          padding, He-normal kernels, Glorot classifier);
  plain   what a PyTorch user writes without thinking: symmetric padding, F.interpolate(align_corners=
          False), torch's default initialisers, AdamW decaying every parameter.

Commands
  check FILE            load the weights and batches bench/parity/trajectory.ts wrote, run the same steps on
                        the mirror model and print the relative differences (losses, first-step gradients,
                        final weights)
  train --data D ...    train a student on a softseg data folder and print one JSON line (see train());
                        --recipe distill|ssl --teacher-probs P --unlabeled U: JML-KD on 4 labeled + 4 unlabeled
                        images per batch, or fixed-teacher SSL (strong view + CutMix on the unlabeled half), with
                        the teacher probabilities bench/parity/teacher.ts exported
"""
import argparse
import json
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------- layers


def tf_same_pad(size, k, s, d=1):
    """TensorFlow 'same' padding for one axis: (before, after); the extra pixel goes after."""
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Module):
    """Conv2d with either TF 'same' padding (mirror) or PyTorch's symmetric k//2 padding (plain)."""

    def __init__(self, cin, cout, k, stride=1, groups=1, bias=False, tf_pad=True):
        super().__init__()
        self.k, self.stride, self.tf_pad = k, stride, tf_pad
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, groups=groups, bias=bias, padding=0 if tf_pad else k // 2)

    def forward(self, x):
        if self.tf_pad and self.k > 1:
            t, b = tf_same_pad(x.shape[2], self.k, self.stride)
            l, r = tf_same_pad(x.shape[3], self.k, self.stride)
            x = F.pad(x, (l, r, t, b))
        return self.conv(x)


def legacy_matrix(n_in, n_out):
    """TF.js resizeBilinear(alignCorners=false, halfPixelCenters=false) as an [n_out, n_in] matrix."""
    m = np.zeros((n_out, n_in), np.float32)
    scale = n_in / n_out
    for i in range(n_out):
        src = i * scale
        lo = min(int(math.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        f = src - lo
        m[i, lo] += 1 - f
        m[i, hi] += f
    return torch.from_numpy(m)


class Up(nn.Module):
    def __init__(self, factor, legacy):
        super().__init__()
        self.factor, self.legacy = factor, legacy
        self._cache = {}

    def forward(self, x):
        if not self.legacy:
            return F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)
        h, w = x.shape[2], x.shape[3]
        key = (h, w)
        if key not in self._cache:
            self._cache[key] = (legacy_matrix(h, h * self.factor), legacy_matrix(w, w * self.factor))
        mh, mw = (m.to(x.dtype) for m in self._cache[key])
        return torch.einsum("oh,nchw,pw->ncop", mh, x, mw)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)  # = TF.js momentum 0.9


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, groups=1, tf_pad=True):
        super().__init__()
        self.conv = Conv(cin, cout, k, stride, groups, False, tf_pad)
        self.bn = bn(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class MobileUNet(nn.Module):
    """src/models/mobile-unet.ts: conv3x3 s2 stem 16, depthwise-separable blocks 16->32, 32->64 s2, 64->64,
    64->128 s2, 128->128 x2, 1x1 classifier at stride 8, bilinear x8 up."""

    def __init__(self, num_classes, tf_pad=True, legacy_up=True):
        super().__init__()
        self.names = []  # (softseg layer prefix, module) for weight exchange
        self.stem = ConvBnRelu(3, 16, 3, 2, tf_pad=tf_pad)
        self.names.append(("stem", self.stem))
        blocks = []
        for i, (cin, cout, s) in enumerate([(16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1)], 1):
            dw = ConvBnRelu(cin, cin, 3, s, groups=cin, tf_pad=tf_pad)
            pw = ConvBnRelu(cin, cout, 1, tf_pad=tf_pad)
            blocks += [dw, pw]
            self.names += [(f"block{i}_dw", dw), (f"block{i}_pw", pw)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(128, num_classes, 1, bias=True)
        self.up = Up(8, legacy_up)

    def forward(self, x):
        return self.up(self.head(self.blocks(self.stem(x))))


class UNet(nn.Module):
    """src/models/unet.ts: per stage two conv3x3+BN+ReLU (max-pool between stages), per level bilinear x2 up,
    concat [up, skip], one conv3x3+BN+ReLU; 1x1 classifier. unet: 32-64-128-256, unet-lite: 16-32-64-128."""

    def __init__(self, num_classes, stages, tf_pad=True, legacy_up=True, centred_pool=True):
        super().__init__()
        self.names = []
        # softseg pools 3x3 / stride 2 / pad 1 (centred where its legacy upsampling reads back); plain PyTorch 2x2
        self.pool = (lambda x: F.max_pool2d(x, 3, 2, 1)) if centred_pool else (lambda x: F.max_pool2d(x, 2, 2))
        self.enc = nn.ModuleList()
        cin = 3
        for i, c in enumerate(stages, 1):
            a, b = ConvBnRelu(cin, c, 3, tf_pad=tf_pad), ConvBnRelu(c, c, 3, tf_pad=tf_pad)
            self.names += [(f"enc{i}_a", a), (f"enc{i}_b", b)]
            self.enc.append(nn.Sequential(a, b))
            cin = c
        self.dec = nn.ModuleList()
        for i in range(len(stages) - 2, -1, -1):  # decoder levels from the deepest
            d = ConvBnRelu(stages[i + 1] + stages[i], stages[i], 3, tf_pad=tf_pad)
            self.names.append((f"dec{i + 1}", d))
            self.dec.append(d)
        self.up = Up(2, legacy_up)
        self.head = nn.Conv2d(stages[0], num_classes, 1, bias=True)

    def forward(self, x):
        skips = []
        for i, stage in enumerate(self.enc):
            if i > 0:
                x = self.pool(x)
            x = stage(x)
            skips.append(x)
        for j, d in enumerate(self.dec):
            x = d(torch.cat([self.up(x), skips[len(skips) - 2 - j]], 1))
        return self.head(x)


def create_model(name, num_classes, side, pad=None, up=None):
    """pad: 'tf' | 'sym', up: 'legacy' | 'half'; None = the side's choice."""
    mirror = side == "mirror"
    tf_pad = (pad or "sym") == "tf"
    legacy = (up or ("legacy" if mirror else "half")) == "legacy"
    if name == "mobile-unet":
        return MobileUNet(num_classes, tf_pad=tf_pad, legacy_up=legacy)
    if name in ("unet", "unet-lite"):
        return UNet(num_classes, [32, 64, 128, 256] if name == "unet" else [16, 32, 64, 128], tf_pad=tf_pad, legacy_up=legacy, centred_pool=mirror)
    raise SystemExit(f"twin: no model {name}")


# ------------------------------------------------------------------------------------ weight exchange


def tf_to_torch(name, arr, shape):
    t = torch.tensor(np.asarray(arr, np.float32).reshape(shape))
    if name.endswith("depthwise_kernel"):  # [k,k,c,1] -> [c,1,k,k]
        return t.permute(2, 3, 0, 1).contiguous()
    if name.endswith("kernel"):  # [k,k,cin,cout] -> [cout,cin,k,k]
        return t.permute(3, 2, 0, 1).contiguous()
    return t


def torch_to_tf(name, t):
    if name.endswith("depthwise_kernel"):
        return t.permute(2, 3, 0, 1)
    if name.endswith("kernel"):
        return t.permute(2, 3, 1, 0)
    return t


def param_map(model):
    """softseg weight name -> torch tensor (parameter or BN buffer)."""
    out = {}
    for prefix, m in model.names:
        kname = "depthwise_kernel" if prefix.endswith("_dw") else "kernel"
        conv_name = prefix if prefix.endswith("_dw") else f"{prefix}_conv"
        out[f"{conv_name}/{kname}"] = m.conv.conv.weight
        out[f"{prefix}_bn/gamma"] = m.bn.weight
        out[f"{prefix}_bn/beta"] = m.bn.bias
        out[f"{prefix}_bn/moving_mean"] = m.bn.running_mean
        out[f"{prefix}_bn/moving_variance"] = m.bn.running_var
    out["logits/kernel"] = model.head.weight
    out["logits/bias"] = model.head.bias
    return out


def load_softseg_weights(model, weights):
    pm = param_map(model)
    with torch.no_grad():
        for name, w in weights.items():
            pm[name].copy_(tf_to_torch(name, w["data"], w["shape"]))


# ------------------------------------------------------------------------------------------- losses


def jml_core(logits, y, keep, threshold=0.01, smooth=1.0):
    """JML1 per batch with PRESENT classes (a class is active where its masked target exceeds `threshold`
    somewhere in the batch): y [N,C,H,W] hard one-hot or soft, keep [N,H,W] 0/1."""
    k = keep.unsqueeze(1)
    prob = torch.exp(F.log_softmax(logits, dim=1)) * k
    y = y * k
    cx, cy = prob.sum(dim=(0, 2, 3)), y.sum(dim=(0, 2, 3))
    cd = (prob - y).abs().sum(dim=(0, 2, 3))
    tp = (cx + cy - cd) / 2
    fp, fn = cx - tp, cy - tp
    active = (y.amax(dim=(0, 2, 3)) > threshold).float()
    loss_c = 1 - (tp + smooth) / (tp + fp + fn + smooth)
    return (loss_c * active).sum() / active.sum().clamp(min=1)


def jml(logits, labels, ignore_index=255, smooth=1.0, threshold=0.01):
    """JML1 per batch with PRESENT classes, on hard labels (softseg's ce+jml default)."""
    c = logits.shape[1]
    keep = (labels != ignore_index).float()
    y = F.one_hot(labels.clamp(0, c - 1), c).permute(0, 3, 1, 2).float()
    return jml_core(logits, y, keep, threshold, smooth)


def kl_t(logits, p, keep, T=1.0):
    """T^2 * mean over kept pixels of sum_c p_c (ln p_c - ln softmax(z/T)_c); p [N,C,H,W]."""
    logq = F.log_softmax(logits / T, dim=1)
    kl = (torch.xlogy(p, p) - p * logq).sum(1)
    return T * T * (kl * keep).sum() / keep.sum().clamp(min=1)


def objective(kind, logits, labels, ignore_index=255):
    ce = F.cross_entropy(logits, labels, ignore_index=ignore_index)
    if kind == "ce":
        return ce
    return 0.25 * ce + 0.75 * jml(logits, labels, ignore_index)


def teacher_terms(logits, p, keep, threshold=0.01):
    """The teacher part of JML-KD (method.md 5.1) without its weights: 0.25 KL_T + 0.75 JML(soft, PRESENT)."""
    return 0.25 * kl_t(logits, p, keep) + 0.75 * jml_core(logits, p, keep, threshold)


def kd_objective(logits, labels, p, keep, label_weight=0.5, teacher_weight=0.5):
    """softseg distill's default: lab_w (0.25 CE + 0.75 JML(y)) + tea_w (0.25 KL + 0.75 JML(p_t; K))."""
    return label_weight * objective("ce+jml", logits, labels) + teacher_weight * teacher_terms(logits, p, keep)


def make_optimizer(model, side, lr, weight_decay):
    if side == "mirror":
        decay = [p for p in model.parameters() if p.dim() == 4]
        rest = [p for p in model.parameters() if p.dim() != 4]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    else:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


# -------------------------------------------------------------------------------------------- check


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def check(path):
    d = json.load(open(path))
    torch.manual_seed(0)
    n, s, c = d["batch"], d["size"], d["classes"]
    model = create_model(d["model"], c, "mirror")
    load_softseg_weights(model, d["initial"])
    pm = param_map(model)
    recipe = d.get("recipe", "train")
    batches = [(torch.tensor(np.asarray(b["images"], np.float32).reshape(n, s, s, 3)).permute(0, 3, 1, 2).contiguous(),
                torch.tensor(np.asarray(b["labels"], np.int64).reshape(n, s, s)),
                None if recipe == "train" else torch.tensor(np.asarray(b["teacherProb"], np.float32).reshape(n, s, s, c)).permute(0, 3, 1, 2).contiguous(),
                None if recipe == "train" else torch.tensor(np.asarray(b["keep"], np.float32).reshape(n, s, s))) for b in d["batches"]]

    def loss_of(logits, y, p, keep):
        if recipe == "distill":
            return kd_objective(logits, y, p, keep)
        if recipe == "ssl":
            return objective("ce+jml", logits, y) + teacher_terms(logits, p, keep)
        return objective(d["loss"], logits, y)
    # first-step gradients (BN state restored after)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model.zero_grad()
    loss_of(model(batches[0][0]), *batches[0][1:]).backward()
    worst = []
    for name, g in d["grad0"].items():
        tg = torch_to_tf(name, pm[name].grad).detach().numpy()
        worst.append((rel(g, tg), name))
    worst.sort(reverse=True)
    print("first-step gradient, max |Δ|/max|g| per variable (worst 5; batch-norm γ gradients are ~1e-7 sums of cancelling terms):")
    for r, name in worst[:5]:
        print(f"  {name:32s} {r:.2e}")
    rest = [(r, name) for r, name in worst if not name.endswith("gamma")]
    print(f"  worst other than γ: {rest[0][1]} {rest[0][0]:.2e}")
    model.load_state_dict(state)
    opt = make_optimizer(model, "mirror", d["lr"], d["weightDecay"])
    losses = []
    for x, y, p, keep in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model(x), y, p, keep)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print("step  softseg    twin       rel")
    for i, (a, b) in enumerate(zip(d["losses"], losses)):
        print(f"{i:4d}  {a:.6f}  {b:.6f}  {abs(a - b) / abs(b):.1e}")
    worst = sorted(((rel(w["data"], torch_to_tf(name, pm[name]).detach().numpy()), name) for name, w in d["final"].items()), reverse=True)
    print(f"final weights after {len(batches)} steps, worst 5:")
    for r, name in worst[:5]:
        print(f"  {name:32s} {r:.2e}")
    return 0


def lockstep(path):
    """Loads what lockstep.ts wrote (a checkpoint's weights, BN statistics and AdamW moments), computes the
    gradients on the batch of that step and runs the same steps on the recorded batches; prints the differences."""
    d = json.load(open(path))
    model = create_model(d["model"], d["classes"], "mirror")
    load_softseg_weights(model, d["initial"])
    pm = param_map(model)
    opt = make_optimizer(model, "mirror", d["lr"], d["weightDecay"])
    t = float(d["adam"]["iter"][0])
    for name, p in pm.items():
        if isinstance(p, nn.Parameter) and f"{name}/m" in d["adam"]:
            m = tf_to_torch(name, d["adam"][f"{name}/m"], d["initial"][name]["shape"])
            v = tf_to_torch(name, d["adam"][f"{name}/v"], d["initial"][name]["shape"])
            opt.state[p] = {"step": torch.tensor(t), "exp_avg": m, "exp_avg_sq": v}
    _, batch = open_recording(d["replay"])

    def loss_of(logits, y, p, k):
        if d["recipe"] == "distill":
            return kd_objective(logits, y, p, k)
        if d["recipe"] == "ssl":
            return objective("ce+jml", logits, y) + teacher_terms(logits, p, k)
        return objective(d["loss"], logits, y)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model.zero_grad()
    x, y, p, k = batch(d["start"])
    loss0 = loss_of(model(x), y, p, k)
    loss0.backward()
    print(f"{d['checkpoint']} (step {d['start']}): loss softseg {d['loss0']:.6f} twin {loss0.item():.6f} rel {abs(d['loss0'] - loss0.item()) / abs(loss0.item()):.1e}")
    worst = sorted(((rel(g, torch_to_tf(name, pm[name].grad).detach().numpy()), name) for name, g in d["grad0"].items()), reverse=True)
    print("gradient at the checkpoint, max |Δ|/max|g| per variable (worst 5):")
    for r, name in worst[:5]:
        print(f"  {name:32s} {r:.2e}")
    model.load_state_dict(state)
    losses = []
    for j in range(d["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(d["start"] + j, d["lr"], d["totalSteps"], d["warmupSteps"])
        opt.zero_grad(set_to_none=True)
        x, y, p, k = batch(d["start"] + j)
        loss = loss_of(model(x), y, p, k)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for j, (a, b) in enumerate(zip(d["losses"], losses)):
        if j < 5 or j == len(losses) - 1 or (j + 1) % 10 == 0:
            print(f"  step {d['start'] + j}: softseg {a:.6f} twin {b:.6f} rel {abs(a - b) / abs(b):.1e}")
    worst = sorted(((rel(wt["data"], torch_to_tf(name, pm[name]).detach().numpy()), name) for name, wt in d["final"].items()), reverse=True)
    moved = sorted(((rel(np.asarray(wt["data"]) - np.asarray(d["initial"][name]["data"]), torch_to_tf(name, pm[name]).detach().numpy().ravel() - np.asarray(d["initial"][name]["data"])), name) for name, wt in d["final"].items()), reverse=True)
    print(f"after {d['steps']} step(s): weights max |Δ|/max|w| (worst 3): " + ", ".join(f"{nm} {r:.1e}" for r, nm in worst[:3]))
    print("  and of the update (w_after - w_checkpoint), worst 5:")
    for r, name in moved[:5]:
        print(f"  {name:32s} {r:.2e}")
    return 0


# -------------------------------------------------------------------------------------- init, data, train


def init_mirror(model):
    """softseg's initialisers before Dec 2026: He-normal (TF.js: truncated at 2σ, σ = √(2/fan)) for convs before BN, fan = k·k
    for depthwise kernels; Glorot-uniform classifier kernel, zero bias."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m is not model.head:
                k = m.kernel_size[0] * m.kernel_size[1]
                fan = k if m.groups > 1 else k * m.in_channels
                w = torch.empty(m.weight.shape)
                sd = math.sqrt(2.0 / fan)
                nn.init.trunc_normal_(w, 0.0, sd, -2 * sd, 2 * sd)
                m.weight.copy_(w)
        fan_in, fan_out = model.head.in_channels, model.head.out_channels
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        model.head.weight.uniform_(-limit, limit)
        model.head.bias.zero_()


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_split(root, labeled=True, names_too=False):
    from PIL import Image
    import os
    names = sorted(n for n in os.listdir(os.path.join(root, "images")) if n.endswith(".png"))
    images = np.stack([np.asarray(Image.open(os.path.join(root, "images", n)).convert("RGB"), np.float32) / 255.0 for n in names])
    images = (images - MEAN) / STD
    masks = None
    if labeled:
        masks = np.stack([np.asarray(Image.open(os.path.join(root, "masks", os.path.splitext(n)[0] + ".png")), np.int64) for n in names])
    out = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), None if masks is None else torch.from_numpy(masks))
    return out + (names,) if names_too else out


def colour_jitter(img, rng, b, c, s):
    """brightness/contrast/saturation jitter on a normalised CHW image (in 0..1 space, as torchvision's)."""
    x = img * torch.from_numpy(STD)[:, None, None] + torch.from_numpy(MEAN)[:, None, None]
    if b > 0:
        x = x * rng.uniform(1 - b, 1 + b)
    if c > 0:
        m = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
        x = (x - m) * rng.uniform(1 - c, 1 + c) + m
    if s > 0:
        g = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
        x = (x - g) * rng.uniform(1 - s, 1 + s) + g
    x = x.clamp(0, 1)
    return (x - torch.from_numpy(MEAN)[:, None, None]) / torch.from_numpy(STD)[:, None, None]


NEAREST = "nearest-exact"  # set from --mask-resize: PyTorch's "nearest" samples floor(o * in/out), "nearest-exact" floor((o + 0.5) * in/out) as softseg


def augment(img, mask, rng, crop, scale, flip, jitter, soft=None):
    """Random scale (bilinear image and soft labels, nearest mask), pad bottom/right to the crop (image 0 = mean
    colour, mask ignore, soft labels 0), random crop, horizontal flip, optional colour jitter. Returns the image,
    mask, soft labels (None when not given) and keep (1 on image pixels, 0 on padding)."""
    if jitter:
        img = colour_jitter(img, rng, *jitter)
    h, w = img.shape[1:]
    keep = torch.ones(h, w)
    if scale:
        s = rng.uniform(scale[0], scale[1])
        sh, sw = max(1, round(h * s)), max(1, round(w * s))
        img = F.interpolate(img[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        if mask is not None:
            mask = F.interpolate(mask[None, None].float(), size=(sh, sw), mode=NEAREST)[0, 0].long()
        if soft is not None:
            soft = F.interpolate(soft[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        keep = torch.ones(sh, sw)
        h, w = sh, sw
    if h < crop or w < crop:
        ph, pw = max(crop - h, 0), max(crop - w, 0)
        img = F.pad(img, (0, pw, 0, ph), value=0.0)
        mask = None if mask is None else F.pad(mask, (0, pw, 0, ph), value=255)
        soft = None if soft is None else F.pad(soft, (0, pw, 0, ph), value=0.0)
        keep = F.pad(keep, (0, pw, 0, ph), value=0.0)
        h, w = img.shape[1:]
    y0, x0 = rng.randint(0, h - crop), rng.randint(0, w - crop)  # inclusive bounds
    img, keep = img[:, y0:y0 + crop, x0:x0 + crop], keep[y0:y0 + crop, x0:x0 + crop]
    mask = None if mask is None else mask[y0:y0 + crop, x0:x0 + crop]
    soft = None if soft is None else soft[:, y0:y0 + crop, x0:x0 + crop]
    if flip and rng.random() < 0.5:
        img, keep = img.flip(2), keep.flip(1)
        mask = None if mask is None else mask.flip(1)
        soft = None if soft is None else soft.flip(2)
    return img, mask, soft, keep


def gaussian_blur(x, sigma):
    """Separable Gaussian blur of a CHW image, radius ceil(2.5 sigma), edge pixels repeated."""
    r = max(1, math.ceil(2.5 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    c = x.shape[0]
    x = F.conv2d(F.pad(x[None], (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x[0]


def strong_view(img, rng, b=0.5, c=0.5, s=0.5, gray_p=0.2, blur_p=0.5, sigma=(0.1, 2.0)):
    """The student's strong view of an unlabeled image (softseg's `strong` photometric values): brightness,
    contrast, saturation factors in random order, random grayscale, random Gaussian blur; on a normalised CHW image."""
    mean, std = torch.from_numpy(MEAN)[:, None, None], torch.from_numpy(STD)[:, None, None]
    x = img * std + mean
    luma = lambda t: 0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2]
    fb, fc, fs = rng.uniform(max(0, 1 - b), 1 + b), rng.uniform(max(0, 1 - c), 1 + c), rng.uniform(max(0, 1 - s), 1 + s)
    ops = [lambda t: t * fb, lambda t: (t - luma(t).mean()) * fc + luma(t).mean(), lambda t: (t - luma(t)[None]) * fs + luma(t)[None]]
    rng.shuffle(ops)
    for op in ops:
        x = op(x).clamp(0, 1)
    if rng.random() < gray_p:
        x = luma(x)[None].repeat(3, 1, 1)
    if rng.random() < blur_p:
        x = gaussian_blur(x, rng.uniform(*sigma))
    return (x - mean) / std


def cutmix(maps, rng, p=0.5):
    """CutMix among the rows of a batch, in place on every map (same boxes): with probability p per row a box of
    area ratio 1 - lambda (lambda ~ U(0,1), centre uniform, clipped) from another row, as it was before any paste."""
    n = maps[0].shape[0]
    h, w = maps[0].shape[-2:]
    if n < 2:
        return
    boxes = []
    for row in range(n):
        if not rng.random() < p:
            continue
        src = (row + 1 + rng.randrange(n - 1)) % n
        r = math.sqrt(1 - rng.random())
        bh, bw = round(h * r), round(w * r)
        cy, cx = rng.randrange(h), rng.randrange(w)
        y0, y1 = max(0, cy - bh // 2), min(h, cy + -(-bh // 2))
        x0, x1 = max(0, cx - bw // 2), min(w, cx + -(-bw // 2))
        if y1 > y0 and x1 > x0:
            boxes.append((row, src, y0, y1, x0, x1))
    for m in maps:
        before = m.clone()
        for row, src, y0, y1, x0, x1 in boxes:
            m[row, ..., y0:y1, x0:x1] = before[src, ..., y0:y1, x0:x1]


def lr_at(step, lr, total, warmup=None, ratio=0.1, power=0.9):
    """softseg's schedule: linear warm-up from ratio·lr (5% of the run), then poly decay to 0."""
    warmup = min(1000, int(0.05 * total)) if warmup is None else warmup
    if step < warmup:
        return lr * (ratio + (1 - ratio) * step / warmup)
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (1 - p) ** power


@torch.no_grad()
def evaluate(model, images, masks, num_classes, batch=50, bins=10):
    model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    img_ious = []
    bin_n, bin_acc, bin_conf = np.zeros(bins), np.zeros(bins), np.zeros(bins)
    for i in range(0, len(images), batch):
        p = F.softmax(model(images[i:i + batch]), dim=1)
        cmax, pred = p.max(1)
        y = masks[i:i + batch]
        for n in range(len(y)):
            valid = y[n] != 255
            if valid.sum() == 0:
                continue
            t, q = y[n][valid], pred[n][valid]
            cm = torch.bincount(t * num_classes + q, minlength=num_classes ** 2).reshape(num_classes, num_classes).double()
            conf += cm
            tp = cm.diag()
            fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
            present = cm.sum(1) > 0
            img_ious.append((tp[present] / (tp + fp + fn)[present]).mean().item())
            cv, ok = cmax[n][valid].numpy(), (q == t).numpy()
            b = np.minimum((cv * bins).astype(int), bins - 1)
            np.add.at(bin_n, b, 1)
            np.add.at(bin_acc, b, ok)
            np.add.at(bin_conf, b, cv)
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    nz = bin_n > 0
    ece = 100 * np.sum(np.abs(bin_acc[nz] - bin_conf[nz])) / bin_n.sum()
    model.train()
    return {"mIoUD": 100 * iou.mean().item(), "mIoUI": 100 * float(np.mean(img_ious)), "ECED": float(ece)}


def load_probs(folder, split, names, size):
    """Teacher probabilities exported by bench/parity/teacher.ts: raw float32 [N, H, W, C] in sorted name order."""
    import os
    meta = json.load(open(os.path.join(folder, "meta.json")))
    if meta[split] != names:
        raise SystemExit(f"twin: {folder}/{split}.f32 does not list the images of the data folder")
    c = meta["classes"]
    arr = np.fromfile(os.path.join(folder, f"{split}.f32"), np.float32).reshape(len(names), size[0], size[1], c)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


class Sampler:
    """Shuffled passes over n items with its own RNG (softseg's loaders: one per source, seeds seed and seed+1)."""

    def __init__(self, n, rng):
        self.n, self.rng, self.order, self.pos = n, rng, [], 0

    def next(self):
        if self.pos >= len(self.order):
            self.order, self.pos = list(range(self.n)), 0
            self.rng.shuffle(self.order)
        self.pos += 1
        return self.order[self.pos - 1]


def twin_batches(a, x_train, y_train, names):
    """The twin's own loader: yields (images, labels, teacher probabilities, keep) per step for --recipe, with its
    own sampler and augmentation (python RNGs seeded --seed for labeled images, --seed + 1 for unlabeled ones)."""
    import random
    rng = random.Random(a.seed)
    size = tuple(x_train.shape[2:])
    scale = None if a.scale == "none" else tuple(float(v) for v in a.scale.split(","))
    jitter = None if a.jitter == "none" else tuple(float(v) for v in a.jitter.split(","))
    crop = a.crop or x_train.shape[2]
    augmenting = scale or crop != x_train.shape[2] or a.flip
    n_unl = 0
    if a.recipe != "train":
        if not (a.teacher_probs and a.unlabeled):
            raise SystemExit(f"twin: --recipe {a.recipe} needs --teacher-probs and --unlabeled")
        p_train = load_probs(a.teacher_probs, "train", names, size)
        x_unl, _, unl_names = load_split(a.unlabeled, labeled=False, names_too=True)
        p_unl = load_probs(a.teacher_probs, "unlabeled", unl_names, size)
        n_unl = round(a.batch * a.unlabeled_ratio)
        rng_u = random.Random(a.seed + 1)
        draw_u = Sampler(len(x_unl), rng_u)
    draw = Sampler(len(x_train), rng)
    for _ in range(a.steps):
        xs, ys, ps, ks = [], [], [], []
        for _ in range(a.batch - n_unl):
            i = draw.next()
            soft = p_train[i] if n_unl else None
            if augmenting:
                xi, yi, pi, ki = augment(x_train[i], y_train[i], rng, crop, scale, a.flip, jitter, soft)
            else:
                xi, yi, pi, ki = x_train[i], y_train[i], soft, torch.ones(size)
            xs.append(xi)
            ys.append(yi)
            ps.append(pi)
            # distill: the teacher terms are restricted to non-ignored GT pixels of labeled images; ssl: none there
            ks.append(ki * (yi != 255).float() if a.recipe == "distill" else torch.zeros(size))
        xu, pu, ku = [], [], []
        for _ in range(n_unl):
            i = draw_u.next()
            img = strong_view(x_unl[i], rng_u) if a.recipe == "ssl" else x_unl[i]
            if augmenting:
                xi, _, pi, ki = augment(img, None, rng_u, crop, scale, a.flip, jitter, p_unl[i])
            else:
                xi, pi, ki = img, p_unl[i], torch.ones(size)
            xu.append(xi)
            pu.append(pi)
            ku.append(ki)
        if n_unl and a.recipe == "ssl" and a.cutmix > 0:
            maps = [torch.stack(xu), torch.stack(pu), torch.stack(ku)]
            cutmix(maps, rng_u, a.cutmix)
            xu, pu, ku = list(maps[0]), list(maps[1]), list(maps[2])
        x = torch.stack(xs + xu)
        y = torch.stack(ys + [torch.full(size, 255, dtype=torch.long)] * n_unl)
        if a.recipe == "train":
            yield x, y, None, None
        else:
            yield x, y, torch.stack(ps + pu), torch.stack(ks + ku)


def train(a):
    import time
    torch.manual_seed(a.seed)
    x_train, y_train, names = load_split(a.data, names_too=True)
    x_val, y_val = load_split(a.val)
    c = a.classes
    model = create_model(a.model, c, a.side, a.pad, a.up)
    if a.init == "mirror":
        init_mirror(model)
    opt = make_optimizer(model, a.side if a.decay == "auto" else ("mirror" if a.decay == "kernels" else "plain"), a.lr, a.weight_decay)
    start = time.time()
    losses = []
    model.train()
    for step, (x, y, p, keep) in enumerate(twin_batches(a, x_train, y_train, names)):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, a.steps)
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        if a.recipe == "train":
            loss = objective(a.loss, logits, y)
        else:
            if a.recipe == "distill":
                loss = kd_objective(logits, y, p, keep)
            else:
                loss = objective("ce+jml", logits, y) + teacher_terms(logits, p, keep)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    val = evaluate(model, x_val, y_val, c)
    tr = evaluate(model, x_train, y_train, c)
    return {"side": a.side, "recipe": a.recipe, "init": a.init, "pad": a.pad, "up": a.up, "decay": a.decay, "lr": a.lr, "loss": a.loss, "seed": a.seed, "steps": a.steps, "val": val, "train": tr,
            "lossLast": float(np.mean(losses[-50:])), "seconds": time.time() - start, "threads": torch.get_num_threads()}


def open_recording(d):
    """A folder from replay.ts: its meta.json and batch(i), the i-th recorded batch in twin_batches' format (NCHW
    images, long labels, and for distill/ssl NCHW teacher probabilities and the float keep mask; else None)."""
    import os
    meta = json.load(open(os.path.join(d, "meta.json")))
    n, (h, w) = meta["n"], meta["size"]
    images = np.memmap(os.path.join(d, "images.f32"), np.float32, "r").reshape(-1, n, h, w, 3)
    masks = np.memmap(os.path.join(d, "masks.u8"), np.uint8, "r").reshape(-1, n, h, w)
    teacher = keep = None
    if meta["recipe"] != "train":
        teacher = np.memmap(os.path.join(d, "teacher.f32"), np.float32, "r").reshape(-1, n, h, w, meta["classes"])
        keep = np.memmap(os.path.join(d, "keep.u8"), np.uint8, "r").reshape(-1, n, h, w)

    def batch(i):
        x = torch.from_numpy(np.array(images[i])).permute(0, 3, 1, 2).contiguous()
        y = torch.from_numpy(np.array(masks[i], np.int64))
        if teacher is None:
            return x, y, None, None
        return x, y, torch.from_numpy(np.array(teacher[i])).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(np.array(keep[i], np.float32))
    return meta, batch


def recorded_batches(d, steps):
    meta, batch = open_recording(d)
    for i in range(min(steps, meta["steps"])):
        yield batch(i)


def batch_stats(a):
    """softseg's recorded batches (--replay) against the twin's own loader for the same recipe, augmentation and
    seed: label frequencies of the labeled rows, teacher-term share, the teacher targets' confidence, entropy and
    agreement with the labels, image mean/std, padding share."""
    c = a.classes
    n_lab = a.batch - (round(a.batch * a.unlabeled_ratio) if a.recipe != "train" else 0)
    x_train, y_train, names = load_split(a.data, names_too=True)

    def summary(batches):
        hist, keep_l, keep_u, s1, s2, pad, npx = np.zeros(256), [], [], np.zeros(3), np.zeros(3), 0, 0
        kept_px, max_sum, ent_sum, agree, labeled_px = 0, 0.0, 0.0, 0, 0
        for x, y, p, k in batches:
            hist += np.bincount(y[:n_lab].numpy().ravel(), minlength=256)
            if k is not None:
                keep_l.append(k[:n_lab].mean().item())
                keep_u.append(k[n_lab:].mean().item())
                # the teacher's targets where its terms apply: confidence, entropy, and (labeled rows) how often
                # their argmax is the ground truth: a target warped differently from the image and mask shows here
                kept = k > 0
                pk = p.permute(0, 2, 3, 1)[kept].double()
                kept_px += pk.shape[0]
                max_sum += pk.max(1).values.sum().item()
                ent_sum -= (pk * torch.log(pk.clamp_min(1e-12))).sum().item()
                lab = kept[:n_lab] & (y[:n_lab] != 255)
                agree += (p[:n_lab].argmax(1) == y[:n_lab])[lab].sum().item()
                labeled_px += lab.sum().item()
            xd = x.double()
            s1 += xd.sum(dim=(0, 2, 3)).numpy()
            s2 += (xd ** 2).sum(dim=(0, 2, 3)).numpy()
            pad += (x.abs().sum(1) == 0).sum().item()
            npx += x.shape[0] * x.shape[2] * x.shape[3]
        mean = s1 / npx
        out = {"ignore %": 100 * hist[255] / hist.sum()}
        out.update({f"class {k} %": 100 * hist[k] / hist.sum() for k in range(c)})
        if keep_l:
            out["teacher terms, labeled rows %"] = 100 * float(np.mean(keep_l))
            out["teacher terms, unlabeled rows %"] = 100 * float(np.mean(keep_u))
            out["teacher max prob (kept px)"] = max_sum / max(1, kept_px)
            out["teacher entropy (kept px)"] = ent_sum / max(1, kept_px)
            out["teacher argmax = label %"] = 100 * agree / max(1, labeled_px)
        out.update({f"image mean ch{k}": mean[k] for k in range(3)})
        out.update({f"image std ch{k}": math.sqrt(s2[k] / npx - mean[k] ** 2) for k in range(3)})
        out["padding %"] = 100 * pad / npx
        return out
    ours = summary(recorded_batches(a.replay, a.steps))
    theirs = summary(twin_batches(a, x_train, y_train, names))
    print(f"{'statistic':34s} {'softseg':>9s} {'twin':>9s}")
    for k in ours:
        print(f"{k:34s} {ours[k]:9.4f} {theirs[k]:9.4f}")
    return 0


def train_replay(a):
    """Trains the mirror model from softseg's initial weights on the batches softseg's loader produced
    (bench/parity/replay.ts), with the same objective, AdamW groups and schedule; prints the loss in softseg's
    10-step windows beside softseg's own and returns the val/train metrics."""
    import os
    import time
    d = a.replay
    meta, batch = open_recording(d)
    c, steps = a.classes, meta["steps"]
    if a.steps and a.steps < steps:
        steps = a.steps
    torch.manual_seed(a.seed)
    x_train, y_train = load_split(a.data)
    x_val, y_val = load_split(a.val)
    model = create_model(a.model, c, "mirror", a.pad, a.up)
    load_softseg_weights(model, json.load(open(os.path.join(d, "init.json"))))
    if a.perturb > 0:  # chaos probe: the same run from weights moved by a float32 rounding's size
        gen = torch.Generator().manual_seed(a.seed)
        with torch.no_grad():
            for prm in model.parameters():
                prm.mul_(1 + a.perturb * torch.randn(prm.shape, generator=gen))
    opt = make_optimizer(model, "mirror", meta["lr"], meta["weightDecay"])
    start = time.time()
    window, windows = [], []
    model.train()
    for step in range(steps):
        x, y, p, k = batch(step)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, meta["lr"], meta["steps"], meta["warmupSteps"])
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        if meta["recipe"] == "train":
            loss = objective(meta["loss"], logits, y)
        else:
            loss = kd_objective(logits, y, p, k) if meta["recipe"] == "distill" else objective("ce+jml", logits, y) + teacher_terms(logits, p, k)
        loss.backward()
        opt.step()
        window.append(loss.item())
        if (step + 1) % 10 == 0:
            windows.append([step + 1, float(np.mean(window))])
            window = []
    theirs = dict((s, l) for s, l in json.load(open(os.path.join(d, "softseg-losses.json"))))
    print("step   softseg   twin      rel (10-step mean loss)", file=sys.stderr)
    for s, l in windows:
        if s in theirs and (s <= 50 or s % 100 == 0):
            print(f"{s:5d}  {theirs[s]:.5f}  {l:.5f}  {abs(theirs[s] - l) / abs(l):.1e}", file=sys.stderr)
    val = evaluate(model, x_val, y_val, c)
    tr = evaluate(model, x_train, y_train, c)
    return {"side": "replay", "perturb": a.perturb, "recipe": meta["recipe"], "seed": meta["seed"], "steps": steps, "val": val, "train": tr, "losses": windows,
            "seconds": time.time() - start, "threads": torch.get_num_threads()}


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    pc = sub.add_parser("check")
    pc.add_argument("file")
    pc.add_argument("--threads", type=int, default=1)
    pl = sub.add_parser("lockstep")
    pl.add_argument("file")
    pl.add_argument("--threads", type=int, default=1)
    pt = sub.add_parser("train")
    pt.add_argument("--data", required=True)
    pt.add_argument("--val", required=True)
    pt.add_argument("--model", default="mobile-unet")
    pt.add_argument("--classes", type=int, default=11)
    pt.add_argument("--side", choices=["mirror", "plain"], default="plain")
    pt.add_argument("--init", choices=["mirror", "torch"], default=None)
    pt.add_argument("--pad", choices=["tf", "sym"], default=None)
    pt.add_argument("--up", choices=["legacy", "half"], default=None)
    pt.add_argument("--decay", choices=["auto", "kernels", "all"], default="auto")
    pt.add_argument("--loss", choices=["ce", "ce+jml"], default="ce+jml")
    pt.add_argument("--recipe", choices=["train", "distill", "ssl"], default="train",
                    help="distill: JML-KD on labeled + unlabeled images; ssl: fixed-teacher soft pseudo-labels on a strong view with CutMix")
    pt.add_argument("--teacher-probs", default=None, help="folder from bench/parity/teacher.ts")
    pt.add_argument("--unlabeled", default=None, help="softseg folder of unlabeled images")
    pt.add_argument("--unlabeled-ratio", type=float, default=0.5)
    pt.add_argument("--cutmix", type=float, default=0.5)
    pt.add_argument("--steps", type=int, default=2500)
    pt.add_argument("--batch", type=int, default=8)
    pt.add_argument("--lr", type=float, default=1e-3)
    pt.add_argument("--weight-decay", type=float, default=1e-2)
    pt.add_argument("--crop", type=int, default=0)
    pt.add_argument("--scale", default="none", help="lo,hi or none")
    pt.add_argument("--flip", action="store_true")
    pt.add_argument("--mask-resize", choices=["nearest", "exact"], default=None,
                    help="mask resampling when scaling: nearest = F.interpolate(mode='nearest') (plain's default), exact = 'nearest-exact' (softseg's, mirror's default)")
    pt.add_argument("--jitter", default="none", help="brightness,contrast,saturation or none")
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--threads", type=int, default=1)
    pt.add_argument("--replay", default=None, help="folder from bench/parity/replay.ts: train on softseg's own initial weights and batches")
    pt.add_argument("--batch-stats", action="store_true",
                    help="with --replay: compare the recorded batches' statistics with the twin's own loader (same recipe, augmentation, seed, --steps) instead of training")
    pt.add_argument("--perturb", type=float, default=0.0,
                    help="with --replay: multiply every initial weight by 1 + PERTURB * N(0,1) (torch seed --seed): how far float rounding alone moves a run")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.cmd == "check":
        return check(a.file)
    if a.cmd == "lockstep":
        return lockstep(a.file)
    if a.init is None:
        a.init = "torch"
    global NEAREST
    NEAREST = "nearest-exact" if (a.mask_resize or ("exact" if a.side == "mirror" else "nearest")) == "exact" else "nearest"
    if a.replay and a.batch_stats:
        return batch_stats(a)
    print("@@TWIN " + json.dumps(train_replay(a) if a.replay else train(a)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
