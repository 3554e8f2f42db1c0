"""Online drift detectors (river) per partition, and the vote that combines partitions."""

from stream_jobs.detectors.chunker import ChunkedZ
from stream_jobs.detectors.column import ColumnDetectors
from stream_jobs.detectors.firing import Firing
from stream_jobs.detectors.vote import VoteCombiner

__all__ = ["ChunkedZ", "ColumnDetectors", "Firing", "VoteCombiner"]
