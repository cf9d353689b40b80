# mmdeploy's ONNX settings (its configs/_base_/onnx_config.py): the graph is
# written as end2end.onnx, with one input named `input`. Opset 11, as
# mmdeploy's mmdet configs: its symbolic rewrites (NMS, RoIAlign) target it.
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
