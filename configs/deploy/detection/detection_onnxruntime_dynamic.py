# Detection (boxes) for ONNX Runtime with dynamic input shapes: FCOS, ATSS,
# Faster R-CNN and their YOLOR versions (mmdeploy's
# configs/mmdet/detection/detection_onnxruntime_dynamic.py).
_base_ = ['../_base_/detection_dynamic.py', '../_base_/onnxruntime.py']
