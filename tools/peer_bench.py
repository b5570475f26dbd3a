"""tools/peer_bench.py: the PyTorch peer of `retort bench` (model, kd, gemm).

Measures the same workloads as tools/cmd_bench.cpp and tools/bench_workloads.cpp, the same way,
and prints the same JSON records (one object per line, the same keys) with one key more,
"peer", naming PyTorch and the BLAS library it runs on. tools/bench-cpu.sh runs both and
tools/bench_table.py puts them side by side.

  model SPEC [--train] --batch N --input CxHxW --threads N --steps N [--device cuda] [--ranks N]
        3 warm-up steps, then `steps` timed ones on one fixed random batch: a no-grad forward
        in eval mode, or (--train) forward, cross-entropy, backward, SGD (lr 0.01, momentum 0.9);
        --ranks N: the training step under DistributedDataParallel (gloo) over N processes
  kd TEACHER STUDENT --batch N --input CxHxW --threads N --steps N --T 4
        teacher in eval mode under no_grad, student trained on
        cross_entropy + T^2 * KL(softmax(teacher / T) || softmax(student / T)), batchmean
  gemm --shapes MxNxK[:tt],... --threads N --seconds S
        torch.mm into a preallocated f32 output, each shape for about S seconds; ":tn" means
        op(A) = A^T with A stored K x M (and likewise for B, stored N x K)

Memory is measured as retort measures it: once torch is imported and before anything is built,
the high-water mark is reset (writing 5 to /proc/self/clear_refs) and VmRSS read as the idle
baseline; peak_mib is VmHWM at the end minus that baseline.

Models, by retort's specs (name:key=value,...; unknown names and keys are refused):
  resnet18, resnet34, resnet50      torchvision; num_classes, in_chans, stem=imagenet|cifar, img_size
  resnet8 .. resnet110, resnet8x4, resnet32x4, wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2
                                    RepDistiller's CIFAR ResNets and wide ResNets; num_classes,
                                    in_chans, img_size (and drop_rate for the WRNs)
  mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large
                                    torchvision; num_classes, in_chans, width_mult, stem, img_size
  vit_tiny/small/base_patch16_224   timm's VisionTransformer, written out here (timm is not a
                                    Debian package); num_classes, in_chans, img_size, patch_size,
                                    embed_dim, depth, num_heads, mlp_ratio, drop_path_rate
stem=cifar and the CIFAR ResNets' global pooling follow models/resnet.cpp, models/mobilenet.cpp and
models/cifar_resnet.cpp.

Run with Debian's python3 (python3-torch, torchvision): /usr/bin/python3 tools/peer_bench.py ...
"""
import argparse
import ctypes
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class SpecError(ValueError):
    """A spec, shape or option the benchmark refuses; printed as one line, exit code 1."""


# ---- memory of this process (/proc/self/status), as tools/bench_report.cpp reads it ----

