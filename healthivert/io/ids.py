"""Study ids and vertebra names that become file and folder names (results, exports)."""

from __future__ import annotations

import re

#: one file-name component: 1-128 letters, digits, '.', '_' or '-', not starting with a dot
#: (dot-names are the temporary ``.part`` folders of unfinished writes)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_safe_name(name: object) -> bool:
    """True for a string usable as one file-name component (``sub-01``, ``L1``)."""
    return isinstance(name, str) and bool(SAFE_NAME.fullmatch(name))
