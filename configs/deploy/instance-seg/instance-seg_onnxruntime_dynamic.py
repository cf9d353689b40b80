# Instance segmentation (boxes and masks) for ONNX Runtime with dynamic input
# shapes: Mask R-CNN and its YOLOR versions (mmdeploy's
# configs/mmdet/instance-seg/instance-seg_onnxruntime_dynamic.py).
_base_ = ['../_base_/instance-seg_dynamic.py', '../_base_/onnxruntime.py']