def status_mib(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return float(line.split()[1]) / 1024.0
    return 0.0


def reset_peak_resident():
    """Resets VmHWM to the current VmRSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- which BLAS torch's matrix products run on ----

def loaded_blas():
    """(description, kernel name) of the BLAS library mapped into this process.

    torch (Debian's build) calls sgemm_ from whatever libblas.so.3 the dynamic loader found:
    OpenBLAS (which names the core whose kernels it picked), or the netlib reference BLAS.
    """
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if ("blas" in path or "mkl" in path) and path not in paths:
                paths.append(path)
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            version = lib.openblas_get_config().decode().split()
            version = version[1] if len(version) > 1 else "?"
            return "OpenBLAS %s (%s kernels)" % (version, core), core, lib
    for path in paths:
        if "mkl" in path:
            return "MKL", "mkl", None
    if paths:
        return "reference BLAS (%s)" % paths[0], "reference", None
    return "no BLAS library found", "none", None


def set_threads(threads):
    """OpenMP threads of torch's kernels and, for OpenBLAS, of its own thread pool."""
    torch.set_num_threads(threads)
    _, _, lib = loaded_blas()
    if lib is not None and hasattr(lib, "openblas_set_num_threads"):
        lib.openblas_set_num_threads(ctypes.c_int(threads))


def peer_name():
    return "pytorch %s, %s" % (torch.__version__, loaded_blas()[0])


def emit(record):
    print(json.dumps(record), flush=True)


# ---- model specs: "name:key=value,key=value", checked like models/registry.cpp ----

def int_in(lo, hi):
    def parse(key, text):
        try:
            value = int(text)
        except ValueError:
            raise SpecError("key '%s' must be an integer, got '%s'" % (key, text))
        if not lo <= value <= hi:
            raise SpecError("key '%s' must be in [%d, %d], got %d" % (key, lo, hi, value))
        return value
    return parse


def float_in(lo, hi, lo_open=False):
    def parse(key, text):
        try:
            value = float(text)
        except ValueError:
            raise SpecError("key '%s' must be a number, got '%s'" % (key, text))
        if not (lo < value if lo_open else lo <= value) or not value <= hi or math.isnan(value):
            raise SpecError("key '%s' must be in %s%g, %g], got %s"
                            % (key, "(" if lo_open else "[", lo, hi, text))
        return value
    return parse


def choice(*words):
    def parse(key, text):
        if text not in words:
            raise SpecError("key '%s' must be one of %s, got '%s'" % (key, ", ".join(words), text))
        return text
    return parse


def image_size_or_auto(key, text):
    return text if text == "auto" else int_in(8, 4096)(key, text)


def parse_spec(spec, families):
    """-> (name, {key: value}) with every key of the model, defaults filled in."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise SpecError("model spec '%s': the model name is missing" % spec)
    if name not in families:
        raise SpecError("unknown model '%s'; this script knows: %s" % (name, ", ".join(families)))
    keys = families[name]["keys"]
    given = {}
    for item in rest.split(",") if rest.strip() else []:
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq:
            raise SpecError("model spec '%s': '%s' is not key=value" % (spec, item.strip()))
        if not key:
            raise SpecError("model spec '%s': a key is empty in '%s'" % (spec, item.strip()))
        if not value:
            raise SpecError("model spec '%s': key '%s' has no value" % (spec, key))
        if key in given:
            raise SpecError("model spec '%s': key '%s' is given twice" % (spec, key))
        if key not in keys:
            raise SpecError("%s: unknown key '%s'; valid: %s" % (name, key, ", ".join(keys)))
        given[key] = value
    values = {}
    for key, (default, parse) in keys.items():
        try:
            values[key] = parse(key, given.get(key, default))
        except SpecError as e:
            raise SpecError("%s: %s" % (name, e))
    return name, values


# ---- torchvision ResNets (models/resnet.cpp) ----

def make_resnet(name, v):
    cifar = v["stem"] == "cifar"
    model = getattr(torchvision.models, name)(num_classes=v["num_classes"])
    if cifar or v["in_chans"] != 3:
        k, s, p = (3, 1, 1) if cifar else (7, 2, 3)
        model.conv1 = nn.Conv2d(v["in_chans"], 64, k, s, p, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if cifar:
        model.maxpool = nn.Identity()
    img = v["img_size"] if v["img_size"] != "auto" else (32 if cifar else 224)
    return model, img


# ---- RepDistiller's CIFAR ResNets (models/cifar_resnet.cpp) ----

class CifarBasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class CifarResNet(nn.Module):
    """conv1 3x3, bn1, ReLU -> three stages of n BasicBlocks (depth 6n+2) -> global pool -> fc."""

    def __init__(self, depth, widths, in_chans, num_classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin, stages = widths[0], []
        for s in range(3):
            blocks = []
            for b in range(n):
                blocks.append(CifarBasicBlock(cin, widths[s + 1], 2 if s > 0 and b == 0 else 1))
                cin = widths[s + 1]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))


CIFAR_RESNETS = {"resnet%d" % d: (d, (16, 16, 32, 64)) for d in (8, 14, 20, 32, 44, 56, 110)}
CIFAR_RESNETS.update({"resnet8x4": (8, (32, 64, 128, 256)), "resnet32x4": (32, (32, 64, 128, 256))})


def make_cifar_resnet(name, v):
    depth, widths = CIFAR_RESNETS[name]
    return CifarResNet(depth, widths, v["in_chans"], v["num_classes"]), v["img_size"]


class WideBasicBlock(nn.Module):
    """Pre-activation block of RepDistiller's wrn.py: BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3."""

    def __init__(self, cin, cout, stride, drop_rate):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.convShortcut = None if cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        # an identity shortcut adds the block's input, a projection reads its pre-activation
        return out + (x if self.convShortcut is None else self.convShortcut(pre))


class WideResNet(nn.Module):
    """conv1 3x3 (16) -> three stages of n = (depth - 4) / 6 wide blocks (16W, 32W, 64W) -> bn1,
    ReLU -> global pool -> fc."""

    def __init__(self, depth, widen, in_chans, num_classes, drop_rate):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        stages = []
        for s in range(3):
            blocks = [WideBasicBlock(widths[s] if b == 0 else widths[s + 1], widths[s + 1],
                                     (1 if s == 0 else 2) if b == 0 else 1, drop_rate)
                      for b in range(n)]
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.relu(self.bn1(x)).mean((2, 3)))


WIDE_RESNETS = {"wrn_16_1": (16, 1), "wrn_16_2": (16, 2), "wrn_40_1": (40, 1), "wrn_40_2": (40, 2)}


def make_wide_resnet(name, v):
    depth, widen = WIDE_RESNETS[name]
    return WideResNet(depth, widen, v["in_chans"], v["num_classes"], v["drop_rate"]), v["img_size"]


# ---- torchvision MobileNets (models/mobilenet.cpp) ----

# stem=cifar: the feature whose stride-2 conv goes to stride 1, besides the stem (features.0).
MOBILENET_CIFAR_BLOCK = {"mobilenet_v2": 2, "mobilenet_v3_small": 1, "mobilenet_v3_large": 2}


def set_stride_one(block):
    """Sets the stride-2 conv of a block to stride 1 and applies torchvision's residual rule."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        if conv.stride == (2, 2):
            conv.stride = (1, 1)
    if hasattr(block, "use_res_connect"):
        block.use_res_connect = convs[0].in_channels == convs[-1].out_channels


def make_mobilenet(name, v):
    model = getattr(torchvision.models, name)(num_classes=v["num_classes"], width_mult=v["width_mult"])
    stem = model.features[0][0]
    if v["in_chans"] != 3:
        model.features[0][0] = nn.Conv2d(v["in_chans"], stem.out_channels, 3, stem.stride, 1, bias=False)
        nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    if v["stem"] == "cifar":
        model.features[0][0].stride = (1, 1)
        set_stride_one(model.features[MOBILENET_CIFAR_BLOCK[name]])
    return model, v["img_size"]


# ---- timm's VisionTransformer (models/vit.cpp, layers/vit_blocks.h, layers/attention.h) ----

class DropPath(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, drop_path):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """patch embed (conv, kernel = stride = patch) -> [cls, patches] + pos_embed -> blocks -> norm
    -> head(class token): timm's VisionTransformer with global_pool="token"."""

    def __init__(self, img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads,
                 mlp_ratio, drop_path_rate):
        super().__init__()
        self.img_size = img_size
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)
        rates = [drop_path_rate * l / (depth - 1) if depth > 1 else 0.0 for l in range(depth)]
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, r) for r in rates])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if x.shape[2] != self.img_size or x.shape[3] != self.img_size:
            raise SpecError("vit: input is %dx%d but the model was built for %dx%d (set img_size "
                            "in the model spec)" % (x.shape[2], x.shape[3], self.img_size, self.img_size))
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, Np, C)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        t = torch.cat([cls, patches], dim=1) + self.pos_embed
        t = self.norm(self.blocks(t))
        return self.head(t[:, 0])


