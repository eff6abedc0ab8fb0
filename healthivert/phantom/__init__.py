"""Synthetic thoracolumbar spine CT phantoms with known fractures and heights."""

from healthivert.phantom.fracture import MORPHOLOGIES, Fracture
from healthivert.phantom.study import (
    FractureSpec,
    PhantomConfig,
    PhantomStudy,
    make_phantom,
    write_cohort,
    write_phantom,
)

__all__ = [
    "MORPHOLOGIES",
    "Fracture",
    "FractureSpec",
    "PhantomConfig",
    "PhantomStudy",
    "make_phantom",
    "write_cohort",
    "write_phantom",
]
