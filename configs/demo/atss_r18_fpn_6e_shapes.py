# ATSS, half-width ResNet-18 from scratch, 64-ch FPN, 6 epochs on shapes.
_base_ = ['../atss/atss_r50_fpn_1x_coco.py', './_base_/shapes.py']

model = dict(
    data_preprocessor=_base_.shapes_data_preprocessor,
    backbone=_base_.shapes_backbone,
    neck=dict(
        in_channels=_base_.shapes_neck_in_channels,
        out_channels=_base_.shapes_neck_out_channels),
    bbox_head=dict(
        num_classes=_base_.shapes_num_classes,
        in_channels=_base_.shapes_neck_out_channels,
        feat_channels=_base_.shapes_neck_out_channels,
        stacked_convs=2))

train_dataloader = _base_.shapes_train_dataloader
val_dataloader = _base_.shapes_val_dataloader
test_dataloader = val_dataloader
val_evaluator = _base_.shapes_val_evaluator
test_evaluator = val_evaluator
train_cfg = _base_.shapes_train_cfg
optim_wrapper = _base_.shapes_optim_wrapper
param_scheduler = _base_.shapes_param_scheduler
default_hooks = _base_.shapes_default_hooks
auto_scale_lr = _base_.shapes_auto_scale_lr
