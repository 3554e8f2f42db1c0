"""CLI command modules: each exposes ``register(app: typer.Typer) -> None``.

``modelwatch.cli`` imports every module in this package, so areas add commands without
editing a shared file.
"""
