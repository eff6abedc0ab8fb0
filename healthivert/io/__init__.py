"""Reading and writing CTs, vertebra masks, centroids, VerSe trees and manifests."""

from healthivert.io.centroids import centroids_from_mask, read_centroids, write_centroids
from healthivert.io.images import check_overlap, load_ct, load_mask, read_sitk, write_volume
from healthivert.io.manifest import build_verse2019_manifest, join_manifest_to_tree, read_manifest
from healthivert.io.verse_tree import VerseStudy, read_verse_tree
from healthivert.io.volume import Volume

__all__ = [
    "Volume",
    "VerseStudy",
    "build_verse2019_manifest",
    "centroids_from_mask",
    "check_overlap",
    "join_manifest_to_tree",
    "load_ct",
    "load_mask",
    "read_centroids",
    "read_manifest",
    "read_sitk",
    "read_verse_tree",
    "write_centroids",
    "write_volume",
]
