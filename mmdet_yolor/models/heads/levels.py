# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Which pyramid level a head is predicting, for the layers it shares
across levels.

A dense head applies its prediction layers to every pyramid level in turn
(FCOS's ``conv_cls``). With one implicit pair per level, such a shared layer
must know the level of each call. The head that applies it to its levels,
the *level owner* (the head itself, or each stage head of Cascade RPN),
holds a :class:`LevelCursor`; its shared refined layers hold a reference to
the same cursor and read their level from it. Where a level starts is known
from the head:

- mmdet's dense heads run their levels through
  ``multi_apply(self.forward_single, feats, ...)``, one ``forward_single``
  call per level, in order. For a head whose ``forward`` does so (read from
  its code: :func:`starts_levels_in_forward_single`), each
  ``forward_single`` call starts the next level, and every layer call
  within it, however many, is at that level.
- A head whose ``forward`` loops over the levels itself (TOOD, SOLO,
  ``RTMDetHead``, ``RetinaSepBNHead``) has no per-level entry point; there
  the level of a call is its position among the calls of that layer in this
  forward of the head.

The owner begins the cursor in its ``forward`` and checks at the end that
the forward covered every level, or none (:class:`LevelOwnerMixin`). Outside
a forward of its owner a shared layer has no level and says so. The state is
plain Python ints, set and read within one forward, so ``torch.compile``
traces it without graph breaks or recompiles; like any module with state of
a forward, a model instance is not re-entrant across threads.

Where dynamo cannot trace a head's forward whole (TOOD's loop breaks its
graph at mmcv's deformable conv, and dynamo runs that forward eagerly), it
meets the layers the forward calls as frames of their own. The owner's
bookkeeping, the refined layers' forward and their implicits then run
eagerly too (:func:`~..eager_frames.eager_at_top_level`), as the plain layers
of the baseline do, rather than compiling per layer, level and shape (12
frames more than TOOD's baseline on torch 2.13); so does a plain
``nn.Sequential`` holding a shared refined layer
(:class:`LevelSequentialMixin`), which torch 2.1 would compile on its own,
with the level of its first call taken for a constant.

A graph break inside ``forward_single`` (mmcv's deformable ``AdaptiveConv``
in Cascade RPN's stage heads) makes dynamo resume there in a frame of its
own, the same for every level; read as an int, the level would be a guard
of that frame and recompile it at each level (3 frames and recompiles more
than Cascade RPN's baseline on torch 2.13). So a head that starts its
levels in ``forward_single`` also holds the level as a tensor, and compiled
code selects the level's implicits with it
(:meth:`LevelCursor.level_index_of`): the resumed frame then guards on the
tensor's shape alone. Where ``forward_single`` runs eagerly, the tensor is
the owner's ``yolor_level_index`` buffer (on the model's device), set in
place: torch 2.1 holds a tensor that a compiled frame reaches through a
module by reference, and would keep a new tensor's first level.
"""
from types import CodeType
from typing import List, Optional, Set

import torch
from torch import Tensor, nn

from ..eager_frames import eager_at_top_level, is_compiling
from ..wrapping import YOLORMixin, forward_owner, wrapped_type

# Attributes of dense heads holding their multi-level prior generator.
PRIOR_GENERATORS = ('prior_generator', 'approx_anchor_generator')


def head_num_levels(head: nn.Module) -> int:
    """How many pyramid levels a head applies its shared layers to: from
    its prior generator, else its ``num_levels`` or ``strides``; 1 for
    heads without levels (RoI and DETR-family heads)."""
    for name in PRIOR_GENERATORS:
        levels = getattr(getattr(head, name, None), 'num_levels', None)
        if isinstance(levels, int):
            return levels
    levels = getattr(head, 'num_levels', None)
    if isinstance(levels, int):
        return levels
    strides = getattr(head, 'strides', None)
    return len(strides) if isinstance(strides, (list, tuple)) else 1


def starts_levels_in_forward_single(head_type: type) -> bool:
    """Whether the ``forward`` that ``head_type`` runs calls
    ``self.forward_single`` (mmdet's ``multi_apply`` pattern), read from the
    names its code uses (comprehensions and lambdas included: their code is
    nested in the function's)."""
    code = getattr(forward_owner(head_type).forward, '__code__', None)
    return code is not None and 'forward_single' in _names_used(code)


def _names_used(code: CodeType) -> Set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _names_used(constant)
    return names


def ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ..., ``11th``, ``21st``."""
    suffix = 'th' if 10 <= number % 100 <= 20 else {
        1: 'st',
        2: 'nd',
        3: 'rd'
    }.get(number % 10, 'th')
    return f'{number}{suffix}'


# What each level-mismatch error suggests.
SHARE_HINT = ('Build the head with share_across_levels=True to use one '
              'implicit pair for every call.')


class LevelCursor:
    """The pyramid level a level owner is predicting (see module docstring).

    Args:
        num_levels (int): Levels the owner runs in one forward.
        head_type (str): The owner's mmdet type, for messages.
        per_level_entry (bool): Whether the owner starts each level with a
            ``forward_single`` call; otherwise levels are the order of each
            layer's calls.

    Attributes:
        sites (list[str]): ``<HeadType>.<layer path>`` of the layers that
            read this cursor; a layer's slot is its index here.
        level_index (Tensor, optional): With ``per_level_entry``, the level
            started, as a tensor of shape ``(1, )``; None before the first.
    """

    def __init__(self, num_levels: int, head_type: str,
                 per_level_entry: bool) -> None:
        self.num_levels = num_levels
        self.head_type = head_type
        self.per_level_entry = per_level_entry
        self.sites: List[str] = []
        self.active = False
        self.levels_started = 0
        self.level_index: Optional[Tensor] = None
        self.calls: List[int] = []

    def add_layer(self, site: str) -> int:
        """Register a shared layer reading this cursor; return its slot."""
        self.sites.append(site)
        return len(self.sites) - 1

    @eager_at_top_level
    def begin(self) -> None:
        """A forward of the owner starts: no level has run yet."""
        self.active = True
        self.levels_started = 0
        self.level_index = None
        self.calls = [0] * len(self.sites)

    @eager_at_top_level
    def start_level(self, level_index: Tensor) -> None:
        """The owner starts its next level (its ``forward_single``);
        ``level_index`` is its ``yolor_level_index`` buffer."""
        if not self.active:
            return  # forward_single called on its own: levels_of() says so
        if self.levels_started == self.num_levels:
            raise RuntimeError(
                f'{self.head_type} has implicits for {self.num_levels} '
                f'pyramid levels on {self._layers()} but started a '
                f'{ordinal(self.num_levels + 1)} level in one forward. '
                f'{SHARE_HINT}')
        self.levels_started += 1
        if is_compiling():
            # a constant of the graph: a buffer written there would be a
            # mutated input (no CUDA graphs)
            self.level_index = torch.full_like(level_index,
                                               self.levels_started - 1)
        else:
            self.level_index = level_index.fill_(self.levels_started - 1)

    @eager_at_top_level
    def level_of(self, slot: int) -> int:
        """The level of the current call of the layer in ``slot``."""
        self._check_active(slot)
        if self.per_level_entry:
            level = self.levels_started - 1
            if level < 0:
                self._raise_before_first_level(slot)
            return level
        level = self.calls[slot]
        if level == self.num_levels:
            raise RuntimeError(
                f'{self.sites[slot]} has implicits for {self.num_levels} '
                f'pyramid levels but was called a {ordinal(level + 1)} '
                f'time in one forward of {self.head_type}. {SHARE_HINT}')
        self.calls[slot] = level + 1
        return level

    @eager_at_top_level
    def level_index_of(self, slot: int) -> Tensor:
        """The level of the current call of the layer in ``slot`` as a
        tensor of shape ``(1, )``, read without the level's int (see module
        docstring); for a cursor with ``per_level_entry`` only. A copy:
        autograd may save it while the buffer moves on to the next level."""
        self._check_active(slot)
        if self.level_index is None:
            self._raise_before_first_level(slot)
        return self.level_index.clone()

    @eager_at_top_level
    def _check_active(self, slot: int) -> None:
        if not self.active:
            raise RuntimeError(
                f'{self.sites[slot]} has implicits for {self.num_levels} '
                f'pyramid levels and takes its level from a forward of '
                f'{self.head_type}, but was called outside one. Call the '
                f'head (head(feats)), or: {SHARE_HINT}')

    def _raise_before_first_level(self, slot: int) -> None:
        raise RuntimeError(
            f'{self.sites[slot]} ran before the first forward_single of '
            f'{self.head_type}, which starts its levels. {SHARE_HINT}')

    @eager_at_top_level
    def end(self, check: bool) -> None:
        """The owner's forward ended; with ``check`` (it returned), raise if
        it covered neither every level nor none."""
        self.active = False
        if not check:
            return
        if self.per_level_entry:
            ran = self.levels_started
            # the message only where it is raised: its generator would be a
            # frame of its own at every forward (eager_at_top_level)
            what = None
        else:
            ran, what = 0, ''
            for site, calls in zip(self.sites, self.calls):
                if calls not in (0, self.num_levels):
                    ran, what = calls, f'{site} ran {calls} times'
                    break
        if ran not in (0, self.num_levels):
            if what is None:
                what = f'{self._layers()} ran {ran} levels'
            raise RuntimeError(
                f'{self.head_type} has implicits for {self.num_levels} '
                f'pyramid levels, but in this forward {what}, so its '
                f'levels and implicits do not match. {SHARE_HINT}')

    def _layers(self) -> str:
        """The layers' paths below the head (``stages.1.rpn_cls``)."""
        return ', '.join(site.split('.', 1)[-1] for site in self.sites)


class LevelOwnerMixin(YOLORMixin):
    """Mixed into a head that applies refined layers to its pyramid levels:
    its forward begins and checks its :class:`LevelCursor`
    (``yolor_levels``, None while it owns no shared layer), and its
    ``forward_single`` starts a level. With the cursor it gets the
    non-persistent buffer ``yolor_level_index``, the cursor's level as a
    tensor of shape ``(1, )`` where ``forward_single`` runs eagerly."""

    yolor_levels: Optional[LevelCursor] = None

    def level_cursor(self) -> LevelCursor:
        """This head's cursor, created at the first shared layer."""
        if self.yolor_levels is None:
            head_type = wrapped_type(self)
            num_levels = head_num_levels(self)
            self.yolor_levels = LevelCursor(
                num_levels, head_type.__name__,
                starts_levels_in_forward_single(head_type))
            self.register_buffer(
                'yolor_level_index',
                torch.zeros(1, dtype=torch.long),
                persistent=False)
        return self.yolor_levels

    @eager_at_top_level
    def forward(self, *args, **kwargs):
        cursor = self.yolor_levels
        if cursor is None:
            return self.yolor_wrapped_forward(self, *args, **kwargs)
        cursor.begin()
        returned = False
        try:
            outputs = self.yolor_wrapped_forward(self, *args, **kwargs)
            returned = True
        finally:
            cursor.end(check=returned)
        return outputs

    @eager_at_top_level
    def forward_single(self, *args, **kwargs):
        if self.yolor_levels is not None:
            self.yolor_levels.start_level(self.yolor_level_index)
        return self.yolor_wrapped_forward_single(self, *args, **kwargs)


class LevelSequentialMixin(YOLORMixin):
    """Mixed into an ``nn.Sequential`` of a level owner that holds a shared
    refined layer (TOOD's ``cls_prob_module``): runs its layers in order, as
    ``Sequential.forward`` does, in code dynamo runs eagerly where it meets
    it as a frame of its own (see module docstring)."""

    @eager_at_top_level
    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input
