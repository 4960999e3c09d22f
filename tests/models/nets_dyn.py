"""Plain torch.nn reproductions of the exports of issue 12 (dynamic axes on real architectures):

- `bot`: a BoTNet-style bottleneck self-attention block whose relative position logits are
  computed with timm's pad / reshape / flatten tricks on rank-4 tensors (H == W, so swapped axes
  have equal lengths); dynamic batch (the relative embeddings fix the feature map size).
- `bert_pos`: a BERT-style encoder as Hugging Face writes it: `position_ids` and
  `token_type_ids` are registered buffers sliced by the dynamic sequence length.
- `gpt2`: a GPT-2-style decoder: padding mask indexed with arange index tensors (the GatherND of
  recent transformers versions), causal mask, Conv1D (addmm) projections, and the last-token
  gather of sequence classification (`logits[arange(B), lengths - 1]`).
- `segformer`: overlapping patch embeddings (stride-4 7x7 and stride-2 3x3 convs with explicit
  pads), efficient attention with a strided spatial-reduction conv, Mix-FFN depthwise conv, and a
  bilinear resize of stage 2 back to stage 1's size; dynamic batch, height and width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DIM, HEADS = 32, 4


# ---------------------------------------------------------------- BoTNet
def rel_logits_1d(q, rel_k, permute_mask):
    """timm's bottleneck_attn.rel_logits_1d: q (B, H, W, d), rel_k (2W - 1, d)."""
    b, h, w, _ = q.shape
    x = q @ rel_k.transpose(-1, -2)
    x = x.reshape(-1, w, 2 * w - 1)
    x_pad = F.pad(x, [0, 1]).flatten(1)
    x_pad = F.pad(x_pad, [0, w - 1])
    x_pad = x_pad.reshape(-1, w + 1, 2 * w - 1)
    x = x_pad[:, :w, w - 1:]
    x = x.reshape(b, h, 1, w, w).expand(-1, -1, h, -1, -1)
    return x.permute(permute_mask)


class PosEmbedRel(nn.Module):
    def __init__(self, size, dim_head):
        super().__init__()
        self.size = size
        self.rel_height = nn.Parameter(torch.randn(size * 2 - 1, dim_head))
        self.rel_width = nn.Parameter(torch.randn(size * 2 - 1, dim_head))

    def forward(self, q):
        b, hw, _ = q.shape
        q = q.reshape(b, self.size, self.size, -1)
        rel_w = rel_logits_1d(q, self.rel_width, permute_mask=(0, 1, 3, 2, 4))
        q = q.transpose(1, 2)
        rel_h = rel_logits_1d(q, self.rel_height, permute_mask=(0, 3, 1, 4, 2))
        return (rel_h + rel_w).reshape(b, hw, hw)


class BotBlock(nn.Module):
    """conv stem -> bottleneck attention (1x1 qkv conv, heads, relative logits) -> conv -> logits."""

    SIZE = 8

    def __init__(self, dim=DIM, heads=HEADS):
        super().__init__()
        self.heads, self.dim_head = heads, dim // heads
        self.stem = nn.Sequential(nn.Conv2d(3, dim, 3, 2, 1), nn.BatchNorm2d(dim), nn.ReLU())
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.pos = PosEmbedRel(self.SIZE, self.dim_head)
        self.post = nn.Sequential(nn.BatchNorm2d(dim), nn.ReLU(), nn.Conv2d(dim, dim, 3, 1, 1))
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.stem(x)
        b, c, h, w = x.shape
        q, k, v = torch.split(self.qkv(x), [c, c, c], dim=1)
        q = q.reshape(b * self.heads, self.dim_head, -1).transpose(-1, -2)
        k = k.reshape(b * self.heads, self.dim_head, -1)
        v = v.reshape(b * self.heads, self.dim_head, -1).transpose(-1, -2)
        attn = (q @ k) * self.dim_head ** -0.5 + self.pos(q)
        out = (attn.softmax(dim=-1) @ v).transpose(-1, -2).reshape(b, c, h, w)
        out = self.post(out + x)
        return self.head(out.mean((2, 3)))


