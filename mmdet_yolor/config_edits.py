# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Edits of mmdet configs that the tools and tests share: walking nested
configs and dropping pretrained weights, which cannot be downloaded on a
machine without internet. Config in, config changed, nothing built."""
from typing import List


def nested_dicts(node) -> List[dict]:
    """Every dict nested in ``node`` (through dicts, lists and tuples),
    ``node`` first if it is one."""
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def loads_weights(init_cfg) -> bool:
    """Whether an ``init_cfg`` loads weights: of type ``Pretrained``, or with
    a ``checkpoint`` that the module loads itself (PVT)."""
    return isinstance(init_cfg, dict) and (init_cfg.get('type')
                                           in ('Pretrained', 'PretrainedInit')
                                           or 'checkpoint' in init_cfg)


def strip_pretrained(model_cfg: dict) -> List[dict]:
    """Drop every pretrained-weight reference of a model config, in place:
    ``init_cfg`` entries that load weights (:func:`loads_weights`, alone or
    in a list) and ``pretrained=<path or True>``.

    Returns:
        list[dict]: The module configs that lost weights (each should then
        learn what came with them, e.g. its BN statistics).
    """
    stripped = []
    for item in nested_dicts(model_cfg):
        init_cfg = item.get('init_cfg')
        dropped = False
        if loads_weights(init_cfg):
            item['init_cfg'] = None
            dropped = True
        elif isinstance(init_cfg, list) and any(map(loads_weights, init_cfg)):
            item['init_cfg'] = [
                entry for entry in init_cfg if not loads_weights(entry)
            ]
            dropped = True
        pretrained = item.get('pretrained')
        if isinstance(pretrained, (str, bool)) and pretrained:
            item['pretrained'] = None if isinstance(pretrained, str) else False
            dropped = True
        if dropped:
            stripped.append(item)
    return stripped
