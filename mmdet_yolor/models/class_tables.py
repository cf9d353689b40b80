# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Tables keyed by mmdet classes, read along the class hierarchy: an entry
for ``FPN`` serves its subclasses, an entry of a subclass overrides it."""
from typing import Dict, Optional, TypeVar

Entry = TypeVar('Entry')


def lookup_by_class(table: Dict[type, Entry], cls: type) -> Optional[Entry]:
    """The entry of ``cls`` in ``table`` or of its nearest base class listed
    there; None if neither is."""
    return next((table[base] for base in cls.__mro__ if base in table), None)
