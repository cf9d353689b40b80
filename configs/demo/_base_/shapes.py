# Shared settings of the demo configs: the embedded synthetic shapes data
# (generated under data/shapes/ on first use), a half-width ResNet-18 trained
# from scratch, a 64-channel FPN and a short schedule, sized for a 2-core
# CPU: one FCOS training plus its evaluation takes about 9.5 minutes alone
# (2 threads) and reaches a box mAP of about 0.4; two such trainings run in
# parallel with OMP_NUM_THREADS=1 each take about 12.5 minutes (timed with
# validation at the end only; validating every epoch adds about 3%).
#
# Each demo config inherits an mmdet COCO config for its detector together
# with this file. The settings are named `shapes_*` so that they do not
# collide with the COCO config's keys; the demo config assigns them to the
# standard keys (train_dataloader, backbone...).
shapes_image_size = 192
# Many distinct images cost nothing per iteration and keep the short
# schedule from over-fitting; shapes of at least 16 px (instead of 12) are
# learnt within the schedule.
shapes_generator = dict(
    num_train=1600,
    num_val=100,
    image_size=shapes_image_size,
    seed=0,
    min_size=16)
shapes_num_classes = 6  # len(ShapesDataset.METAINFO['classes'])

# ResNet-18 from scratch: no pretrained weights can be downloaded, so BN is
# trained (norm_eval=False) and no stage is frozen. Half width
# (base_channels=32: stages of 32, 64, 128, 256 channels) for CPU speed.
shapes_backbone = dict(
    _delete_=True,
    type='ResNet',
    depth=18,
    base_channels=32,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None)
shapes_neck_in_channels = [32, 64, 128, 256]
# FPN width; the heads take it as in_channels and use it as their width
# (a multiple of 32, for the heads' GroupNorm with 32 groups).
shapes_neck_out_channels = 64
shapes_data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)

shapes_data_root = 'data/shapes/'
# The images are generated at the network's input size: Resize keeps them
# so, but records the scale_factor that the heads need at test time.
shapes_resize = dict(
    type='Resize',
    scale=(shapes_image_size, shapes_image_size),
    keep_ratio=True)
shapes_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    shapes_resize,
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
shapes_test_pipeline = [
    dict(type='LoadImageFromFile'), shapes_resize,
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
shapes_train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='ShapesDataset',
        data_root=shapes_data_root,
        generator=shapes_generator,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=shapes_train_pipeline))
shapes_val_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesDataset',
        data_root=shapes_data_root,
        generator=shapes_generator,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=shapes_test_pipeline))
shapes_val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    ann_file=shapes_data_root + 'annotations/instances_val.json',
    metric='bbox',
    format_only=False)

# Short schedule (6 x 200 iterations): AdamW learns from scratch in
# minutes; linear warm-up, then cosine decay to the end. The checkpoint only
# at the end; validation after every epoch, for the mAP curves (the table
# reads the last epoch's). Measured with two trainings side by side, one
# thread each, on a 2-core machine shared with other work: a validation
# pass (100 images and CocoMetric) took 5-10 s, a training epoch 250-260 s,
# so the 5 extra passes add at most about 3% to the demo.
shapes_max_epochs = 6
shapes_train_cfg = dict(
    _delete_=True,
    type='EpochBasedTrainLoop',
    max_epochs=shapes_max_epochs,
    val_interval=1)
shapes_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
shapes_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.01,
        by_epoch=True,
        begin=0,
        end=shapes_max_epochs,
        convert_to_iter_based=True)
]
shapes_default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook', interval=shapes_max_epochs, max_keep_ckpts=1))
shapes_auto_scale_lr = dict(enable=False, base_batch_size=8)