VITS = {"vit_tiny_patch16_224": (192, 3), "vit_small_patch16_224": (384, 6),
        "vit_base_patch16_224": (768, 12)}


def make_vit(name, v):
    if v["img_size"] % v["patch_size"]:
        raise SpecError("%s: img_size (%d) must be divisible by patch_size (%d)"
                        % (name, v["img_size"], v["patch_size"]))
    if v["embed_dim"] % v["num_heads"]:
        raise SpecError("%s: embed_dim (%d) must be divisible by num_heads (%d)"
                        % (name, v["embed_dim"], v["num_heads"]))
    if int(v["embed_dim"] * v["mlp_ratio"]) < 1:
        raise SpecError("%s: mlp_ratio (%g) times embed_dim (%d) must give an MLP hidden size of "
                        "at least 1" % (name, v["mlp_ratio"], v["embed_dim"]))
    model = VisionTransformer(v["img_size"], v["patch_size"], v["in_chans"], v["num_classes"],
                              v["embed_dim"], v["depth"], v["num_heads"], v["mlp_ratio"],
                              v["drop_path_rate"])
    return model, v["img_size"]


def model_families():
    classes, chans = int_in(1, 100000), int_in(1, 64)
    families = {}
    for name in ("resnet18", "resnet34", "resnet50"):
        families[name] = {"make": make_resnet, "keys": {
            "num_classes": ("1000", classes), "in_chans": ("3", chans),
            "stem": ("imagenet", choice("imagenet", "cifar")), "img_size": ("auto", image_size_or_auto)}}
    for name in CIFAR_RESNETS:
        families[name] = {"make": make_cifar_resnet, "keys": {
            "num_classes": ("100", classes), "in_chans": ("3", chans),
            "img_size": ("32", int_in(8, 4096))}}
    for name in WIDE_RESNETS:
        families[name] = {"make": make_wide_resnet, "keys": {
            "num_classes": ("100", classes), "in_chans": ("3", chans),
            "img_size": ("32", int_in(8, 4096)), "drop_rate": ("0", float_in(0.0, 0.9))}}
    for name in MOBILENET_CIFAR_BLOCK:
        families[name] = {"make": make_mobilenet, "keys": {
            "num_classes": ("1000", classes), "in_chans": ("3", chans),
            "width_mult": ("1.0", float_in(0.0, 4.0, lo_open=True)),
            "stem": ("imagenet", choice("imagenet", "cifar")), "img_size": ("224", int_in(8, 8192))}}
    for name, (dim, heads) in VITS.items():
        families[name] = {"make": make_vit, "keys": {
            "num_classes": ("1000", classes), "in_chans": ("3", chans),
            "img_size": ("224", int_in(1, 4096)), "patch_size": ("16", int_in(1, 4096)),
            "embed_dim": (str(dim), int_in(1, 16384)), "depth": ("12", int_in(1, 256)),
            "num_heads": (str(heads), int_in(1, 1024)), "mlp_ratio": ("4.0", float_in(0.0, 64.0)),
            "drop_path_rate": ("0.0", float_in(0.0, 0.99))}}
    return families


