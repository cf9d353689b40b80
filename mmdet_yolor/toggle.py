# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""``yolorize``: rewrite an mmdet config to its YOLOR form, and back.

Config in, config out, nothing built: the neck becomes a ``YOLORNeck``
(feature alignment; a detector without a neck gets a ``YOLORBackbone``),
every head a ``YOLORHead`` (prediction refinement; which layers it refines is
decided when the head is built), RoI heads are searched for their stage
heads, and the implicit parameters are excluded from weight decay as in the
official code.
:func:`unyolorize` undoes it, giving the plain mmdet config that a fully
folded YOLOR checkpoint loads into.
"""
import copy
from typing import List, Optional

from mmdet.models.roi_heads import BaseRoIHead
from mmengine.config import Config, ConfigDict

from .config_edits import nested_dicts
from .errors import InputError
from .models import YOLORBackbone, YOLORHead, YOLORNeck
from .models.heads.prediction_layers import why_predicts_nothing
from .models.layers.implicit import IMPLICIT_MODULE_PREFIX
from .models.necks.fpn_folding import find_output_convs
from .models.wrapping import merged_config, resolve_type

PLUGIN = 'mmdet_yolor'
YOLOR_WRAPPERS = {
    wrapper.__name__: wrapper
    for wrapper in (YOLORNeck, YOLORBackbone, YOLORHead)
}
YOLOR_TYPES = tuple(YOLOR_WRAPPERS)

# The YOLOR variants the tools offer (``--yolor [all|fa|pr|foldable]``), as
# keyword arguments of :func:`yolorize`: ``all`` both parts, ``fa`` feature
# alignment only, ``pr`` prediction refinement only, ``foldable`` both parts
# in the placement that folds away completely at inference.
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
             alignment_operator: Optional[str] = None,
             alignment_placement: Optional[str] = None,
             share_across_levels: Optional[bool] = None,
             input_implicit: Optional[str] = None,
             foldable: bool = False,
             no_weight_decay: bool = True) -> Config:
    """Return a copy of ``cfg`` rewritten to its YOLOR form.

    The wrapper options (``implicit_cfg`` to ``input_implicit``) go into the
    wrappers' configs only where given: None leaves the wrapper's default
    (see :class:`YOLORNeck`, :class:`YOLORBackbone`, :class:`YOLORHead`).

    Args:
        cfg (Config): A loaded mmdet config with a ``model``.
        feature_alignment (bool): Wrap the neck (a list of necks as a whole)
            in ``YOLORNeck``, or the backbone in ``YOLORBackbone`` if the
            detector has no neck. Defaults to True.
        prediction_refinement (bool): Wrap every head in ``model`` and in its
            RoI heads (including lists of stage heads) in ``YOLORHead``.
            Heads without prediction layers (``EmbeddingRPNHead``, panoptic
            fusion heads) are left as they are. Defaults to True.
        implicit_cfg (dict, optional): ``implicit_cfg`` of every wrapper
            (``form``, ``init``, ...).
        alignment_operator (str, optional): ``operator`` of ``YOLORNeck``
            or ``YOLORBackbone``.
        alignment_placement (str, optional): ``placement`` of
            ``YOLORNeck``.
        share_across_levels (bool, optional): ``share_across_levels`` of
            every ``YOLORHead``.
        input_implicit (str, optional): ``input_implicit`` of every
            ``YOLORHead``.
        foldable (bool): The placement whose every implicit folds exactly
            into a neighbouring layer (``mmdet_yolor.fuse_implicit``), so
            that the trained model becomes a plain mmdet model:
            ``alignment_placement='output_convs'``,
            ``share_across_levels=True``, ``input_implicit='foldable'``.
            Defaults to False.
        no_weight_decay (bool): Set ``decay_mult=0`` for the implicit
            parameters in ``optim_wrapper.paramwise_cfg.custom_keys`` when
            the optimizer has a ``weight_decay``. Defaults to True.

    Returns:
        Config: The rewritten copy; ``cfg`` is not modified. Its
        ``custom_imports`` loads ``mmdet_yolor``.

    Raises:
        YolorizeError: If the config has no model (or neither neck nor
            backbone), is already in YOLOR form, names a type that is not
            registered, or asks for the foldable placement on a neck that is
            not an FPN.
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
    path = 'model'
    # semi-supervised and distillation wrappers hold the detector
    while 'detector' in model and 'backbone' not in model:
        model, path = model['detector'], f'{path}.detector'

    if feature_alignment:
        alignment = _given(
            operator=alignment_operator,
            implicit_cfg=copy.deepcopy(implicit_cfg) or None)
        _wrap_features(model, alignment, alignment_placement, path, source)
    if prediction_refinement:
        head = dict(
            type='YOLORHead',
            **_given(
                implicit_cfg=copy.deepcopy(implicit_cfg) or None,
                share_across_levels=share_across_levels,
                input_implicit=input_implicit))
        _wrap_heads(model, head, path, source)

    imports: List[str] = list(cfg.get('custom_imports', {}).get('imports', []))
    if PLUGIN not in imports:
        imports.append(PLUGIN)
    cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)

    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    # mmengine refuses decay_mult for an optimizer without weight decay
    # (CornerNet's Adam), whose parameters do not decay anyway
    if no_weight_decay and optimizer.get('weight_decay') is not None:
        paramwise_cfg = cfg.optim_wrapper.setdefault('paramwise_cfg',
                                                     ConfigDict())
        custom_keys = paramwise_cfg.setdefault('custom_keys', ConfigDict())
        custom_keys[IMPLICIT_MODULE_PREFIX] = ConfigDict(decay_mult=0.)
    return cfg


