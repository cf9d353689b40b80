# mmdeploy's mmdet object detection task (its configs/mmdet/_base_/
# base_static.py and base_dynamic.py): outputs `dets` (N, K, 5: boxes and
# score) and `labels` (N, K), any batch size and image size. The
# post-processing values apply where the model's test_cfg has none;
# tools/deploy/export_onnx.py writes them from the test_cfg instead.
_base_ = ['./onnx_config.py']

onnx_config = dict(
    output_names=['dets', 'labels'],
    input_shape=None,
    dynamic_axes={
        'input': {
            0: 'batch',
            2: 'height',
            3: 'width'
        },
        'dets': {
            0: 'batch',
            1: 'num_dets'
        },
        'labels': {
            0: 'batch',
            1: 'num_dets'
        },
    })
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,  # for YOLOv3
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1))
