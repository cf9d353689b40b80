# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""``yolorize``: rewrite an mmdet config to its YOLOR form, and back.

Config in, config out, nothing built: the neck becomes a ``YOLORNeck``
(feature alignment), every supported head a ``YOLORHead`` (prediction
refinement), RoI heads are searched for their stage heads, and the implicit
parameters are excluded from weight decay as in the official code.
:func:`unyolorize` undoes it, giving the plain mmdet config that a fully
folded YOLOR checkpoint loads into.
"""
import copy
from typing import List, Optional

from mmdet.models.roi_heads import BaseRoIHead
from mmengine.config import Config, ConfigDict

from .errors import InputError
from .models.heads.yolor_head import (find_prediction_layers,
                                      unsupported_head_message)
from .models.layers.implicit import IMPLICIT_MODULE_PREFIX
from .models.wrapping import resolve_type

PLUGIN = 'mmdet_yolor'
YOLOR_TYPES = ('YOLORNeck', 'YOLORHead')

# The YOLOR variants the tools offer (``--yolor [all|fa|pr|foldable]``), as
# keyword arguments of :func:`yolorize`: ``foldable`` is both parts in the
# placement that folds away completely at inference.
YOLOR_PARTS = {
    'all': dict(),
    'fa': dict(prediction_refinement=False),
    'pr': dict(feature_alignment=False),
    'foldable': dict(foldable=True),
}


class YolorizeError(InputError):
    """A config cannot be rewritten to its YOLOR form."""


def yolorize(cfg: Config,
             feature_alignment: bool = True,
             prediction_refinement: bool = True,
             implicit_cfg: Optional[dict] = None,
             alignment_operator: str = 'add',
             alignment_placement: str = 'outputs',
             share_across_levels: bool = False,
             input_implicit: str = 'all',
             foldable: bool = False,
             no_weight_decay: bool = True) -> Config:
    """Return a copy of ``cfg`` rewritten to its YOLOR form.

    Args:
        cfg (Config): A loaded mmdet config with a ``model``.
        feature_alignment (bool): Wrap the neck (the last one if ``neck`` is
            a list) in ``YOLORNeck``. Defaults to True.
        prediction_refinement (bool): Wrap every head in ``model`` and in its
            RoI heads (including lists of stage heads) in ``YOLORHead``.
            Heads without prediction layers (``EmbeddingRPNHead``) are left
            as they are. Defaults to True.
        implicit_cfg (dict, optional): ``implicit_cfg`` of every wrapper
            (``form``, ``init``, ...). Defaults to the wrappers' defaults.
        alignment_operator (str): ``operator`` of ``YOLORNeck``. Defaults to
            ``'add'``.
        alignment_placement (str): ``placement`` of ``YOLORNeck``. Defaults
            to ``'outputs'``.
        share_across_levels (bool): ``share_across_levels`` of every
            ``YOLORHead``. Defaults to False.
        input_implicit (str): ``input_implicit`` of every ``YOLORHead``.
            Defaults to ``'all'``.
        foldable (bool): The placement whose every implicit folds exactly
            into a neighbouring layer (``mmdet_yolor.fuse_implicit``), so
            that the trained model becomes a plain mmdet model:
            ``alignment_placement='output_convs'``,
            ``share_across_levels=True``, ``input_implicit='foldable'``.
            Defaults to False.
        no_weight_decay (bool): Set ``decay_mult=0`` for the implicit
            parameters in ``optim_wrapper.paramwise_cfg.custom_keys``.
            Defaults to True.

    Returns:
        Config: The rewritten copy; ``cfg`` is not modified. Its
        ``custom_imports`` loads ``mmdet_yolor``.

    Raises:
        YolorizeError: If the config has no model or neck, is already in
            YOLOR form, or contains a head ``YOLORHead`` does not support.
    """
    if not (feature_alignment or prediction_refinement):
        raise YolorizeError('yolorize: enable feature_alignment or '
                            'prediction_refinement (or both)')
    if foldable:
        alignment_placement = 'output_convs'
        share_across_levels = True
        input_implicit = 'foldable'
    source = getattr(cfg, 'filename', None) or 'the config'
    cfg = copy.deepcopy(cfg)
    model = cfg.get('model')
    if not isinstance(model, dict):
        raise YolorizeError(f'yolorize: {source} has no model dict')

    if feature_alignment:
        neck = dict(type='YOLORNeck')
        if alignment_operator != 'add':
            neck['operator'] = alignment_operator
        if alignment_placement != 'outputs':
            neck['placement'] = alignment_placement
        if implicit_cfg:
            neck['implicit_cfg'] = copy.deepcopy(implicit_cfg)
        _wrap_neck(model, neck, source)
    if prediction_refinement:
        head = dict(type='YOLORHead')
        if implicit_cfg:
            head['implicit_cfg'] = copy.deepcopy(implicit_cfg)
        if share_across_levels:
            head['share_across_levels'] = True
        if input_implicit != 'all':
            head['input_implicit'] = input_implicit
        _wrap_heads(model, head, 'model', source)

    imports: List[str] = list(cfg.get('custom_imports', {}).get('imports', []))
    if PLUGIN not in imports:
        imports.append(PLUGIN)
    cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)

    if no_weight_decay and cfg.get('optim_wrapper') is not None:
        paramwise_cfg = cfg.optim_wrapper.setdefault('paramwise_cfg',
                                                     ConfigDict())
        custom_keys = paramwise_cfg.setdefault('custom_keys', ConfigDict())
        custom_keys[IMPLICIT_MODULE_PREFIX] = ConfigDict(decay_mult=0.)
    return cfg


def _check_not_yolor(module_cfg: dict, path: str, source: str) -> None:
    if module_cfg.get('type') in YOLOR_TYPES:
        raise YolorizeError(f'yolorize: {path} in {source} is already a '
                            f'{module_cfg["type"]}; the config is in YOLOR '
                            f'form already')


def _wrap_neck(model: dict, wrapper: dict, source: str) -> None:
    neck = model.get('neck')
    if not neck:
        raise YolorizeError(
            f'yolorize: model in {source} has no neck; YOLOR feature '
            f'alignment wraps the neck outputs. Use feature_alignment=False '
            f'(tools: --yolor pr) to add prediction refinement only.')
    if isinstance(neck, list):
        _check_not_yolor(neck[-1], 'model.neck[-1]', source)
        neck[-1] = ConfigDict(wrapper, neck=neck[-1])
    else:
        _check_not_yolor(neck, 'model.neck', source)
        model['neck'] = ConfigDict(wrapper, neck=neck)


def _wrap_heads(parent: dict, wrapper: dict, path: str, source: str) -> None:
    """Wrap every ``*_head`` entry of ``parent`` (a dict or list of dicts)."""
    for key, value in list(parent.items()):
        if not key.endswith('_head') or not value:
            continue
        if isinstance(value, list):
            parent[key] = [
                _wrap_head(head, wrapper, f'{path}.{key}[{i}]', source)
                for i, head in enumerate(value)
            ]
        else:
            parent[key] = _wrap_head(value, wrapper, f'{path}.{key}', source)


def _wrap_head(head: dict, wrapper: dict, path: str, source: str) -> dict:
    _check_not_yolor(head, path, source)
    try:
        head_type = resolve_type(head, 'yolorize')
    except (KeyError, TypeError) as error:
        raise YolorizeError(f'{path} in {source}: {error}') from None
    entry = find_prediction_layers(head_type)
    if entry is not None:
        if not entry.names:
            return head
        return ConfigDict(copy.deepcopy(wrapper), head=head)
    if issubclass(head_type, BaseRoIHead):
        _wrap_heads(head, wrapper, path, source)
        return head
    raise YolorizeError(f'yolorize: {path} in {source}: ' +
                        unsupported_head_message(head_type) +
                        ' Or use prediction_refinement=False (tools: '
                        '--yolor fa) to add feature alignment only.')


def unyolorize(cfg: Config) -> Config:
    """Return a copy of ``cfg`` with every ``YOLORNeck``/``YOLORHead``
    replaced by the module it wraps, ``mmdet_yolor`` removed from
    ``custom_imports`` and its weight-decay key from the optimizer: the
    plain mmdet config of the same detector."""
    cfg = copy.deepcopy(cfg)
    cfg.model = _unwrap(cfg.model)
    imports = [
        name for name in cfg.get('custom_imports', {}).get('imports', [])
        if name != PLUGIN
    ]
    if imports:
        cfg.custom_imports.imports = imports
    else:
        cfg.pop('custom_imports', None)
    paramwise_cfg = cfg.get('optim_wrapper', {}).get('paramwise_cfg', {})
    custom_keys = paramwise_cfg.get('custom_keys', {})
    custom_keys.pop(IMPLICIT_MODULE_PREFIX, None)
    # drop what yolorize created empty
    if 'custom_keys' in paramwise_cfg and not custom_keys:
        paramwise_cfg.pop('custom_keys')
        if not paramwise_cfg:
            cfg.optim_wrapper.pop('paramwise_cfg')
    return cfg


def _unwrap(value):
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get('type') == 'YOLORNeck':
        return _unwrap(value['neck'])
    if value.get('type') == 'YOLORHead':
        return _unwrap(value['head'])
    return ConfigDict({key: _unwrap(item) for key, item in value.items()})
