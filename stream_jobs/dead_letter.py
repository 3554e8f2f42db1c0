"""The dead-letter builder lives with the contracts (:mod:`schemas.dead_letter`), shared by
the worker and the alerting processes; this name stays for the worker's imports."""

from schemas.dead_letter import MAX_REASON_CHARS, MAX_VALUE_BYTES, dead_letter_record

__all__ = ["MAX_REASON_CHARS", "MAX_VALUE_BYTES", "dead_letter_record"]
