"""An SSDlite-style detector with its post-processing in the graph (issue 14): a tiny depthwise-
separable backbone with two feature scales, a box/class head per scale, anchor decoding, a
pre-NMS TopK over the anchors with gathers over boxes and scores (all in plain torch.nn, exported
with both PyTorch exporters), then ONNX-level NonMaxSuppression and the gathers of the kept boxes,
scores and classes written into the exported graph with onnx.helper (torchvision's ops are not
available here; its SSDlite under the TorchScript exporter failed with an AttributeError).
Compared with onnxruntime on every output."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import konnx
from tests.models.export import export
from tests.util import assert_matches_ort, run_ort

CLASSES = 4  # background + 3
ANCHORS = 2  # per cell
PRE_NMS = 24
MAX_PER_CLASS, IOU, SCORE = 20, 0.3, 0.2


def _sep(c_in, c_out, stride):
    return torch.nn.Sequential(
        torch.nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), torch.nn.BatchNorm2d(c_in),
        torch.nn.ReLU6(), torch.nn.Conv2d(c_in, c_out, 1, bias=False), torch.nn.BatchNorm2d(c_out), torch.nn.ReLU6())


def _anchors(sizes, scales) -> torch.Tensor:
    out = []
    for n, s in zip(sizes, scales):
        for i in range(n):
            for j in range(n):
                for a in range(ANCHORS):
                    w = s * (1.0 + 0.5 * a)
                    out.append([(j + 0.5) / n, (i + 0.5) / n, w, s * (1.5 - 0.5 * a)])
    return torch.tensor(out, dtype=torch.float32)


class TinySSD(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(8),
                                        torch.nn.ReLU6())
        self.stage1 = _sep(8, 16, 2)   # 8x8 for a 32x32 input
        self.stage2 = _sep(16, 24, 2)  # 4x4
        self.box = torch.nn.ModuleList([_head(16, ANCHORS * 4), _head(24, ANCHORS * 4)])
        self.cls = torch.nn.ModuleList([_head(16, ANCHORS * CLASSES), _head(24, ANCHORS * CLASSES)])
        self.register_buffer("anchors", _anchors([8, 4], [0.2, 0.45]))

    def forward(self, x):
        f1 = self.stage1(self.stem(x))
        f2 = self.stage2(f1)
        deltas = torch.cat([_flat(h(f), 4) for h, f in zip(self.box, (f1, f2))], 1)       # (B, N, 4)
        logits = torch.cat([_flat(h(f), CLASSES) for h, f in zip(self.cls, (f1, f2))], 1)  # (B, N, C)
        a = self.anchors
        cxy = a[:, :2] + deltas[..., :2] * 0.1 * a[:, 2:]
        wh = a[:, 2:] * torch.exp(torch.clamp(deltas[..., 2:] * 0.2, max=4.0))
        boxes = torch.cat([cxy - wh / 2, cxy + wh / 2], -1)                                # corners
        scores = torch.softmax(logits, -1)[..., 1:]                                        # no background
        best, _ = scores.max(-1)
        _, top = torch.topk(best, PRE_NMS, dim=1)                                          # (B, K)
        boxes = torch.gather(boxes, 1, top.unsqueeze(-1).expand(-1, -1, 4))
        scores = torch.gather(scores, 1, top.unsqueeze(-1).expand(-1, -1, CLASSES - 1))
        return boxes, scores.transpose(1, 2)                                               # (B, K, 4), (B, C-1, K)


def _head(c_in, c_out):
    return torch.nn.Sequential(torch.nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in), torch.nn.ReLU6(),
                               torch.nn.Conv2d(c_in, c_out, 1))


def _flat(t, k):
    b, _, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(b, h * w * ANCHORS, k)


def _with_nms(model: onnx.ModelProto) -> onnx.ModelProto:
    """NonMaxSuppression over the exported boxes/scores, then the kept boxes, scores and classes."""
    g = model.graph
    boxes, scores = g.output[0].name, g.output[1].name
    consts = [helper.make_tensor("max_out", TensorProto.INT64, [1], [MAX_PER_CLASS]),
              helper.make_tensor("iou", TensorProto.FLOAT, [1], [IOU]),
              helper.make_tensor("score_thr", TensorProto.FLOAT, [1], [SCORE]),
              helper.make_tensor("col1", TensorProto.INT64, [], [1]),
              helper.make_tensor("col2", TensorProto.INT64, [], [2]),
              helper.make_tensor("axis0", TensorProto.INT64, [1], [0])]
    g.initializer.extend(consts)
    g.node.extend([
        helper.make_node("NonMaxSuppression", [boxes, scores, "max_out", "iou", "score_thr"], ["selected"], name="nms"),
        helper.make_node("Gather", ["selected", "col2"], ["box_idx"], axis=1, name="box_idx"),
        helper.make_node("Gather", ["selected", "col1"], ["det_classes"], axis=1, name="class_idx"),
        helper.make_node("Squeeze", [boxes, "axis0"], ["boxes0"], name="squeeze_boxes"),
        helper.make_node("Gather", ["boxes0", "box_idx"], ["det_boxes"], axis=0, name="gather_boxes"),
        helper.make_node("GatherND", [scores, "selected"], ["det_scores"], name="gather_scores"),
    ])
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("selected", TensorProto.INT64, ["M", 3]),
                     helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, ["M", 4]),
                     helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, ["M"]),
                     helper.make_tensor_value_info("det_classes", TensorProto.INT64, ["M"])])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_ssdlite_style_detector_with_nms(tmp_path, dynamo):
    torch.manual_seed(0)
    net = TinySSD().eval()
    with torch.no_grad():  # spread the class scores so the threshold and the suppression both act
        for h in net.cls:
            h[-1].weight.mul_(4.0)
    x = torch.rand(1, 3, 32, 32)
    path = export(net, x, dynamo=dynamo, dynamic_batch=False, path=tmp_path / "ssd.onnx")
    exported = onnx.load(str(path))
    feeds = {exported.graph.input[0].name: x.numpy()}
    candidates = (run_ort(exported, feeds)[1][0] > SCORE).sum(-1)  # per class, above the score threshold
    model = _with_nms(exported)
    selected = run_ort(model, feeds)[0]
    per_class = np.bincount(selected[:, 1], minlength=CLASSES - 1)
    # the case exercises the threshold (some candidates dropped) and the IoU suppression (a class
    # keeps fewer boxes than it has candidates, below the per-class cap)
    assert candidates.sum() < candidates.size * PRE_NMS and 0 < len(selected)
    assert any(0 < k < min(c, MAX_PER_CLASS) for k, c in zip(per_class, candidates))
    km = assert_matches_ort(model, feeds)
    for seed in (1, 2):  # other images: other selections, same converted model
        image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).numpy()
        assert_matches_ort(model, {exported.graph.input[0].name: image}, keras_model=km)
    assert konnx.verify(model, km, feeds).ok  # the user-facing check agrees
