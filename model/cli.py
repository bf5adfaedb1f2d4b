"""The `p3m train` and `p3m prepare-ppt` commands, as plain click commands for the `p3m` group to attach.

User errors are raised as P3MError; the group (`stream.cli._Group`) prints them as one line.
"""
from __future__ import annotations

import logging
from typing import Any

import click
import yaml

from model.errors import P3MError

log = logging.getLogger(__name__)


def _parse_sets(sets: tuple[str, ...]) -> dict[str, Any]:
    """`FIELD=VALUE` pairs, each value read as YAML (so lists, numbers and null work)."""
    parsed: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise P3MError(f"--set {item!r}: expected FIELD=VALUE", "e.g. --set crop_sizes=[256,384] --set lr=1.0e-4")
        try:
            parsed[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise P3MError(f"--set {item!r}: the value is not valid YAML", "quote text, write lists as [a,b]") from None
    return parsed


@click.command("train")
@click.option("--config", "-c", "config_file", default="train_p3m10k", show_default=True,
              help="YAML config: a file, or a preset name in configs/.")
@click.option("--train-dir", default=None, help="P3M-10k root or train/ folder, or a folder with images/ + alphas/.")
@click.option("--val-dir", default=None, help="Held-out set for validation (e.g. P3M-500-P).")
@click.option("--out-dir", "-o", default=None, help="Folder for checkpoints, log.jsonl and config.yaml.")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None, help="Adam learning rate (official: 1e-5).")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--amp/--no-amp", default=None, help="Mixed precision on CUDA (default on).")
@click.option("--pretrained", default=None, help="ImageNet ResNet-34 state_dict for the encoder.")
@click.option("--init-weights", default=None, help="Start from a P3M-Net checkpoint (fine-tuning).")
@click.option("--resume", default=None, help="A checkpoint written by p3m train, or its folder (the newest).")
@click.option("--seed", type=int, default=None)
@click.option("--steps-per-epoch", type=int, default=None, help="Cap on batches per epoch (quick runs).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Override any config field, e.g. --set out_size=256 --set crop_sizes=[256,384].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; one line per epoch.")
def train_command(config_file: str, sets: tuple[str, ...], quiet: bool, **options: Any):
    """Train P3M-Net R34 (the official recipe: Adam 1e-5, batch 8, 512² crops, 150 epochs).

    Writes OUT_DIR/ckpt_epoch<N>.pth in the official format (load it with --weights anywhere, or with
    the official code) and ckpt_epoch<N>.train.pth beside it, which --resume needs.
    """
    from model.training.config import load_train_config
    from model.training.trainer import train

    config = load_train_config(config_file, **options)  # flags left out (None) keep the file's value
    if sets:
        config = config.replace(**_parse_sets(sets))  # --set FIELD=null does set None
    result = train(config, progress=not quiet, echo=lambda line: click.echo(line, err=True))
    click.echo(result.summary(), err=True)
    return result


@click.command("prepare-ppt")
@click.option("--in", "in_dir", required=True, type=click.Path(),
              help="Training set: images + alphas (P3M layout, or images/ + alphas/).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="New folder: blurred_image/, mask/, facemask/ (the P3M-10k train layout).")
@click.option("--style", type=click.Choice(["blur", "pixelate"]), default="blur", show_default=True)
@click.option("--padding", type=float, default=0.25, show_default=True,
              help="Grow each face box by this fraction of its size on every side.")
@click.option("--min-confidence", type=float, default=0.5, show_default=True, help="Face detector threshold.")
@click.option("--tile-levels", type=int, default=1, show_default=True,
              help="Also search tiles of 1/2 (1), and 1/4 (2) of the short side, for small faces.")
@click.option("--format", "image_format", type=click.Choice(["keep", "png", "jpg"]), default="keep",
              show_default=True, help="Image file type written (keep: the input's).")
@click.option("--quiet", "-q", is_flag=True)
def prepare_ppt_command(in_dir: str, out_dir: str, style: str, padding: float, min_confidence: float,
                        tile_levels: int, image_format: str, quiet: bool):
    """Face-obfuscate a training set for privacy-preserving training (PPT).

    Finds faces with the bundled MediaPipe detector, blurs or pixelates them, writes the face masks and
    copies the alphas unchanged. Images where no face was found are listed in OUT/no_face.txt.
    """
    from tqdm import tqdm

    from model.training.ppt import prepare_ppt

    bar = None

    def progress(i: int, total: int, stem: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="prepare-ppt", disable=quiet, dynamic_ncols=True)
        bar.update(i - bar.n)  # called before image i: i are done

    try:
        summary = prepare_ppt(in_dir, out_dir, style, padding, min_confidence, tile_levels,  # type: ignore[arg-type]
                              image_format, progress=progress)
    finally:
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
    click.echo(summary.line(), err=True)
    return summary