# ---------------------------------------------------------------- BERT (HF-style buffers)
class BertPos(nn.Module):
    VOCAB, TYPES, MAX_LEN = 100, 2, 64

    def __init__(self, dim=DIM, heads=HEADS, depth=2):
        super().__init__()
        self.heads = heads
        self.word = nn.Embedding(self.VOCAB, dim)
        self.pos = nn.Embedding(self.MAX_LEN, dim)
        self.token_type = nn.Embedding(self.TYPES, dim)
        self.register_buffer("position_ids", torch.arange(self.MAX_LEN).expand((1, -1)), persistent=False)
        self.register_buffer("token_type_ids", torch.zeros((1, self.MAX_LEN), dtype=torch.long), persistent=False)
        self.ln = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList(
            nn.ModuleDict(dict(qkv=nn.Linear(dim, 3 * dim), o=nn.Linear(dim, dim), ln1=nn.LayerNorm(dim),
                               ff1=nn.Linear(dim, 2 * dim), ff2=nn.Linear(2 * dim, dim), ln2=nn.LayerNorm(dim)))
            for _ in range(depth))
        self.pool = nn.Linear(dim, dim)

    def forward(self, input_ids, attention_mask):
        b, length = input_ids.shape
        position_ids = self.position_ids[:, 0:length]
        token_type_ids = self.token_type_ids[:, :length].expand(b, length)
        x = self.ln(self.word(input_ids) + self.pos(position_ids) + self.token_type(token_type_ids))
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        d = x.shape[-1] // self.heads
        for layer in self.layers:
            q, k, v = (t.view(b, length, self.heads, d).permute(0, 2, 1, 3)
                       for t in layer["qkv"](x).split(x.shape[-1], dim=-1))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
            ctx = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, length, -1)
            x = layer["ln1"](x + layer["o"](ctx))
            x = layer["ln2"](x + layer["ff2"](F.gelu(layer["ff1"](x))))
        return x, torch.tanh(self.pool(x[:, 0]))


