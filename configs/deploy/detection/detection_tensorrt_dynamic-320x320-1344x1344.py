# Detection (boxes) for TensorRT 8 (mmdeploy's
# configs/mmdet/detection/detection_tensorrt_dynamic-320x320-1344x1344.py).
# Not verified here (no GPU): see docs/deploy.md.
_base_ = ['../_base_/detection_dynamic.py', '../_base_/tensorrt.py']
# mmdeploy's TensorRT configs export opset 11 (RoIAlign is its own plugin)
onnx_config = dict(opset_version=11)
