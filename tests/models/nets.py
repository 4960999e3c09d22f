"""Small networks in plain torch.nn for the end-to-end tests (no torchvision).

Each builder returns an eval-mode module with random but realistic weights: default init,
then every BatchNorm gets a random affine (weight ~ U(0.5, 1.5), bias ~ N(0, 0.2)) and
running statistics measured on random data (so activations stay of order 1 through the
depth of the network, as in a trained one). Inputs are small (1x3x64x64 and alike).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------- ResNet

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)   # 3x3 s2 p1: the 'same' trap
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = None
        if stride != 1 or cin != planes:
            self.down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3), with ResNet-D's average-pool shortcut
    (timm's avg_down: AvgPool2d(2, s, ceil_mode=True, count_include_pad=False) then a 1x1 conv)."""
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != out:
            pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
            self.down = nn.Sequential(pool, nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + idt)


class ResNet(nn.Module):
    def __init__(self, block, layers=(1, 1, 1), widths=(16, 32, 64), num_classes=10):
        super().__init__()
        # classic stem: 7x7 s2 p3 on an even input (TF 'same' would pad (2, 3), torch pads (3, 3))
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        cin, stages = widths[0], []
        for i, (n, w) in enumerate(zip(layers, widths)):
            for j in range(n):
                stages.append(block(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w * block.expansion
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


# ---------------------------------------------------------------- MobileNetV2

def conv_bn_act(cin, cout, k=3, s=1, groups=1, act=nn.ReLU6):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act() if act is not None else nn.Identity())


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn_act(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden),   # depthwise 3x3
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    # (expand, out channels, repeats, stride)
    CFG = [(1, 8, 1, 1), (6, 12, 2, 2), (6, 16, 2, 2), (6, 24, 2, 2), (6, 32, 1, 1)]

    def __init__(self, num_classes=10):
        super().__init__()
        feats, cin = [conv_bn_act(3, 16, 3, 2)], 16
        for t, c, n, s in self.CFG:
            for i in range(n):
                feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        feats.append(conv_bn_act(cin, 128, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------- MobileNetV3-style

class SqueezeExcite(nn.Module):
    def __init__(self, ch, squeeze, act=nn.ReLU, gate=nn.Hardsigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(ch, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, ch, 1)
        self.gate = gate()

    def forward(self, x):
        s = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * s


class V3Block(nn.Module):
    def __init__(self, cin, hidden, cout, k, stride, se, act):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn_act(cin, hidden, 1, act=act)] if hidden != cin else []
        layers.append(conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4)))
        layers.append(conv_bn_act(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


class MobileNetV3(nn.Module):
    # (kernel, hidden, out, se, activation, stride)
    CFG = [(3, 16, 16, True, nn.ReLU, 2), (3, 48, 24, False, nn.ReLU, 2), (3, 64, 24, False, nn.ReLU, 1),
           (5, 72, 32, True, nn.Hardswish, 2), (5, 96, 32, True, nn.Hardswish, 1), (3, 96, 48, True, nn.Hardswish, 1)]

    def __init__(self, num_classes=10):
        super().__init__()
        feats, cin = [conv_bn_act(3, 16, 3, 2, act=nn.Hardswish)], 16
        for k, h, c, se, act, s in self.CFG:
            feats.append(V3Block(cin, h, c, k, s, se, act))
            cin = c
        feats.append(conv_bn_act(cin, 192, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*feats)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(192, 128), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------- EfficientNet-style

class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn_act(cin, hidden, 1, act=nn.SiLU)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),  # depthwise k x k
                   SqueezeExcite(hidden, max(4, cin // 4), act=nn.SiLU, gate=nn.Sigmoid),
                   conv_bn_act(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


class EfficientNet(nn.Module):
    # (expand, kernel, stride, out, repeats)
    CFG = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 32, 2), (6, 3, 2, 48, 1), (6, 5, 1, 64, 1)]

    def __init__(self, num_classes=10):
        super().__init__()
        feats, cin = [conv_bn_act(3, 24, 3, 2, act=nn.SiLU)], 24
        for e, k, s, c, n in self.CFG:
            for i in range(n):
                feats.append(MBConv(cin, c, k, s if i == 0 else 1, e))
                cin = c
        feats.append(conv_bn_act(cin, 160, 1, act=nn.SiLU))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(160, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = x.mean(dim=(2, 3))                 # a ReduceMean pooling, not AdaptiveAvgPool
        return self.classifier(x)


# ---------------------------------------------------------------- DenseNet-style

class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, feats):
        x = torch.cat(feats, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseBlock(nn.Module):
    def __init__(self, n, cin, growth):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth) for i in range(n))

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


class Transition(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.AvgPool2d(2, 2))


class DenseNet(nn.Module):
    def __init__(self, growth=12, blocks=(3, 3, 3), num_classes=10):
        super().__init__()
        c = 2 * growth
        self.stem = nn.Sequential(nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        parts = []
        for i, n in enumerate(blocks):
            parts.append(DenseBlock(n, c, growth))
            c += n * growth
            if i != len(blocks) - 1:
                parts.append(Transition(c, c // 2))
                c //= 2
        parts += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*parts)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.features(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


# ---------------------------------------------------------------- UNet

def double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, n_classes=3, w=(8, 16, 32, 64)):
        super().__init__()
        self.inc = double_conv(3, w[0])
        self.down1 = nn.Sequential(nn.MaxPool2d(2), double_conv(w[0], w[1]))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), double_conv(w[1], w[2]))
        self.down3 = nn.Sequential(nn.MaxPool2d(2), double_conv(w[2], w[3]))
        # decoder: a learned ConvTranspose k2 s2 path ...
        self.up1 = nn.ConvTranspose2d(w[3], w[2], 2, stride=2)
        self.conv1 = double_conv(2 * w[2], w[2])
        # ... an nn.Upsample path (bilinear, align_corners=True, as in the classic UNet) ...
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv2 = double_conv(w[2] + w[1], w[1])
        # ... and an F.interpolate nearest path
        self.conv3 = double_conv(w[1] + w[0], w[0])
        self.outc = nn.Conv2d(w[0], n_classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        y = self.conv1(torch.cat([x3, self.up1(x4)], 1))
        y = self.conv2(torch.cat([x2, self.up2(y)], 1))
        y = self.conv3(torch.cat([x1, F.interpolate(y, scale_factor=2, mode="nearest")], 1))
        return self.outc(y)


# ---------------------------------------------------------------- FCN head with bilinear upsampling

class FCN(nn.Module):
    def __init__(self, n_classes=5):
        super().__init__()
        self.backbone = nn.Sequential(conv_bn_act(3, 16, 3, 2, act=nn.ReLU), conv_bn_act(16, 32, 3, 2, act=nn.ReLU),
                                      conv_bn_act(32, 32, 3, 1, act=nn.ReLU))
        self.deep = nn.Sequential(conv_bn_act(32, 48, 3, 2, act=nn.ReLU), conv_bn_act(48, 48, 3, 1, act=nn.ReLU))
        self.head = nn.Sequential(conv_bn_act(48, 32, 3, act=nn.ReLU), nn.Dropout(0.1), nn.Conv2d(32, n_classes, 1))
        self.aux = nn.Sequential(conv_bn_act(32, 16, 3, act=nn.ReLU), nn.Conv2d(16, n_classes, 1))
        # PSPNet-style pyramid pooling (bins 1, 2, 4 divide the 8x8 map: exportable by both exporters)
        self.pyramid = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_act(48, 12, 1, act=nn.ReLU))
                                     for b in (1, 2, 4))
        self.fuse = conv_bn_act(48 + 3 * 12, 48, 1, act=nn.ReLU)

    def forward(self, x):
        size = x.shape[-2:]
        mid = self.backbone(x)                    # 1/4
        deep = self.deep(mid)                     # 1/8
        pyr = [F.interpolate(p(deep), size=deep.shape[-2:], mode="bilinear", align_corners=False)
               for p in self.pyramid]
        deep = self.fuse(torch.cat([deep] + pyr, 1))
        out = self.head(deep)
        # size-driven bilinear upsampling, align_corners=False (torchvision's FCN)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        # scale-driven bilinear upsampling, align_corners=True
        aux = F.interpolate(self.aux(mid), scale_factor=4, mode="bilinear", align_corners=True)
        # a non-integer-ratio bilinear resize inside the graph, fused back with a skip
        fused = F.interpolate(deep, size=(12, 12), mode="bilinear", align_corners=False)
        fused = F.interpolate(fused, size=mid.shape[-2:], mode="bilinear", align_corners=True)
        fused = self.aux[1](self.aux[0](mid + fused[:, :32]))
        return out, aux + F.interpolate(fused, scale_factor=4.0, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- 3D video block

def conv3d_bn(cin, cout, k, s, p):
    return nn.Sequential(nn.Conv3d(cin, cout, k, s, p, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class Video3D(nn.Module):
    def __init__(self, num_classes=7):
        super().__init__()
        # conv-BN, then the padded max pool BEFORE the ReLU (they commute; pooling first is cheaper):
        # the pool sees negative values, so its padding must be -inf, not zero
        self.stem = nn.Sequential(nn.Conv3d(3, 16, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(16))
        self.pool = nn.Sequential(nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.ReLU())
        self.block_a = nn.Sequential(conv3d_bn(16, 16, 3, 1, 1), nn.Conv3d(16, 16, 3, 1, 1, bias=False),
                                     nn.BatchNorm3d(16))
        self.block_b = nn.Sequential(conv3d_bn(16, 32, 3, 2, 1), nn.Conv3d(32, 32, 3, 1, 1, bias=False),
                                     nn.BatchNorm3d(32))
        self.down_b = nn.Sequential(nn.Conv3d(16, 32, 1, 2, bias=False), nn.BatchNorm3d(32))
        self.pool2 = nn.MaxPool3d(2, 2)
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = F.relu(x + self.block_a(x))
        x = F.relu(self.down_b(x) + self.block_b(x))
        x = self.gap(self.pool2(x))
        return self.fc(torch.flatten(x, 1))


# ---------------------------------------------------------------- registry

@dataclass(frozen=True)
class NetSpec:
    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple          # without the batch dimension
    slow: bool = False


NETS = {s.name: s for s in [
    NetSpec("resnet_basic", lambda: ResNet(BasicBlock, (2, 1, 1)), (3, 64, 64)),
    # 72x72: stages at 18x18 (3x3 s2 'same' trap) then 9x9 (odd: ceil_mode average-pool shortcut)
    NetSpec("resnet_bottleneck", lambda: ResNet(Bottleneck, (1, 1, 1), widths=(8, 16, 32)), (3, 72, 72)),
    NetSpec("mobilenet_v2", MobileNetV2, (3, 64, 64)),
    NetSpec("mobilenet_v3", MobileNetV3, (3, 64, 64)),
    NetSpec("efficientnet", EfficientNet, (3, 64, 64)),
    NetSpec("densenet", DenseNet, (3, 64, 64)),
    NetSpec("unet", UNet, (3, 64, 64)),
    NetSpec("fcn", FCN, (3, 64, 64)),
    NetSpec("video3d", Video3D, (3, 8, 32, 32)),
]}


def _randomize_batchnorm(model: nn.Module, gen: torch.Generator, input_shape) -> None:
    """Random affine BN parameters, then running stats measured on random data (cumulative)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=gen) * 0.2)
            bn.reset_running_stats()
            bn.momentum = None   # cumulative moving average
        if bns:
            model.train()
            for _ in range(2):
                model(torch.randn((8,) + tuple(input_shape), generator=gen))
            # sharpen the measured statistics a little so they are not exactly the batch's
            for bn in bns:
                bn.running_mean.add_(torch.randn(bn.num_features, generator=gen) * 0.05)
                bn.running_var.mul_(torch.rand(bn.num_features, generator=gen) * 0.4 + 0.8)
                bn.momentum = 0.1


@functools.lru_cache(maxsize=None)
def build(name: str, seed: int = 0) -> nn.Module:
    """The named network, eval mode, deterministic weights (cached: do not modify it)."""
    spec = NETS[name]
    torch.manual_seed(seed)
    model = spec.build()
    gen = torch.Generator().manual_seed(seed + 1)
    _randomize_batchnorm(model, gen, spec.input_shape)
    return model.eval()


def example_input(name: str, batch: int = 1, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + seed)
    return torch.randn((batch,) + tuple(NETS[name].input_shape), generator=gen)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
