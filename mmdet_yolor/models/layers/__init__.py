# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .implicit import (IMPLICIT_FORMS, IMPLICIT_OPERATORS, BaseImplicit,
                       ImplicitA, ImplicitC, ImplicitM, build_implicit,
                       is_implicit_parameter, reset_implicits)

__all__ = [
    'BaseImplicit', 'ImplicitA', 'ImplicitM', 'ImplicitC', 'build_implicit',
    'IMPLICIT_FORMS', 'IMPLICIT_OPERATORS', 'reset_implicits',
    'is_implicit_parameter'
]
