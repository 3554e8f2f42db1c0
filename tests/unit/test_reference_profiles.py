"""Reference profiles: contents, Avro/JSON round trips, pinning a window, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from modelwatch.commands.reference import register
from schemas.codec import default_codec
from stream_jobs.drift import DriftConfig, DriftEngine
from stream_jobs.drift.synthetic import SyntheticStream
from stream_jobs.reference import (
    ReferenceView,
    build_profile,
    decode_profile,
    encode_profile,
    profile_from_window,
    read_profile,
    write_profile,
)


def _profile() -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, 10_000)
    x[:100] = np.nan
    return build_profile(
        "churn", "7",
        numeric={"x": x, "k": rng.integers(0, 3, 10_000).astype(float)},
        categorical={"plan": ["a", "b", None, "a"] * 2_500},
        prediction=rng.random(10_000), label=["yes", "no"] * 5_000,
        source="train.csv", created_at_ms=123,
    )  # fmt: skip


def test_profile_contents() -> None:
    prof = _profile()
    x, k, plan = prof["features"]
    assert (x["count"], x["missing"], x["unique"]) == (10_000, 100, 9_900)
    assert x["mean"] == pytest.approx(3.0, abs=0.1) and x["std"] == pytest.approx(2.0, abs=0.1)
    assert x["categories"] == {} and x["kll_sketch"]
    assert k["unique"] == 3 and sum(k["categories"].values()) == 10_000
    assert plan["kind"] == "categorical" and plan["categories"] == {"a": 5_000, "b": 2_500}
    assert plan["missing"] == 2_500 and plan["unique"] == 2
    assert prof["prediction"]["kind"] == "numeric" and prof["label"]["kind"] == "categorical"


def test_avro_and_json_round_trip(tmp_path: Path) -> None:
    prof = _profile()
    assert decode_profile(encode_profile(prof)) == prof
    for ext in ("avro", "json"):
        assert read_profile(write_profile(tmp_path / f"p.{ext}", prof)) == prof
    view = ReferenceView(read_profile(tmp_path / "p.json"))
    assert view.columns["x"].sketch.n == 9_900


def test_pinned_window_becomes_a_working_reference() -> None:
    s = SyntheticStream(n_numeric=3, n_categorical=1, rate_per_s=100, seed=1)
    engine = DriftEngine(DriftConfig(window_ms=20_000))
    engine.observe(0, 0, s.batch(0, 2_000))  # no reference yet: stats only
    (first,) = engine.flush()
    pinned = profile_from_window(default_codec().decode(
        default_codec().encode("WindowStats", first.stats)).record)  # fmt: skip
    assert pinned["source"] == "window:0" and pinned["prediction"]["count"] == 2_000
    assert decode_profile(encode_profile(pinned)) == pinned
    engine.set_reference(pinned)
    engine.observe(0, 1, s.batch(40_000, 2_000))
    s.shift["f1"] = 1.0
    engine.observe(0, 2, s.batch(60_000, 2_000))
    same, moved = engine.flush()
    assert same.stats["drift"] and not any(v["drifted"] for v in same.stats["drift"])
    assert {v["column"] for v in moved.stats["drift"] if v["drifted"]} == {"f1"}


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep "reference" as a sub-command
        pass

    return app


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_build_writes_profile(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(2)
    n = 1_000
    table = pa.table({
        "age": rng.normal(40, 10, n), "plan": rng.choice(["a", "b"], n),
        "visits": rng.integers(0, 50, n), "score": rng.random(n),
        "churned": rng.choice(["y", "n"], n),
    })  # fmt: skip
    data = tmp_path / f"train.{fmt}"
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, data)
    else:
        pq.write_table(table, data)
    out = tmp_path / "ref.avro"
    res = CliRunner().invoke(_cli(), [
        "reference", "build", "--model", "churn", "--data", str(data), "--features", "age,plan",
        "--features", "visits", "--prediction-col", "score", "--label-col", "churned",
        "--out", str(out), "--no-publish",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    prof = read_profile(out)
    assert [(c["name"], c["kind"]) for c in prof["features"]] == [
        ("age", "numeric"), ("visits", "numeric"), ("plan", "categorical"),
    ]  # fmt: skip
    assert prof["prediction"]["kind"] == "numeric" and prof["label"]["categories"].keys() == {
        "y", "n",
    }  # fmt: skip
    assert prof["model_version"] == "" and prof["source"] == str(data)
    shown = CliRunner().invoke(_cli(), ["reference", "show", str(out)])
    assert shown.exit_code == 0 and "visits" in shown.output
    bad = CliRunner().invoke(_cli(), [
        "reference", "build", "--model", "m", "--data", str(data), "--features", "nope",
        "--no-publish",
    ])  # fmt: skip
    assert bad.exit_code != 0
