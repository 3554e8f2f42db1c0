import asyncio
import logging
import time

from stream_jobs.loop_watch import install


async def _blocker() -> None:
    await asyncio.sleep(0)
    time.sleep(0.15)  # holds the loop: a synchronous step


async def _quick() -> None:
    await asyncio.sleep(0)


def test_a_step_over_the_threshold_is_logged_with_its_task(caplog):
    uninstall = install(0.1)
    try:
        with caplog.at_level(logging.WARNING, logger="modelwatch.loop_watch"):
            asyncio.run(_quick())
            assert not caplog.records
            asyncio.run(_blocker())
    finally:
        uninstall()
    (rec,) = [r for r in caplog.records if "_blocker" in r.getMessage()]
    assert rec.getMessage().startswith("event loop held ")


def test_uninstall_stops_watching(caplog):
    install(0.1)()
    with caplog.at_level(logging.WARNING, logger="modelwatch.loop_watch"):
        asyncio.run(_blocker())
    assert not caplog.records


def test_loops_of_other_threads_are_not_watched(caplog):
    import threading

    uninstall = install(0.1)
    try:
        with caplog.at_level(logging.WARNING, logger="modelwatch.loop_watch"):
            t = threading.Thread(target=lambda: asyncio.run(_blocker()))
            t.start()
            t.join()
            assert not caplog.records  # e.g. Faust's consumer thread: not our heartbeat
            asyncio.run(_blocker())
    finally:
        uninstall()
    assert any("_blocker" in r.getMessage() for r in caplog.records)


def test_a_long_step_names_where_it_was(caplog):
    uninstall = install(0.05)
    try:
        with caplog.at_level(logging.WARNING, logger="modelwatch.loop_watch"):
            asyncio.run(_blocker())
    finally:
        uninstall()
    (rec,) = [r for r in caplog.records if "_blocker" in r.getMessage()]
    assert "test_loop_watch.py" in rec.getMessage().split("; at ", 1)[1]
