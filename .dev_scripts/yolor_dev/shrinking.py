# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Config edits that make mmdet's two-stage detectors cheap to run on a CPU,
shared by the tests and the dev scripts."""
from mmdet_yolor.config_edits import nested_dicts


def cap_two_stage_sampling(model: dict,
                           proposals: int = 100,
                           sampled_rois: int = 64) -> None:
    """Keep at most ``proposals`` RPN proposals per image and sample at most
    ``sampled_rois`` RoIs per image (RoIAlign is slow on the CPU), in the
    ``train_cfg``/``test_cfg`` of ``model``, in place."""
    for node in nested_dicts([model.get('train_cfg'), model.get('test_cfg')]):
        if isinstance(node.get('sampler'), dict) and 'num' in node.sampler:
            node.sampler.num = min(node.sampler.num, sampled_rois)
        for stage in ('rpn', 'rpn_proposal'):
            if 'max_per_img' in node.get(stage, {}):
                node[stage].max_per_img = min(node[stage].max_per_img,
                                              proposals)
