# mmdeploy's mmdet instance segmentation (its configs/mmdet/_base_/
# base_instance-seg_dynamic.py): `masks` are the RoI masks (N, K, 28, 28),
# which mmdeploy's Detector pastes into the image as mmdet does.
_base_ = ['./detection_dynamic.py']

onnx_config = dict(
    output_names=['dets', 'labels', 'masks'],
    dynamic_axes={
        'masks': {
            0: 'batch',
            1: 'num_dets',
            2: 'height',
            3: 'width'
        }
    })
codebase_config = dict(post_processing=dict(export_postprocess_mask=False))
