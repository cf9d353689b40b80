# Instance segmentation for TensorRT 8 (mmdeploy's configs/mmdet/
# instance-seg/instance-seg_tensorrt_dynamic-320x320-1344x1344.py). Not
# verified here (no GPU): see docs/deploy.md.
_base_ = ['../_base_/instance-seg_dynamic.py', '../_base_/tensorrt.py']
# mmdeploy's TensorRT configs export opset 11 (RoIAlign is its own plugin)
onnx_config = dict(opset_version=11)
