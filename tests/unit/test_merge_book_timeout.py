"""The merge book's timeout is for partitions that are gone, not for ones that are behind.

A window some partition has passed becomes final ``wait_s`` of clock time later without the
partitions that have not reported it — unless one of those is still moving (its progress
advanced within ``wait_s``): a partition read by a busy worker, or catching up a backlog,
lags the others by more than ``wait_s`` without being gone, and cutting it out made a
window's contents depend on the machine's load."""

from __future__ import annotations

from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialRecord

W = 60_000  # window 0 is [W, 2W): a partition at progress W is behind it, at 2W past it
END = 2 * W


def rec(partition: int, progress: int, payload: bytes = b"x") -> PartialRecord:
    return PartialRecord("m", "1", "drift", W, END, partition, 2, 0, payload, progress)


def marker(partition: int, progress: int) -> PartialRecord:
    return rec(partition, progress, b"")


def finals(book: MergeBook, now_s: float) -> list[tuple[int, list[int], bool]]:
    return [(k[3] // W - 1, [p.partition for p in ps], c) for k, ps, c in book.ready(now_s)]


def test_a_partition_that_keeps_moving_holds_the_window_until_it_passes() -> None:
    book = MergeBook(wait_s=30)
    book.add(rec(0, END))  # partition 0 closed window 0
    book.add(rec(1, -1))  # partition 1's partial of it, its step not finished
    book.add(marker(1, W))  # partition 1 is behind: it has reported, it moves
    assert finals(book, 0.0) == []
    for t in (20.0, 40.0):  # partition 1 moves every 20 s, still short of window 0's end
        book.add(marker(1, book.progress[("m", "drift")][1] + 1))
        assert finals(book, t) == []
    assert finals(book, 65.0) == []  # 25 s after its last move: still waited for
    book.add(marker(1, END))
    assert finals(book, 66.0) == [(0, [0, 1], True)]


def test_a_partition_that_stopped_moving_is_waited_for_wait_s_after_its_last_move() -> None:
    book = MergeBook(wait_s=30)
    book.add(marker(1, W))
    book.add(rec(0, END))
    assert finals(book, 0.0) == []
    book.add(marker(1, W + 1))  # partition 1 moves at 20 s, then stops
    assert finals(book, 20.0) == []
    assert finals(book, 45.0) == []  # 45 s after partition 0 passed, 25 s after the move
    assert finals(book, 51.0) == [(0, [0], False)]  # gone: final without it


def test_a_partition_never_heard_of_is_waited_for_wait_s_after_the_first_passed() -> None:
    book = MergeBook(wait_s=30)
    book.add(rec(0, END))
    assert finals(book, 5.0) == []
    assert finals(book, 34.0) == []
    assert finals(book, 35.0) == [(0, [0], False)]


def test_a_restored_book_counts_every_partition_as_moving_from_the_restore() -> None:
    book = MergeBook(wait_s=30)
    book.add(marker(1, W))
    book.add(rec(0, END))
    assert finals(book, 0.0) == []
    restored, _ = MergeBook.from_bytes(book.to_bytes(), now_s=100.0)
    assert finals(restored, 125.0) == []
    assert finals(restored, 131.0) == [(0, [0], False)]