# ---------------------------------------------------------------- GPT-2
class Conv1D(nn.Module):
    """GPT-2's Conv1D: x @ W + b through addmm on the flattened tokens."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.1)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.weight.shape[-1],)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class Gpt2(nn.Module):
    VOCAB, MAX_LEN, LABELS = 100, 64, 3

    def __init__(self, dim=DIM, heads=HEADS, depth=2):
        super().__init__()
        self.heads = heads
        self.wte, self.wpe = nn.Embedding(self.VOCAB, dim), nn.Embedding(self.MAX_LEN, dim)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(dict(ln1=nn.LayerNorm(dim), attn=Conv1D(3 * dim, dim), proj=Conv1D(dim, dim),
                               ln2=nn.LayerNorm(dim), fc=Conv1D(4 * dim, dim), fc2=Conv1D(dim, 4 * dim)))
            for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, self.LABELS, bias=False)

    def _mask(self, attention_mask, length):
        b = attention_mask.shape[0]
        batch_idx = torch.arange(b)[:, None, None, None]
        q_idx = torch.arange(length)[None, None, :, None]
        kv_idx = torch.arange(length)[None, None, None, :]
        # padding mask by indexing (transformers' masking_utils), causal by comparison
        allowed = attention_mask.bool()[batch_idx, kv_idx] & (kv_idx <= q_idx)
        return torch.where(allowed, 0.0, torch.finfo(torch.float32).min)

    def forward(self, input_ids, attention_mask):
        b, length = input_ids.shape
        pos = torch.arange(length).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        mask = self._mask(attention_mask, length)
        d = x.shape[-1] // self.heads
        for blk in self.blocks:
            q, k, v = blk["attn"](blk["ln1"](x)).split(x.shape[-1], dim=2)
            q, k, v = (t.view(b, length, self.heads, d).transpose(1, 2) for t in (q, k, v))
            w = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
            a = (w.softmax(-1) @ v).transpose(1, 2).contiguous().view(b, length, -1)
            x = x + blk["proj"](a)
            x = x + blk["fc2"](F.gelu(blk["fc"](blk["ln2"](x)), approximate="tanh"))
        logits = self.score(self.ln_f(x))
        last = attention_mask.sum(-1) - 1
        return logits, logits[torch.arange(b), last]


# ---------------------------------------------------------------- Segformer
class OverlapPatchEmbed(nn.Module):
    def __init__(self, cin, dim, k, s):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, k, s, k // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        h, w = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientAttention(nn.Module):
    def __init__(self, dim, heads, sr):
        super().__init__()
        self.heads, self.sr = heads, sr
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.sr_conv = nn.Conv2d(dim, dim, sr, sr) if sr > 1 else None
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, h, w):
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        if self.sr_conv is not None:
            x_ = x.permute(0, 2, 1).reshape(b, c, h, w)
            x_ = self.norm(self.sr_conv(x_).reshape(b, c, -1).permute(0, 2, 1))
        else:
            x_ = x
        kv = self.kv(x_).reshape(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attn = (q @ k.transpose(-2, -1)) * d ** -0.5
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class MixFFN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.dw = nn.Conv2d(2 * dim, 2 * dim, 3, 1, 1, groups=2 * dim)

    def forward(self, x, h, w):
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dw(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class SegStage(nn.Module):
    def __init__(self, cin, dim, k, s, sr):
        super().__init__()
        self.embed = OverlapPatchEmbed(cin, dim, k, s)
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn, self.ffn = EfficientAttention(dim, 2, sr), MixFFN(dim)

    def forward(self, x):
        x, h, w = self.embed(x)
        x = x + self.attn(self.ln1(x), h, w)
        x = x + self.ffn(self.ln2(x), h, w)
        b, n, c = x.shape
        return x.reshape(b, h, w, -1).permute(0, 3, 1, 2)  # -1 as in Hugging Face's Segformer


class Segformer(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.s1, self.s2 = SegStage(3, 16, 7, 4, 2), SegStage(16, 32, 3, 2, 1)
        self.fuse = nn.Conv2d(48, 16, 1)
        self.cls = nn.Conv2d(16, classes, 1)

    def forward(self, x):
        f1 = self.s1(x)
        f2 = self.s2(f1)
        up = F.interpolate(f2, size=f1.shape[2:], mode="bilinear", align_corners=False)
        return self.cls(F.relu(self.fuse(torch.cat([f1, up], 1))))


# ---------------------------------------------------------------- specs
@dataclass(frozen=True)
class DynSpec:
    build: type
    inputs: tuple          # (name, kind, high) ; kind: "image" | "ids" | "mask"
    dynamic: dict          # input name -> {axis: dim label}
    sizes: tuple           # two (batch, size) pairs the tests run; the first is the export example
    tol: float = 1e-4      # x max(1, max |ref|)


DYN_NETS = {
    "bot": DynSpec(BotBlock, (("x", "image", 0),), {"x": {0: "batch"}}, ((2, 16), (3, 16))),
    "bert_pos": DynSpec(BertPos, (("input_ids", "ids", BertPos.VOCAB), ("attention_mask", "mask", 2)),
                        {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
                        ((2, 7), (3, 12))),
    "gpt2": DynSpec(Gpt2, (("input_ids", "ids", Gpt2.VOCAB), ("attention_mask", "mask", 2)),
                    {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
                    ((2, 7), (3, 12))),
    "segformer": DynSpec(Segformer, (("x", "image", 0),), {"x": {0: "batch", 2: "h", 3: "w"}},
                         ((2, 32), (1, 48))),
}


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = DYN_NETS[name].build()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
    return model.eval()


def make_inputs(name: str, batch: int, size: int, seed: int = 0) -> dict:
    """Images (B, 3, size, size); token ids (B, size); an attention mask with trailing padding
    of a different length per row (row 0 unpadded)."""
    rng = np.random.default_rng(2000 + seed)
    out = {}
    for inp, kind, high in DYN_NETS[name].inputs:
        if kind == "image":
            out[inp] = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
        elif kind == "mask":
            m = np.ones((batch, size), np.int64)
            for r in range(batch):
                m[r, max(1, size - r * 2):] = 0
            out[inp] = m
        else:
            out[inp] = rng.integers(0, high, size=(batch, size), dtype=np.int64)
    return out


def export(name: str, dynamo: bool, path) -> None:
    """Export with every axis of DynSpec.dynamic symbolic, by the TorchScript exporter (opset 17,
    dynamic_axes) or the dynamo exporter (its default opset, dynamic_shapes)."""
    import contextlib
    import io
    import warnings

    spec = DYN_NETS[name]
    model = build(name)
    batch, size = spec.sizes[0]
    feeds = make_inputs(name, batch, size)
    names = [i[0] for i in spec.inputs]
    args = tuple(torch.from_numpy(feeds[n]) for n in names)
    with torch.no_grad():
        outs = model(*args)
    n_out = len(outs) if isinstance(outs, (tuple, list)) else 1
    out_names = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {}
            for label in {lab for axes in spec.dynamic.values() for lab in axes.values()}:
                dims[label] = torch.export.Dim(label, min=2 if label == "seq" else 1, max=1024)
                if label in ("h", "w"):
                    dims[label] = torch.export.Dim(f"{label}16", min=1, max=64) * 16
            shapes = tuple({ax: dims[lab] for ax, lab in spec.dynamic[n].items()} for n in names)
            prog = torch.onnx.export(model, args, dynamo=True, input_names=names, output_names=out_names,
                                     dynamic_shapes=shapes, verbose=False)
            prog.save(str(path))
        else:
            torch.onnx.export(model, args, str(path), dynamo=False, opset_version=17, input_names=names,
                              output_names=out_names, dynamic_axes=dict(spec.dynamic), do_constant_folding=True)