def create_model(spec):
    """-> (module, info) with info = {num_classes, in_chans, img_size}."""
    families = model_families()
    name, values = parse_spec(spec, families)
    model, img_size = families[name]["make"](name, values)
    return model, {"num_classes": values["num_classes"], "in_chans": values["in_chans"],
                   "img_size": img_size}


# ---- the workloads (tools/bench_workloads.cpp) ----

def parse_input(text, info):
    if not text:
        return [info["in_chans"], info["img_size"], info["img_size"]]
    parts = text.split("x")
    if len(parts) != 3 or not all(p.isdigit() and 0 < len(p) <= 5 and int(p) > 0 for p in parts):
        raise SpecError("--input '%s' is not CxHxW with sizes from 1 to 99999 (e.g. 3x32x32)" % text)
    return [int(p) for p in parts]


def fixed_batch(batch, chw, num_classes):
    gen = torch.Generator().manual_seed(1234)
    images = torch.randn([batch] + chw, generator=gen)
    labels = torch.randint(0, num_classes, (batch,), generator=gen)
    return images, labels


def check_channels(info, chw, what):
    if chw[0] != info["in_chans"]:
        raise SpecError("%s takes %d input channels but --input has %d"
                        % (what, info["in_chans"], chw[0]))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(steps, step, device=torch.device("cpu")):
    """step() 3 times untimed (allocations, caches), then `steps` times; the seconds of those.
    On a GPU the clock stops when the queued kernels have finished."""
    for _ in range(3):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def device_and_precision(args):
    """The torch device of --device, with TF32 on only for --precision tf32 (retort computes in plain
    f32 unless asked), and a function running model(x) under the precision: bf16 / f16 as
    torch.autocast, retort's run.precision (16-bit products, f32 master weights)."""
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    autocast_dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.precision)

    def run(model, x):
        if autocast_dtype is None:
            return model(x)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype):
            return model(x).float()
    return device, run


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def run_model(args):
    reset_peak_resident()
    baseline = status_mib("VmRSS")
    torch.manual_seed(0)
    model, info = create_model(args.spec)
    chw = parse_input(args.input, info)
    check_channels(info, chw, args.spec)
    images, labels = fixed_batch(args.batch, chw, info["num_classes"])
    device, run = device_and_precision(args)
    model, images, labels = model.to(device), images.to(device), labels.to(device)
    variant = []
    if args.channels_last:  # PyTorch's faster layout for convolutions (retort has NCHW only)
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
        variant.append("channels_last")
    if args.compile:
        if not hasattr(torch, "compile"):
            raise SpecError("--compile needs PyTorch 2 (this is %s)" % torch.__version__)
        model = torch.compile(model)
        variant.append("torch.compile")

    def forward(x):
        return run(model, x)
    if args.train:
        model.train()
        optimizer = sgd(model)

        def step():
            loss = F.cross_entropy(forward(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                forward(images)
    seconds = time_steps(args.steps, step, device)
    return {"workload": "model", "model": args.spec, "mode": "train" if args.train else "forward",
            "device": str(device), "precision": args.precision, "batch": args.batch, "input": "x".join(map(str, chw)), "threads": torch.get_num_threads(),
            **({"variant": " + ".join(variant)} if variant else {}),
            "img_per_s": round(args.steps * args.batch / seconds, 1),
            "ms_per_step": round(1000.0 * seconds / args.steps, 1),
            "peak_mib": round(status_mib("VmHWM") - baseline, 1), "peer": peer_name()}


def ddp_rank(rank, args, store_path, results):
    """One process of `model --train --ranks N`: PyTorch's DDP over gloo, the batch split as
    retort splits it (the first ranks one sample more), the same steps as run_model."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    set_threads(args.threads)
    dist.init_process_group("gloo", init_method="file://" + store_path, rank=rank,
                            world_size=args.ranks)
    torch.manual_seed(0)
    model, info = create_model(args.spec)
    chw = parse_input(args.input, info)
    check_channels(info, chw, args.spec)
    base, extra = divmod(args.batch, args.ranks)
    local = base + (1 if rank < extra else 0)
    images, labels = fixed_batch(local, chw, info["num_classes"])
    model = DistributedDataParallel(model)
    model.train()
    optimizer = sgd(model)

    def step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time_steps(args.steps, step)
    if rank == 0:
        results.put({"workload": "model", "model": args.spec, "mode": "train", "device": "cpu",
                     "precision": "f32", "batch": args.batch, "input": "x".join(map(str, chw)),
                     "threads": torch.get_num_threads(), "ranks": args.ranks,
                     "img_per_s": round(args.steps * args.batch / seconds, 1),
                     "ms_per_step": round(1000.0 * seconds / args.steps, 1), "peer": peer_name()})
    dist.destroy_process_group()


def run_model_ddp(args):
    import os
    import tempfile
    import torch.multiprocessing as mp
    if not args.train or args.device != "cpu" or args.precision != "f32":
        raise SpecError("--ranks times f32 training steps on the CPU (add --train)")
    if args.batch < args.ranks:
        raise SpecError("--batch %d is smaller than the %d ranks" % (args.batch, args.ranks))
    store = tempfile.NamedTemporaryFile(prefix="peer_ddp_", delete=False)
    store.close()
    os.unlink(store.name)  # gloo's file store creates it
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    try:
        mp.spawn(ddp_rank, args=(args, store.name, results), nprocs=args.ranks, join=True)
    finally:
        if os.path.exists(store.name):
            os.unlink(store.name)
    return results.get()


def run_kd(args):
    reset_peak_resident()
    baseline = status_mib("VmRSS")
    torch.manual_seed(0)
    teacher, t_info = create_model(args.teacher)
    student, s_info = create_model(args.student)
    if t_info["num_classes"] != s_info["num_classes"]:
        raise SpecError("bench kd: the teacher has %d classes and the student %d"
                        % (t_info["num_classes"], s_info["num_classes"]))
    chw = parse_input(args.input, s_info)
    check_channels(t_info, chw, args.teacher)
    check_channels(s_info, chw, args.student)
    images, labels = fixed_batch(args.batch, chw, s_info["num_classes"])
    device, run = device_and_precision(args)
    teacher, student = teacher.to(device), student.to(device)
    images, labels = images.to(device), labels.to(device)
    teacher.eval()
    student.train()
    optimizer = sgd(student)
    T = args.T

    def step():
        with torch.no_grad():
            teacher_logits = run(teacher, images)
        logits = run(student, images)
        kd = F.kl_div(F.log_softmax(logits * (1.0 / T), 1), F.softmax(teacher_logits * (1.0 / T), 1),
                      reduction="batchmean") * (T * T)
        loss = F.cross_entropy(logits, labels) + kd
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds = time_steps(args.steps, step, device)
    return {"workload": "kd", "teacher": args.teacher, "student": args.student,
            "device": str(device), "precision": args.precision, "batch": args.batch,
            "input": "x".join(map(str, chw)), "threads": torch.get_num_threads(),
            "img_per_s": round(args.steps * args.batch / seconds, 1),
            "ms_per_step": round(1000.0 * seconds / args.steps, 1),
            "peak_mib": round(status_mib("VmHWM") - baseline, 1), "peer": peer_name()}


# ---- GEMM (tools/cmd_bench.cpp) ----

DEFAULT_GEMM_SHAPES = (
    "256x256x256,512x512x512,1024x1024x1024,2048x2048x2048,"
    "64x65536x576,128x16384x1152,256x4096x2304,512x1024x4608,"
    "64x576x65536:nt,256x2304x4096:nt,"
    "4160x576x192,4160x768x192,4160x192x768,65x65x48,65x48x65")


def parse_gemm_shape(text):
    """"MxNxK" or "MxNxK:tn" -> (m, n, k, trans_a, trans_b)."""
    dims, _, trans = text.partition(":")
    trans = trans or "nn"
    if len(trans) != 2 or any(c not in "nt" for c in trans):
        raise SpecError("gemm shape '%s': the transposes are two letters of n and t, e.g. "
                        "512x512x512:nt" % text)
    parts = dims.split("x")
    if len(parts) != 3:
        raise SpecError("gemm shape '%s' is not MxNxK" % text)
    for p in parts:
        if not (p.isdigit() and len(p) <= 6):
            raise SpecError("gemm shape '%s': '%s' is not a size from 1 to 999999" % (text, p))
        if int(p) < 1:
            raise SpecError("gemm shape '%s': sizes start at 1" % text)
    m, n, k = map(int, parts)
    if m * k + k * n + m * n > 1 << 30:
        raise SpecError("gemm shape '%s' needs more than 4 GiB of matrices" % text)
    return m, n, k, trans[0] == "t", trans[1] == "t"


def run_gemm(args):
    shapes = [s for s in args.shapes.split(",") if s]
    if not shapes:
        raise SpecError("--shapes lists no shape")
    parsed = [parse_gemm_shape(s) for s in shapes]
    _, kernel, _ = loaded_blas()
    peer = peer_name()
    for label, (m, n, k, ta, tb) in zip(shapes, parsed):
        a = torch.randn(k, m) if ta else torch.randn(m, k)
        b = torch.randn(n, k) if tb else torch.randn(k, n)
        a_op, b_op = (a.t() if ta else a), (b.t() if tb else b)
        c = torch.zeros(m, n)
        torch.mm(a_op, b_op, out=c)  # warm the caches and the threads
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a_op, b_op, out=c)
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= args.seconds:
                break
        gflops = 2.0 * m * n * k * reps / elapsed / 1e9
        emit({"workload": "gemm", "shape": label, "m": m, "n": n, "k": k,
              "threads": torch.get_num_threads(), "kernel": kernel, "gflops": round(gflops, 1),
              "peer": peer, **({"tag": args.tag} if args.tag else {})})


# ---- command line ----

def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def build_parser():
    ap = argparse.ArgumentParser(prog="peer_bench.py",
                                 description="PyTorch peer of `retort bench` (JSON lines)")
    sub = ap.add_subparsers(dest="what", required=True)

    def common(p, batch=True):
        p.add_argument("--threads", type=positive, default=2, help="torch and BLAS threads")
        p.add_argument("--tag", default="", help="extra 'tag' field in each record")
        if batch:
            p.add_argument("--batch", type=positive, default=64)
            p.add_argument("--input", default="", help="CxHxW (default: the model's)")
            p.add_argument("--steps", type=positive, default=10, help="timed steps after 3 warm-up")

    p = sub.add_parser("model", help="forward or (--train) training-step images/s")
    p.add_argument("spec")
    p.add_argument("--train", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: TF32 off, as retort's default)")
    p.add_argument("--precision", default="f32", choices=["f32", "tf32", "bf16", "f16"],
                   help="as retort's run.precision: bf16 / f16 run under torch.autocast")
    p.add_argument("--channels-last", action="store_true", help="model and batch in channels_last")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2)")
    p.add_argument("--ranks", type=positive, default=1,
                   help="--train on the CPU: DistributedDataParallel over N processes (gloo), each "
                        "with --threads threads and its piece of the batch")
    common(p)
    p = sub.add_parser("kd", help="one KD step: teacher forward, student forward+backward+SGD")
    p.add_argument("teacher")
    p.add_argument("student")
    p.add_argument("--T", type=float, default=4.0, help="KD temperature")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: TF32 off, as retort's default)")
    p.add_argument("--precision", default="f32", choices=["f32", "tf32", "bf16", "f16"],
                   help="as retort's run.precision: bf16 / f16 run under torch.autocast")
    common(p)
    p = sub.add_parser("gemm", help="torch.mm GFLOP/s")
    p.add_argument("--shapes", default=DEFAULT_GEMM_SHAPES, help="comma-separated MxNxK[:tt]")
    p.add_argument("--seconds", type=float, default=0.3, help="time per shape")
    common(p, batch=False)
    return ap


def main():
    args = build_parser().parse_args()
    set_threads(args.threads)
    try:
        if args.what == "gemm":
            run_gemm(args)
            return 0
        if args.what == "model" and args.ranks > 1:
            record = run_model_ddp(args)
        else:
            record = run_model(args) if args.what == "model" else run_kd(args)
        if args.tag:
            record["tag"] = args.tag
        emit(record)
    except SpecError as e:
        print("peer_bench: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
