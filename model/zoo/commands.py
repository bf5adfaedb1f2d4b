"""`p3m models`: list, download (checked before install), remove, path. A click group for the `p3m` command
(model/cli.py lists it); torch loads only when a download is checked."""
from __future__ import annotations

import tempfile
from pathlib import Path

import click

from model.errors import P3MError
from model.zoo import store
from model.zoo.catalog import CATALOG, ModelEntry, entry
from model.zoo.fetch import download, is_url


@click.group("models")
def models_command() -> None:
    """The models p3m-stream knows: list them, download and check one, remove one, print its path.

    \b
    p3m models list
    p3m models download p3mnet-vitae-s                  the authors' best P3M-Net (Google Drive)
    p3m models download p3mnet-r34 --from FILE_OR_URL   from a local file or a mirror
    Installs into $P3M_HOME/models, else the user's data directory; `--model auto` uses the best one there.
    """


@models_command.command("list")
def list_command() -> None:
    """Every model: name, kind, size, licence, source, and whether (and where) it is installed."""
    have = store.installed()
    rows = [("NAME", "KIND", "SIZE", "STATUS", "LICENCE", "SOURCE")]
    paths: list[str | None] = [None]
    for model in CATALOG:
        path = store.installed_path(model.name)
        record = have.get(model.name)
        status = "bundled" if model.bundled_file else "installed" if record else \
            "available" if model.downloadable else "--from only"
        size = _mb(record.bytes) if record else _mb(path.stat().st_size) if path else f"~{_mb(model.size_mb * 1e6)}"
        rows.append((model.name, model.kind, size, status, model.licence, model.source))
        paths.append(f"{path}" + (f"  sha256 {record.sha256}" if record else "") if path else None)
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row, path in zip(rows, paths):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[5])
        if path:
            click.echo(f"  -> {path}")
    click.echo(f"\nmodels folder: {store.models_dir()} (set P3M_HOME to move it)")
    legacy = store.legacy_weights_path()
    if legacy.is_file():
        click.echo(f"also found: P3M-Net weights at the old location {legacy} (used by --model auto when no "
                   "P3M-Net is installed)")


@models_command.command("download")
@click.argument("name")
@click.option("--from", "source", default=None, metavar="URL_OR_FILE",
              help="A mirror URL (http/https) or a local file (a .pth, .safetensors, or a .zip around one), instead "
                   "of the official Google Drive file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def download_command(name: str, source: str | None, quiet: bool) -> None:
    """Download model NAME (or take it --from a URL or file), check it, and install it.

    The check, before anything is installed: it loads with weights_only, has exactly the keys and shapes of
    that variant, float dtypes and finite values. Its sha256 is printed and recorded. An interrupted download
    resumes when the same command runs again.
    """
    model = entry(name)
    if model.bundled_file is not None:
        raise P3MError(f"{model.name} is bundled with p3m-stream: nothing to download", "`p3m models list` shows it")
    fetched = source is None or is_url(source)
    if fetched:
        file = download(model, source, quiet=quiet)
        origin = source or f"Google Drive {model.drive_id}"
    else:
        file, origin = Path(source).expanduser(), str(Path(source).expanduser().resolve())
    try:
        target, digest, summary = _check_and_install(model, file, origin)
    except P3MError as e:
        if fetched:
            file.unlink(missing_ok=True)             # refused: never resumed, never installed
        raise P3MError(f"{model.name} refused, nothing installed: {e.message}", e.hint) from None
    if fetched:
        file.unlink(missing_ok=True)
    click.echo(f"checked: {summary}")
    click.echo(f"sha256: {digest}")
    click.echo(f"installed {model.name} -> {target}")


def _check_and_install(model: ModelEntry, file: Path, origin: str) -> tuple[Path, str, str]:
    from model.zoo.verify import check, sha256, unpack

    store.models_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=store.models_dir()) as work:
        checkpoint = unpack(file, Path(work))
        summary = check(model, checkpoint)
        digest = sha256(checkpoint)
        target = store.install(model, checkpoint, digest, origin)
    return target, digest, summary


@models_command.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Delete installed model NAME."""
    path = store.remove(entry(name))
    click.echo(f"removed {name} ({path})")


@models_command.command("path")
@click.argument("name")
def path_command(name: str) -> None:
    """Print the file of model NAME (for --weights, or --pretrained); an error when it is not installed."""
    model = entry(name)
    path = store.installed_path(model.name)
    if path is None:
        how = f"p3m models download {name}" + ("" if model.downloadable else " --from FILE_OR_URL")
        raise P3MError(f"{name} is not installed", f"install it: {how}")
    click.echo(str(path))


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e6:.2f} MB"
