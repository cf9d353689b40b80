# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``onnx_cast_long``: R-CNNs export where torch lacks
``torch.onnx.symbolic_opset9._cast_Long`` (torch >= 2.9).

mmdeploy's RoIAlign symbolic for ONNX Runtime imports ``_cast_Long``, so
exporting any R-CNN fails with ``ImportError: cannot import name
'_cast_Long' from 'torch.onnx.symbolic_opset9'``. The fix defines it as
torch <= 2.8 did, a ``Cast`` to int64.
"""
import torch

from .registry import Fix


def _cast_long(g, input, non_blocking):
    """``torch.onnx.symbolic_opset9._cast_Long`` of torch <= 2.8."""
    return g.op('Cast', input, to_i=torch.onnx.TensorProtoDataType.INT64)


def lacks_cast_long() -> bool:
    from torch.onnx import symbolic_opset9
    return not hasattr(symbolic_opset9, '_cast_Long')


def define_cast_long() -> None:
    from torch.onnx import symbolic_opset9
    symbolic_opset9._cast_Long = _cast_long


FIX = Fix(
    name='onnx_cast_long',
    defect="torch.onnx.symbolic_opset9 has no _cast_Long, which mmdeploy's "
    'RoIAlign symbolic imports',
    probe=lacks_cast_long,
    apply=define_cast_long)
