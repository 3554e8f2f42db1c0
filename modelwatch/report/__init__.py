"""The HTML drift report: pure rendering (:mod:`.render`, :mod:`.svg`, :mod:`.data`) and
a thin Kafka reader (:mod:`.source`)."""
