"""Transformer, hybrid and recurrent networks in plain torch.nn for the end-to-end tests.

Small (width 32, 2 layers) but with realistic random weights: default init, then every
LayerNorm/RMSNorm gets a random affine (weight ~ U(0.5, 1.5), bias ~ N(0, 0.2)) and learned
tokens/embeddings/position tables are N(0, 0.5) so they matter in the sum. Dropout is 0.

Each spec says how its inputs are made and which input axes are dynamic; the tests export
each net once per exporter with those axes symbolic and run it at several sizes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DIM, HEADS = 32, 4


# ---------------------------------------------------------------- ViT

class ViT(nn.Module):
    """Patch conv, class token, learned position embedding, nn.TransformerEncoder (pre-norm, GELU)."""

    def __init__(self, img=32, patch=8, dim=DIM, depth=2, heads=HEADS, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        n = (img // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.5)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)           # (B, N, C)
        cls = self.cls.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos
        x = self.norm(self.encoder(x))
        return self.head(x[:, 0])


# ---------------------------------------------------------------- Swin

def _window_partition(x, ws):
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def _window_reverse(windows, ws, b, h, w):
    c = windows.shape[-1]
    x = windows.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class SwinBlock(nn.Module):
    """Swin transformer block on (B, H, W, C): (shifted) window attention with a relative
    position bias and, for shifted windows, the region mask computed from H and W in forward
    (so the image size can change), then an MLP."""

    def __init__(self, dim=DIM, heads=HEADS, ws=4, shift=0):
        super().__init__()
        self.ws, self.shift, self.heads = ws, shift, heads
        self.scale = (dim // heads) ** -0.5
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.rel_table = nn.Parameter(torch.randn((2 * ws - 1) ** 2, heads) * 0.5)
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
        self.register_buffer("rel_index", (rel[..., 0] * (2 * ws - 1) + rel[..., 1]).flatten(), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def _mask(self, h, w, device):
        """(nW, N, N) additive mask: 0 inside a region, -100 across regions (Swin's convention)."""
        ws, s = self.ws, self.shift
        rh = (torch.arange(h, device=device) >= h - ws).long() + (torch.arange(h, device=device) >= h - s).long()
        rw = (torch.arange(w, device=device) >= w - ws).long() + (torch.arange(w, device=device) >= w - s).long()
        region = (rh[:, None] * 3 + rw[None, :]).view(1, h, w, 1)
        win = _window_partition(region, ws).squeeze(-1)             # (nW, N)
        diff = win[:, :, None] != win[:, None, :]
        return torch.where(diff, torch.full_like(diff, -100.0, dtype=torch.float32),
                           torch.zeros_like(diff, dtype=torch.float32))

    def forward(self, x):
        b, h, w, c = x.shape
        ws, n, nh = self.ws, self.ws * self.ws, self.heads
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = _window_partition(y, ws)                                # (B*nW, N, C)
        qkv = self.qkv(win).reshape(-1, n, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.einsum("bhqd,bhkd->bhqk", q * self.scale, k)     # (B*nW, nh, N, N)
        bias = self.rel_table[self.rel_index].view(n, n, nh).permute(2, 0, 1)
        attn = attn + bias.unsqueeze(0)
        if self.shift:
            mask = self._mask(h, w, x.device)
            nw = mask.shape[0]
            attn = attn.view(-1, nw, nh, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, nh, n, n)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, n, c)
        out = _window_reverse(self.proj(out), ws, b, h, w)
        if self.shift:
            out = torch.roll(out, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + out
        return x + self.mlp(self.norm2(x))


class Swin(nn.Module):
    """Patch embedding (4x4 conv), to channels-last, a regular and a shifted-window block, head."""

    def __init__(self, dim=DIM, classes=10):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, 4)
        self.norm0 = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(SwinBlock(dim, shift=0), SwinBlock(dim, shift=2))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.norm0(self.embed(x).permute(0, 2, 3, 1))            # (B, H, W, C)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=(1, 2)))


# ---------------------------------------------------------------- ConvNeXt

class LayerNorm2d(nn.Module):
    """ConvNeXt's channels-first LayerNorm, written out (the decomposed form in every exporter)."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c)), eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.act = nn.GELU(approximate="tanh")
        self.gamma = nn.Parameter(torch.rand(dim) * 0.5 + 0.25)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)                           # to channels-last
        y = self.pw2(self.act(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)                              # back to channels-first


class ConvNeXt(nn.Module):
    """Stem, a stage of two blocks, a downsampling layer, global pool, LayerNorm, head."""

    def __init__(self, dim=DIM, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dim, 4, 4), LayerNorm2d(dim))
        self.stage = nn.Sequential(ConvNeXtBlock(dim), ConvNeXtBlock(dim))
        self.down = nn.Sequential(LayerNorm2d(dim), nn.Conv2d(dim, 2 * dim, 2, 2))
        self.norm = nn.LayerNorm(2 * dim, eps=1e-6)
        self.head = nn.Linear(2 * dim, classes)

    def forward(self, x):
        x = self.down(self.stage(self.stem(x)))
        return self.head(self.norm(x.mean(dim=(-2, -1))))


# ---------------------------------------------------------------- BERT

class BertLayer(nn.Module):
    """Post-norm encoder layer; attention through F.scaled_dot_product_attention with an additive mask."""

    def __init__(self, dim=DIM, heads=HEADS):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-12), nn.LayerNorm(dim, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def _heads(self, t):
        b, l, c = t.shape
        return t.view(b, l, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x, mask):
        b, l, c = x.shape
        ctx = F.scaled_dot_product_attention(self._heads(self.q(x)), self._heads(self.k(x)),
                                             self._heads(self.v(x)), attn_mask=mask)
        x = self.ln1(x + self.o(ctx.transpose(1, 2).reshape(b, l, c)))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class Bert(nn.Module):
    """Word + position (arange) + token-type embeddings, LayerNorm, 2 layers, tanh pooler.
    Inputs: int64 token ids, int64 token-type ids, int64 attention mask (1 = attend)."""

    VOCAB, TYPES, MAX_LEN = 100, 2, 64

    def __init__(self, dim=DIM, depth=2):
        super().__init__()
        self.word = nn.Embedding(self.VOCAB, dim)
        self.pos = nn.Embedding(self.MAX_LEN, dim)
        self.token_type = nn.Embedding(self.TYPES, dim)
        self.ln = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(dim) for _ in range(depth))
        self.pool = nn.Linear(dim, dim)

    def forward(self, input_ids, token_type_ids, attention_mask):
        length = input_ids.shape[1]
        pos = torch.arange(length, device=input_ids.device).unsqueeze(0)
        x = self.ln(self.word(input_ids) + self.pos(pos) + self.token_type(token_type_ids))
        # (B, 1, L, L) like transformers' _prepare_4d_attention_mask (onnxruntime's opset-23
        # Attention also insists on the full query length in the mask)
        m = attention_mask[:, None, None, :].expand(-1, 1, length, -1).to(x.dtype)
        mask = (1.0 - m) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, mask)
        return x, torch.tanh(self.pool(x[:, 0]))


# ---------------------------------------------------------------- recurrent tagger

class RMSNorm(nn.Module):
    """RMSNorm written out: nn.RMSNorm's aten::rms_norm has no TorchScript-exporter symbolic at
    opset 17 (dynamo decomposes it below opset 23 and emits RMSNormalization from 23)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Tagger(nn.Module):
    """Embedding, bidirectional LSTM, bidirectional GRU, RMSNorm, tag scores (batch_first).
    With `states`, the initial hidden/cell states are inputs ((dirs, B, H) arrays) and a
    unidirectional tanh nn.RNN (initial state r0) follows the GRU."""

    VOCAB, TAGS, HID = 50, 7, 16

    def __init__(self, states=False, dim=DIM):
        super().__init__()
        self.states = states
        self.emb = nn.Embedding(self.VOCAB, dim)
        self.lstm = nn.LSTM(dim, self.HID, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(2 * self.HID, self.HID, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(2 * self.HID, self.HID, batch_first=True) if states else None
        width = self.HID if states else 2 * self.HID
        self.norm = RMSNorm(width)
        self.out = nn.Linear(width, self.TAGS)

    def forward(self, ids, h0=None, c0=None, g0=None, r0=None):
        x = self.emb(ids)
        if self.states:
            x, _ = self.lstm(x, (h0, c0))
            x, _ = self.gru(x, g0)
            x, _ = self.rnn(x, r0)
        else:
            x, _ = self.lstm(x)
            x, _ = self.gru(x)
        return self.out(self.norm(x))


# ---------------------------------------------------------------- decoder (LLaMA-style)

class DecoderLayer(nn.Module):
    def __init__(self, dim=DIM, heads=HEADS):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.RMSNorm(dim, eps=1e-6), nn.RMSNorm(dim, eps=1e-6)
        self.qkv, self.o = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.gate, self.up = nn.Linear(dim, 2 * dim, bias=False), nn.Linear(dim, 2 * dim, bias=False)
        self.down = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, x, mask):
        b, l, c = x.shape
        q, k, v = (t.view(b, l, self.heads, c // self.heads).transpose(1, 2)
                   for t in self.qkv(self.norm1(x)).split(c, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.o(a.transpose(1, 2).reshape(b, l, c))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Decoder(nn.Module):
    """Token + learned position embeddings (positions by cumsum), a causal mask from torch.triu,
    2 pre-RMSNorm layers
    with a SwiGLU MLP, logits. nn.RMSNorm (aten::rms_norm) has no TorchScript-exporter
    symbolic, so this net is exported by dynamo only (opset 20: decomposed; opset 23:
    RMSNormalization and Attention)."""

    VOCAB, MAX_LEN = 100, 64

    def __init__(self, dim=DIM, depth=2):
        super().__init__()
        self.emb, self.pos = nn.Embedding(self.VOCAB, dim), nn.Embedding(self.MAX_LEN, dim)
        self.layers = nn.ModuleList(DecoderLayer(dim) for _ in range(depth))
        self.norm = nn.RMSNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, self.VOCAB, bias=False)

    def forward(self, ids):
        length = ids.shape[1]
        positions = torch.ones_like(ids).cumsum(-1) - 1          # GPT-style position ids (CumSum)
        x = self.emb(ids) + self.pos(positions)
        mask = torch.triu(torch.full((length, length), float("-inf"), device=ids.device), diagonal=1)
        for layer in self.layers:
            x = layer(x, mask)
        return self.head(self.norm(x))


# ---------------------------------------------------------------- specs

@dataclass(frozen=True)
class SeqInput:
    name: str
    kind: str                  # "image" | "ids" | "types" | "mask" | "state"
    shape: Callable            # (batch, size) -> shape
    dynamic: dict              # axis -> ("batch" | "seq" | "h" | "w", multiple)
    high: int = 0              # exclusive upper bound for integer inputs


@dataclass(frozen=True)
class SeqNetSpec:
    name: str
    build: Callable[[], nn.Module]
    inputs: tuple
    sizes: tuple                # the two sequence lengths / image sizes the tests run
    example: tuple = (2, 0)     # (batch, size) of the export example; 0 = sizes[0]
    exporters: tuple = ("legacy", "dynamo")   # "dynamo23": dynamo at opset 23
    notes: str = ""
    extra: dict = field(default_factory=dict)


def _img(name="x", dyn_size=True):
    dyn = {0: ("batch", 1)}
    if dyn_size:
        dyn.update({2: ("h", 16), 3: ("w", 16)})
    return SeqInput(name, "image", lambda b, s: (b, 3, s, s), dyn)


def _tok(name, kind, high):
    return SeqInput(name, kind, lambda b, s: (b, s), {0: ("batch", 1), 1: ("seq", 1)}, high)


def _state(name, layers):
    return SeqInput(name, "state", lambda b, s: (layers, b, Tagger.HID), {1: ("batch", 1)})


SEQ_NETS = {s.name: s for s in [
    # learned absolute position embedding of 16 + 1 tokens: the image size is fixed at 32x32
    SeqNetSpec("vit", ViT, (_img(dyn_size=False),), sizes=(32,)),
    # two windowed blocks: tokens 8x8 (4 windows of 4x4) and 12x12 (9 windows)
    SeqNetSpec("swin", Swin, (_img(),), sizes=(32, 48)),
    SeqNetSpec("convnext", ConvNeXt, (_img(),), sizes=(32, 48)),
    SeqNetSpec("bert", Bert, (_tok("input_ids", "ids", Bert.VOCAB), _tok("token_type_ids", "types", Bert.TYPES),
                              _tok("attention_mask", "mask", 2)), sizes=(7, 12),
               exporters=("legacy", "dynamo", "dynamo23")),
    SeqNetSpec("decoder", Decoder, (_tok("ids", "ids", Decoder.VOCAB),), sizes=(6, 11),
               exporters=("dynamo", "dynamo23")),
    SeqNetSpec("tagger", Tagger, (_tok("ids", "ids", Tagger.VOCAB),), sizes=(5, 9)),
    SeqNetSpec("tagger_states", functools.partial(Tagger, states=True),
               (_tok("ids", "ids", Tagger.VOCAB), _state("h0", 2), _state("c0", 2), _state("g0", 2),
                _state("r0", 1)), sizes=(5, 9)),
]}


def _randomize(model: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.RMSNorm, LayerNorm2d, RMSNorm)):
                if getattr(m, "weight", None) is not None:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                if getattr(m, "bias", None) is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
            elif isinstance(m, nn.Embedding):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.5)


@functools.lru_cache(maxsize=None)
def build(name: str, seed: int = 0) -> nn.Module:
    """The named network, eval mode, deterministic weights (cached: do not modify it)."""
    torch.manual_seed(seed)
    model = SEQ_NETS[name].build()
    _randomize(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def make_inputs(name: str, batch: int, size: int, seed: int = 0) -> dict:
    """name -> numpy array. Integer inputs stay inside their vocabulary; an attention mask has
    trailing padding of a different length per row (row 0 is never fully masked)."""
    rng = np.random.default_rng(1000 + seed)
    out = {}
    for inp in SEQ_NETS[name].inputs:
        shape = inp.shape(batch, size)
        if inp.kind in ("image", "state"):
            out[inp.name] = rng.standard_normal(shape).astype(np.float32)
        elif inp.kind == "mask":
            m = np.ones(shape, np.int64)
            for r in range(batch):
                m[r, max(1, size - r * 2):] = 0
            out[inp.name] = m
        else:
            out[inp.name] = rng.integers(0, inp.high, size=shape, dtype=np.int64)
    return out


def torch_outputs(name: str, feeds: dict) -> list[np.ndarray]:
    model = build(name)
    args = [torch.from_numpy(feeds[i.name]) for i in SEQ_NETS[name].inputs]
    with torch.no_grad():
        out = model(*args)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out]
