"""A reviewer's correction of a study's level names by a shift ("labels are one level low: +1").

The algorithm's labels stay as result.json has them (and key the reviews); a shift only changes
the names shown and exported. Shifting moves every vertebra the same number of levels along
C1 ... L5 (L6), as ``healthivert run --first-label`` does.
"""

from __future__ import annotations

from healthivert.labels import T13, VERSE_NAMES

MAX_SHIFT = 3
#: the labels a shift may move along (C1 ... L6), in VerSe numbering
_SHIFTABLE = range(1, 26)


def check_shift(labels: list[int], shift: int) -> None:
    """Refuse a shift that no spine allows.

    Raises:
        ValueError: ``shift`` beyond +-``MAX_SHIFT``, a T13 among ``labels`` (relabel by hand), or a
            vertebra shifted past C1 or L6.
    """
    if not isinstance(shift, int) or abs(shift) > MAX_SHIFT:
        raise ValueError(f"a shift is a whole number of levels from -{MAX_SHIFT} to +{MAX_SHIFT}; got {shift!r}")
    present = sorted(int(x) for x in labels)
    if shift and T13 in present:
        raise ValueError("the study has a T13: a shift cannot move it; re-run with --first-label instead")
    moved = [x + shift for x in present if x != T13]
    if moved and (moved[0] < _SHIFTABLE[0] or moved[-1] > _SHIFTABLE[-1]):
        raise ValueError(f"a shift of {shift:+d} moves {VERSE_NAMES[present[0 if moved[0] < 1 else -1]]} "
                         "past C1 or L6")


def shifted_label(label: int, shift: int) -> int:
    """The VerSe label ``label`` becomes under ``shift`` (T13 and the sacrum never move)."""
    return int(label) + shift if int(label) in _SHIFTABLE else int(label)


def shifted_names(labels: list[int], shift: int) -> dict[int, str]:
    """Algorithm label -> the name shown after ``shift`` (see :func:`check_shift`)."""
    check_shift(labels, shift)
    return {int(x): VERSE_NAMES[shifted_label(x, shift)] for x in labels}


def shift_text(shift: int) -> str:
    """``"+1 level"``, ``"-2 levels"``, ``"none"``."""
    if not shift:
        return "none"
    return f"{shift:+d} level{'s' if abs(shift) != 1 else ''}"
