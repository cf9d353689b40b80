# mmdeploy's ONNX settings (its configs/_base_/onnx_config.py): the graph is
# written as end2end.onnx, with one input named `input`. Opset 16 instead of
# mmdeploy's 11: before opset 16 ONNX's RoiAlign has no half-pixel mode, so
# mmdeploy shifts the RoIs, and ONNX Runtime then still enlarges RoIs to at
# least one feature pixel, which mmcv's aligned RoIAlign does not (small
# RoIs pool other features: R-CNN scores 1e-3 apart, other detections);
# with opset 16 mmdeploy exports `coordinate_transformation_mode=
# 'half_pixel'`, mmcv's semantics.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=16,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=True)
