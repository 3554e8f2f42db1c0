"""``modelwatch reference build|pin|show``: reference profiles from training data or a pinned
production window, written to a file and/or published to the compacted references topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def load_table(path: Path, columns: list[str] | None = None) -> dict[str, Any]:
    """CSV or Parquet into ``{column: float64 array (NaN = missing) | list[str | None]}``,
    typed by :mod:`schemas.column_types` (booleans are categorical ``"true"``/``"false"``),
    the rules replay and the SDK apply to traffic."""
    from schemas.column_types import feature_values

    if path.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=columns)
    else:
        import pyarrow.csv as pacsv

        table = pacsv.read_csv(path)
        if columns:
            table = table.select(columns)
    return {name: feature_values(table.column(name)) for name in table.column_names}


def build_from_table(
    model: str,
    version: str,
    data: dict[str, Any],
    features: list[str] | None,
    label_col: str | None,
    prediction_col: str | None,
    source: str,
    task: str = "auto",
    positive_class: str = "1",
    negative_class: str = "0",
    threshold: float = 0.5,
) -> dict[str, Any]:
    """The reference profile of a loaded table; ``task="auto"`` is decided from the label
    column (:func:`schemas.column_types.infer_task`), and a classification's label and
    class predictions are profiled as class names, as replay publishes them."""
    import numpy as np

    from schemas import column_types as ct
    from stream_jobs.performance.reference import reference_performance
    from stream_jobs.reference.profile import build_profile

    missing = [c for c in (features or []) + [label_col, prediction_col] if c and c not in data]
    if missing:
        raise typer.BadParameter(f"columns not in the data: {missing}; have {sorted(data)}")
    try:
        ct.check_task(task)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    names = features or [c for c in data if c not in (label_col, prediction_col)]
    numeric = {n: data[n] for n in names if isinstance(data[n], np.ndarray)}
    categorical = {n: data[n] for n in names if not isinstance(data[n], np.ndarray)}
    label = data[label_col] if label_col else None
    prediction = data[prediction_col] if prediction_col else None
    if task == "auto" and label is not None:
        task = ct.infer_task(label)
    if task == ct.REGRESSION and label is not None and not isinstance(label, np.ndarray):
        raise typer.BadParameter(f"label column {label_col!r} is not numeric: not a regression")
    if task == ct.CLASSIFICATION:
        label = None if label is None else ct.class_names(label)
        if prediction is not None and not (
            isinstance(prediction, np.ndarray) and ct.is_score(prediction)
        ):
            prediction = ct.class_names(prediction)
    performance = None
    if label is not None and prediction is not None:
        try:
            performance = reference_performance(
                label,
                prediction,
                task=task,
                positive=positive_class,
                negative=negative_class,
                threshold=threshold,
            )
        except ValueError as e:
            raise typer.BadParameter(f"reference performance: {e}") from e
    return build_profile(
        model,
        version,
        numeric=numeric,
        categorical=categorical,
        prediction=prediction,
        label=label,
        source=source,
        performance=performance,
    )


def publish_profile(record: dict[str, Any], bootstrap: str | None = None) -> str:
    """Publish to the references topic of the settings; returns the topic."""
    from modelwatch.baseline import publish_reference
    from modelwatch.settings import load_settings

    settings = load_settings(bootstrap=bootstrap) if bootstrap else load_settings()
    return publish_reference(settings.kafka, record, settings.topics)


def emit_profile(
    record: dict[str, Any], out: Path | None, publish: bool, bootstrap: str | None
) -> None:
    """Write the profile to ``out`` (if given) and publish it (if asked), saying so."""
    from stream_jobs.reference.io import write_profile

    if out:
        write_profile(out, record)
        console.print(f"wrote {out}")
    if publish:
        console.print(f"published to {publish_profile(record, bootstrap)}")


def find_window(
    model: str, start_ms: int, version: str | None, bootstrap: str | None, timeout_s: float
) -> dict[str, Any] | None:
    """Read the window-stats topic to its end; the last matching window wins."""
    from modelwatch.settings import load_settings
    from schemas.codec import DecodeError, default_codec
    from schemas.kafka import read_to_end

    settings = load_settings(bootstrap=bootstrap) if bootstrap else load_settings()
    codec = default_codec()
    found = None
    for msg in read_to_end(settings.kafka, settings.topics.window_stats, timeout_s=timeout_s):
        try:
            rec = codec.decode(msg.value, expect=("WindowStats",)).record
        except DecodeError:
            continue
        if (
            rec["model"] == model
            and rec["window_start_ms"] == start_ms
            and (version is None or rec["model_version"] == version)
        ):
            found = rec
    return found


def register(app: typer.Typer) -> None:
    ref_app = typer.Typer(help="Reference profiles: build from training data, pin a window.")
    app.add_typer(ref_app, name="reference")

    @ref_app.command("build")
    def build(
        model: str = typer.Option(..., help="model name"),
        version: str = typer.Option("", "--model-version", help="('' = every version)"),
        data: Path = typer.Option(..., exists=True, dir_okay=False, help="train.csv|.parquet"),
        features: list[str] = typer.Option(
            None, "--features", help="feature columns (repeat or comma-separate; default all)"
        ),
        label_col: str = typer.Option(None, help="label column"),
        prediction_col: str = typer.Option(None, help="prediction (score or class) column"),
        task: str = typer.Option(
            "auto", help="auto|classification|regression (with --label-col and --prediction-col)"
        ),
        positive_class: str = typer.Option("1", help="positive class of a binary model"),
        negative_class: str = typer.Option("0", help="negative class of a binary model"),
        threshold: float = typer.Option(
            0.5, help="a score prediction column is this positive-class decision threshold"
        ),
        out: Path = typer.Option(None, help="also write the profile here (.avro or .json)"),
        publish: bool = typer.Option(
            True, "--publish/--no-publish", help="to the references topic"
        ),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help="Kafka servers"),
    ) -> None:
        """Profile training data as the model's reference."""
        names = [f for item in features or [] for f in item.split(",") if f] or None
        cols = None if names is None else [*names, *(c for c in (label_col, prediction_col) if c)]
        table = load_table(data, cols)
        record = build_from_table(
            model,
            version,
            table,
            names,
            label_col,
            prediction_col,
            str(data),
            task=task,
            positive_class=positive_class,
            negative_class=negative_class,
            threshold=threshold,
        )
        n = max((c["count"] for c in record["features"]), default=0)
        console.print(f"profiled {len(record['features'])} features over {n} rows of {data}")
        if record["performance"]:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(record["performance"].items()))
            console.print(f"reference performance: {shown}")
        emit_profile(record, out, publish, bootstrap)

    @ref_app.command("pin")
    def pin(
        model: str = typer.Option(..., help="model name"),
        window: int = typer.Option(..., help="window start, epoch milliseconds"),
        version: str = typer.Option(None, "--model-version", help="only this version's window"),
        out: Path = typer.Option(None, help="also write the profile here (.avro or .json)"),
        publish: bool = typer.Option(
            True, "--publish/--no-publish", help="to the references topic"
        ),
        timeout: float = typer.Option(30.0, help="seconds to read the window-stats topic"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help="Kafka servers"),
    ) -> None:
        """Pin a production window (from the window-stats topic) as the reference."""
        from stream_jobs.reference.profile import profile_from_window

        stats = find_window(model, window, version, bootstrap, timeout)
        if stats is None:
            console.print(f"[red]no window of {model} starting at {window} in window-stats[/]")
            raise typer.Exit(1)
        record = profile_from_window(stats)
        console.print(f"pinned window {window} of {model} ({stats['count']} events)")
        emit_profile(record, out, publish, bootstrap)

    @ref_app.command("show")
    def show(path: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
        """Summarise a profile file."""
        from rich.table import Table

        from stream_jobs.reference.io import read_profile

        rec = read_profile(path)
        table = Table(title=f"{rec['model']} {rec['model_version'] or '(any version)'}")
        for c in ("column", "kind", "count", "missing", "mean", "std", "min", "max", "unique"):
            table.add_column(c)
        extra = [c for c in (rec.get("prediction"), rec.get("label")) if c]
        for c in rec["features"] + extra:
            table.add_row(
                *(str(c[k]) if not isinstance(c[k], float) else f"{c[k]:.4g}"
                  for k in ("name", "kind", "count", "missing")),
                *("" if c[k] is None else f"{c[k]:.4g}" for k in ("mean", "std", "min", "max")),
                str(c["unique"]),
            )  # fmt: skip
        Console().print(table)

    @ref_app.command("simulate")
    def simulate_reference(
        scenario: str = typer.Option("default", help="scenario file or shipped name"),
        model: str = typer.Option(None, help="defaults to the scenario's model"),
        events: int = typer.Option(50_000, help="baseline events to profile"),
        out: Path = typer.Option(None, help="also write the profile to this file"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP"),
    ) -> None:
        """Profile the simulated model's normal traffic and publish it as the reference."""
        from modelwatch.baseline import simulated_reference
        from producers.simulator.scenario import Scenario

        plan = Scenario.load(scenario)
        rec = simulated_reference(plan, model or plan.model or "churn-classifier", n_events=events)
        console.print(f"profiled {len(rec['features'])} features of {rec['model']}")
        emit_profile(rec, out, True, bootstrap)