def _given(**options) -> dict:
    """The options that were given (not None)."""
    return {key: value for key, value in options.items() if value is not None}


def _check_not_yolor(module_cfg: dict, path: str, source: str) -> None:
    if module_cfg.get('type') in YOLOR_TYPES:
        raise YolorizeError(f'yolorize: {path} in {source} is already a '
                            f'{module_cfg["type"]}; the config is in YOLOR '
                            f'form already')


def _wrap_features(model: dict, alignment: dict, placement: Optional[str],
                   path: str, source: str) -> None:
    """Wrap the neck (a neck list as a whole) in ``YOLORNeck``; without a
    neck, the backbone in ``YOLORBackbone``."""
    neck = model.get('neck')
    if neck:
        necks = neck if isinstance(neck, list) else [neck]
        for item in necks:
            _check_not_yolor(item, f'{path}.neck', source)
        if placement == 'output_convs':
            _check_output_convs(necks, path, source)
        alignment.update(_given(placement=placement))
        model['neck'] = ConfigDict(type='YOLORNeck', neck=neck, **alignment)
        return
    backbone = model.get('backbone')
    if not backbone:
        raise YolorizeError(
            f'yolorize: {path} in {source} has neither a neck nor a '
            f'backbone for feature alignment. Use feature_alignment=False '
            f'(tools: --yolor pr) to add prediction refinement only.')
    _check_not_yolor(backbone, f'{path}.backbone', source)
    if placement not in (None, 'outputs'):
        raise YolorizeError(
            f"yolorize: alignment placement {placement!r} puts the implicits "
            f"on a neck's output convs, but {path} in {source} has no neck. "
            f"Use the default placement (not --yolor foldable).")
    model['backbone'] = ConfigDict(
        type='YOLORBackbone', backbone=backbone, **alignment)


def _check_output_convs(necks: List[dict], path: str, source: str) -> None:
    """The output-convs placement needs one neck whose output convs are
    known (FPN and its subclasses)."""
    neck_type = _resolve(necks[-1], f'{path}.neck', source)
    if len(necks) > 1 or find_output_convs(neck_type) is None:
        raise YolorizeError(
            f'yolorize: the foldable placement puts the implicits on the '
            f'output convs of an FPN, and {path}.neck in {source} is '
            f'{" + ".join(str(n["type"]) for n in necks)}. Use the default '
            f'placement (--yolor all), whose neck implicits fold where they '
            f'can.')


def _resolve(module_cfg: dict, path: str, source: str) -> type:
    try:
        return resolve_type(module_cfg, 'yolorize')
    except (KeyError, TypeError) as error:
        raise YolorizeError(f'{path} in {source}: {error}') from None


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
    """``YOLORHead`` around ``head``; a RoI head's heads are wrapped in it,
    and heads that predict nothing are left as they are."""
    _check_not_yolor(head, path, source)
    head_type = _resolve(head, path, source)
    if issubclass(head_type, BaseRoIHead):
        _wrap_heads(head, wrapper, path, source)
        return head
    if why_predicts_nothing(head_type) is not None:
        return head
    return ConfigDict(copy.deepcopy(wrapper), head=head)


def is_yolorized(cfg: Config) -> bool:
    """Whether ``cfg``'s model holds a YOLOR wrapper (it is in YOLOR form:
    :func:`yolorize` would refuse it, :func:`unyolorize` undoes it)."""
    return any(
        item.get('type') in YOLOR_TYPES
        for item in nested_dicts(cfg.get('model')))


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
    """``value`` with each wrapper config replaced by the config of the
    module it wraps, the wrapper's other keys (a user's overrides of the
    module) merged in."""
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    if not isinstance(value, dict):
        return value
    wrapper = YOLOR_WRAPPERS.get(value.get('type'))
    if wrapper is not None:
        own = ('type', ) + wrapper.own_options()
        options = {k: v for k, v in value.items() if k not in own}
        return _unwrap(
            merged_config(value[wrapper.wrapped_key], options, value['type']))
    return ConfigDict({key: _unwrap(item) for key, item in value.items()})
