"""Benchmark networks in plain torch.nn (torchvision cannot be imported here), random weights, no
downloads: MobileNetV3-Large, EfficientNet-B0, a small ViT (ViT-S/16), VGG-11-BN and a wide MLP of
~350 M parameters. Layer shapes follow torchvision's definitions; `export(name, path)` writes an
ONNX file (TorchScript exporter, opset 17, batch 1)."""
from __future__ import annotations

import contextlib
import io
import warnings

import torch
from torch import nn


def _div8(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SqueezeExcite(nn.Module):
    def __init__(self, c, squeeze, act=nn.ReLU, gate=nn.Hardsigmoid):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


def _cna(cin, cout, k, s, groups=1, act=nn.ReLU):
    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV3 block: expand 1x1, depthwise kxk, optional SE, project 1x1."""

    def __init__(self, cin, k, exp, cout, se, act, stride):
        super().__init__()
        self.res = stride == 1 and cin == cout
        layers = [] if exp == cin else [_cna(cin, exp, 1, 1, act=act)]
        layers.append(_cna(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcite(exp, _div8(exp // 4)))
        layers.append(_cna(exp, cout, 1, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.res else y


class MobileNetV3Large(nn.Module):
    CFG = [(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2), (24, 3, 72, 24, False, "RE", 1),
           (24, 5, 72, 40, True, "RE", 2), (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
           (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
           (80, 3, 184, 80, False, "HS", 1), (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
           (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1), (160, 5, 960, 160, True, "HS", 1)]

    def __init__(self, classes=1000):
        super().__init__()
        layers = [_cna(3, 16, 3, 2, act=nn.Hardswish)]
        for cin, k, exp, cout, se, act, s in self.CFG:
            layers.append(InvertedResidual(cin, k, exp, cout, se, nn.Hardswish if act == "HS" else nn.ReLU, s))
        layers.append(_cna(160, 960, 1, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        exp = cin * expand
        self.res = stride == 1 and cin == cout
        layers = [] if expand == 1 else [_cna(cin, exp, 1, 1, act=nn.SiLU)]
        layers += [_cna(exp, exp, k, stride, groups=exp, act=nn.SiLU),
                   SqueezeExcite(exp, max(1, cin // 4), act=nn.SiLU, gate=nn.Sigmoid), _cna(exp, cout, 1, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.res else y


class EfficientNetB0(nn.Module):
    CFG = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
           (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

    def __init__(self, classes=1000):
        super().__init__()
        layers = [_cna(3, 32, 3, 2, act=nn.SiLU)]
        for expand, k, stride, cin, cout, n in self.CFG:
            for i in range(n):
                layers.append(MBConv(cin if i == 0 else cout, cout, k, stride if i == 0 else 1, expand))
        layers.append(_cna(320, 1280, 1, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class Attention(nn.Module):
    """Multi-head self-attention written out (torch's fused fast path does not export to ONNX)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, d))


class EncoderBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    """torchvision's VisionTransformer layout: conv patchify, class token, learned positions."""

    def __init__(self, image=224, patch=16, dim=384, depth=12, heads=6, mlp=1536, classes=1000):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.ln(self.blocks(x))[:, 0])


class VGG11BN(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        layers, cin = [], 3
        for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(nn.Linear(512 * 49, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class WideMLP(nn.Module):
    """~352 M parameters: 5 layers of 8192 x 8192 plus in/out projections."""

    def __init__(self, dim=8192, depth=5, cin=1024, classes=1000):
        super().__init__()
        layers = [nn.Linear(cin, dim), nn.GELU()]
        for _ in range(depth):
            layers += [nn.Linear(dim, dim), nn.GELU()]
        self.body = nn.Sequential(*layers, nn.Linear(dim, classes))

    def forward(self, x):
        return self.body(x)


MODELS = {"mobilenet_v3": (MobileNetV3Large, (1, 3, 224, 224)), "efficientnet_b0": (EfficientNetB0, (1, 3, 224, 224)),
          "vit_s16": (ViT, (1, 3, 224, 224)), "vgg11_bn": (VGG11BN, (1, 3, 224, 224)),
          "wide_mlp": (WideMLP, (1, 1024))}


def build(name, seed=0):
    torch.manual_seed(seed)
    cls, shape = MODELS[name]
    model = cls().eval()
    for m in model.modules():  # trained-looking BatchNorm statistics keep activations of order 1
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.2, 0.6)
    return model, shape


def export(name, path):
    """Opset 17, except the ViT: opset 20, where GELU is one ONNX Gelu node. At opset 17 it is
    Div/Erf/Add/Mul/Mul, and TFLite has no builtin Erf: TensorFlow's converter refuses konnx's
    Keras model then (keras.ops.gelu becomes TFLite's GELU; a GELU fusion is not written yet)."""
    model, shape = build(name)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*shape),), str(path), dynamo=False,
                          opset_version=20 if name.startswith("vit") else 17,
                          input_names=["input"], output_names=["logits"])
    return path
