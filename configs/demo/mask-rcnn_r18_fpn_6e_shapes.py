# Mask R-CNN, half-width R-18 from scratch, 64-ch FPN, 6 epochs, shapes.
_base_ = ['../mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/shapes.py']

model = dict(
    data_preprocessor=_base_.shapes_data_preprocessor,
    backbone=_base_.shapes_backbone,
    neck=dict(
        in_channels=_base_.shapes_neck_in_channels,
        out_channels=_base_.shapes_neck_out_channels),
    rpn_head=dict(
        in_channels=_base_.shapes_neck_out_channels,
        feat_channels=_base_.shapes_neck_out_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=_base_.shapes_neck_out_channels),
        bbox_head=dict(
            in_channels=_base_.shapes_neck_out_channels,
            fc_out_channels=256,
            num_classes=_base_.shapes_num_classes),
        mask_roi_extractor=dict(out_channels=_base_.shapes_neck_out_channels),
        mask_head=dict(
            in_channels=_base_.shapes_neck_out_channels,
            conv_out_channels=_base_.shapes_neck_out_channels,
            num_classes=_base_.shapes_num_classes)),
    # at most 6 shapes an image: fewer proposals and sampled RoIs than COCO
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(max_per_img=300)))

train_dataloader = _base_.shapes_train_dataloader
val_dataloader = _base_.shapes_val_dataloader
test_dataloader = val_dataloader
val_evaluator = dict(_base_.shapes_val_evaluator, metric=['bbox', 'segm'])
test_evaluator = val_evaluator
train_cfg = _base_.shapes_train_cfg
optim_wrapper = _base_.shapes_optim_wrapper
param_scheduler = _base_.shapes_param_scheduler
default_hooks = _base_.shapes_default_hooks
auto_scale_lr = _base_.shapes_auto_scale_lr
