# Sparse R-CNN, half-width R-18 from scratch, 64-ch FPN, 6 epochs, shapes.
_base_ = [
    '../sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py', './_base_/shapes.py'
]
channels = _base_.shapes_neck_out_channels
# at most 6 shapes an image: 30 learned proposals instead of COCO's 100
num_proposals = 30

model = dict(
    data_preprocessor=_base_.shapes_data_preprocessor,
    backbone=_base_.shapes_backbone,
    neck=dict(
        in_channels=_base_.shapes_neck_in_channels, out_channels=channels),
    rpn_head=dict(
        num_proposals=num_proposals, proposal_feature_channel=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=[
            dict(
                stage_head,
                num_classes=_base_.shapes_num_classes,
                in_channels=channels,
                feedforward_channels=4 * channels,
                dynamic_conv_cfg=dict(
                    stage_head.dynamic_conv_cfg,
                    in_channels=channels,
                    feat_channels=channels // 4,
                    out_channels=channels))
            for stage_head in _base_.model.roi_head.bbox_head
        ]),
    test_cfg=dict(rpn=None, rcnn=dict(max_per_img=num_proposals)))

train_dataloader = _base_.shapes_train_dataloader
val_dataloader = _base_.shapes_val_dataloader
test_dataloader = val_dataloader
val_evaluator = _base_.shapes_val_evaluator
test_evaluator = val_evaluator
train_cfg = _base_.shapes_train_cfg
# the transformer-like stage heads train at a lower rate than the CNN heads
optim_wrapper = dict(
    _base_.shapes_optim_wrapper,
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05))
param_scheduler = _base_.shapes_param_scheduler
default_hooks = _base_.shapes_default_hooks
auto_scale_lr = _base_.shapes_auto_scale_lr
