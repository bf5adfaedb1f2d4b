"""The model's commands, `p3m image`, `eval`, `train`, `prepare-ppt` and `models` (model/zoo/commands.py), as
plain click commands for the `p3m` group (stream/cli/main.py) to attach. They import torch only when they run.

User errors are raised as P3MError; the group prints them as one line.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import click
import yaml

from model.errors import P3MError
from model.faces import DEFAULT_STYLE, PPT_STYLES
from model.imageio import IMAGE_EXTENSIONS
from model.settings import load_yaml_text
from model.zoo.commands import models_command

log = logging.getLogger(__name__)


def _parse_sets(sets: tuple[str, ...]) -> dict[str, Any]:
    """`FIELD=VALUE` pairs, each value read as YAML (so lists, numbers and null work)."""
    parsed: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise P3MError(f"--set {item!r}: expected FIELD=VALUE", "e.g. --set crop_sizes=[256,384] --set lr=1.0e-4")
        try:
            parsed[key.strip().replace("-", "_")] = load_yaml_text(value)     # no aliases: no "billion laughs"
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
@click.option("--arch", type=click.Choice(["r34", "vitae-s", "swin-t"]), default=None,
              help="P3M-Net variant to train (default r34).")
@click.option("--pretrained", default=None,
              help="ImageNet backbone of that variant for the encoder (ResNet-34; ViTAE-S: its state_dict_ema).")
@click.option("--init-weights", default=None, help="Start from a P3M-Net checkpoint (fine-tuning).")
@click.option("--resume", default=None, help="A checkpoint written by p3m train, or its folder (the newest).")
@click.option("--seed", type=int, default=None)
@click.option("--steps-per-epoch", type=int, default=None, help="Cap on batches per epoch (quick runs).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Override any config field, e.g. --set out_size=256 --set crop_sizes=[256,384].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; one line per epoch.")
def train_command(config_file: str, sets: tuple[str, ...], quiet: bool, **options: Any):
    """Train P3M-Net, any variant (--arch; the official recipe: Adam 1e-5, batch 8, 512² crops, 150 epochs).

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
@click.option("--style", type=click.Choice(PPT_STYLES), default=DEFAULT_STYLE, show_default=True)
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


def _collect_images(inputs: tuple[str, ...]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise P3MError(f"no images in folder {p}",
                               f"expected files ending in {', '.join(sorted(IMAGE_EXTENSIONS))}")
            paths += found
        elif p.is_file():
            paths.append(p)
        else:
            raise P3MError(f"input not found: {p}", "check the path")
    return paths


@click.command("image")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--weights", "-w", default=None, type=click.Path(dir_okay=False),
              help="P3M-Net checkpoint (official .pth, or .safetensors) of any variant: R34, ViTAE-S or Swin-T. "
                   "Without it: the bundled model.")
@click.option("--strategy", type=click.Choice(["resize", "hybrid"]), default="hybrid", show_default=True,
              help="P3M-Net: resize, one pass at half size (the paper's test setting); hybrid, semantic at 1/2 + "
                   "detail at 1/1.")
@click.option("--refine/--no-refine", default=None,
              help="Closed-form matting at the matte's edges (default: on with the bundled model, off with P3M-Net).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--output", "-o", "outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for <stem>.png (the cut-out) and <stem>_alpha.png (the matte).")
def image_command(inputs: tuple[str, ...], weights: str | None, strategy: str, refine: bool | None, device: str,
                  outdir: str) -> None:
    """Matte portrait images (files or folders) with the bundled model, or P3M-Net with --weights (any variant:
    R34, ViTAE-S or Swin-T, told by the weights; Swin-T runs an image under 512 px a side once, upscaled, as the
    official code does).

    Writes OUTDIR/<stem>.png (the cut-out: straight alpha, the person's own colours at soft edges) and
    OUTDIR/<stem>_alpha.png (8-bit matte, trunc(255*alpha) as the official code saves).
    """
    import time

    from model.foreground import estimate_foreground
    from model.imageio import read_rgb, write_alpha_png, write_rgba_png
    from model.refine import refine_alpha

    paths = _collect_images(inputs)
    out = Path(outdir)
    _check_image_outputs(paths, out)
    refine = weights is None if refine is None else refine
    with contextlib.ExitStack() as stack:
        matte = _image_matter(weights, strategy, device, stack)
        out.mkdir(parents=True, exist_ok=True)
        for path in paths:
            rgb = read_rgb(path)
            alpha = matte(rgb)
            took = ""
            if refine:
                start = time.perf_counter()
                alpha = refine_alpha(rgb, alpha)
                took = f" (refined in {time.perf_counter() - start:.1f} s)"
            write_alpha_png(out / f"{path.stem}_alpha.png", alpha)
            write_rgba_png(out / f"{path.stem}.png", estimate_foreground(rgb, alpha), alpha)
            click.echo(f"{path} -> {out / (path.stem + '.png')}{took}")


def _check_image_outputs(paths: list[Path], out: Path) -> None:
    """`p3m image` names its outputs by the inputs' stems: refuse two inputs of one stem, and an output that
    would be one of the inputs (`p3m image photos/ -o photos/` with PNG photos)."""
    inputs = {path.resolve() for path in paths}
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise P3MError(f"{stems[path.stem]} and {path} would both be written as {path.stem}.png",
                           "rename one of them, or cut them out into different folders")
        stems[path.stem] = path
        for name in (f"{path.stem}.png", f"{path.stem}_alpha.png"):
            if (out / name).resolve() in inputs:
                raise P3MError(f"-o {out}: {name} would write over the input {out / name}",
                               "choose another output folder")


def _image_matter(weights: str | None, strategy: str, device: str, stack: contextlib.ExitStack):
    """alpha = matte(rgb) for `p3m image`: P3M-Net with `weights` (the official image strategies), else the
    bundled model at the image's own size with its main subject kept (model/subjects.py); closed by `stack`."""
    if weights is None:
        from model.matters.registry import make_matter
        from model.subjects import select_subjects

        bundled = stack.enter_context(make_matter("mediapipe"))
        return lambda rgb: select_subjects(bundled(rgb))
    from model import infer_image, load_p3mnet
    from model.runtime.devices import resolve_device

    net = load_p3mnet(weights, device=resolve_device(device))
    return lambda rgb: infer_image(net, rgb, strategy=strategy, samples=True)


@click.command("eval")
@click.option("--pred", required=True, type=click.Path(),
              help="Folder of predicted mattes (PNG); with --weights, where the predictions are written.")
@click.option("--gt", type=click.Path(), default=None,
              help="Folder of ground-truth mattes, or a P3M-500-P/NP root (uses its mask/ and trimap/); for a "
                   "matte video, a ground-truth matte video (dtSSD, MESSDdt).")
@click.option("--video", type=click.Path(), default=None,
              help="--pred is a matte video (file or folder of frames) of this input video: its FLICKER (mean "
                   "|a_t - a_t-1| where the picture stands still).")
@click.option("--sheet", type=click.Path(dir_okay=False), default=None,
              help="Also draw a contact sheet PNG: image | matte | reference | error map, worst first.")
@click.option("--trimap", type=click.Path(), default=None, help="Folder of trimaps (0/128/255) for the -T metrics.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the results as JSON.")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), default=None,
              help="Run P3M-Net on the dataset's images first, then score (one go).")
@click.option("--images", type=click.Path(file_okay=False), default=None,
              help="With --weights or --sheet: the images folder (default: the dataset's blurred_image/ or "
                   "original_image/, or an images/ folder beside --gt).")
@click.option("--strategy", type=click.Choice(["resize", "hybrid"]), default="resize", show_default=True,
              help="With --weights: the inference strategy (the paper's test setting is resize).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def eval_command(pred: str, gt: str | None, video: str | None, sheet: str | None, trimap: str | None,
                 json_out: str | None, weights: str | None, images: str | None, strategy: str, device: str) -> None:
    """Score predicted mattes: SAD, MSE, MAD, Grad, Conn, and with trimaps SAD-T/MSE-T/MAD-T, SAD-FG/BG.

    With --weights, first mattes the dataset's images with P3M-Net into --pred, then scores them. A matte
    video (--pred a video file, or --video given) gets FLICKER, and with a --gt matte video MAD, MSE, dtSSD
    and MESSDdt.
    """
    from model.evaluation.evaluate import evaluate_folders, format_table, write_json

    if video is not None or _is_video(pred):
        _eval_video(pred, video, gt, sheet, json_out)
        return
    if gt is None:
        raise P3MError("--gt is needed to score a folder of mattes", "give --gt, the folder of ground-truth mattes")
    if weights is not None:
        from model.training.trainer import evaluate_weights

        report = evaluate_weights(weights, gt, strategy, pred, images=images, trimap_dir=trimap, device=device)
    else:
        report = evaluate_folders(pred, gt, trimap)
    click.echo(format_table(report))
    if json_out:
        write_json(report, json_out)
    if sheet:
        from model.evaluation.sheet import contact_sheet, find_image_dir

        image_dir = images or find_image_dir(gt)
        if image_dir is None:
            raise P3MError(f"no images beside {gt} for the contact sheet", "give --images, the evaluated images")
        contact_sheet(report, image_dir, sheet)
        click.echo(f"contact sheet: {sheet}")


def _is_video(path: str) -> bool:
    from model.evaluation.videos import is_video

    return is_video(path)


def _eval_video(pred: str, video: str | None, gt: str | None, sheet: str | None, json_out: str | None) -> None:
    """`p3m eval` of a matte video: flicker against its input, the GT metrics against a GT matte video."""
    import json

    from model.evaluation.videos import evaluate_video

    if sheet:
        raise P3MError("--sheet draws stills", "score a folder of mattes for a contact sheet, or drop --sheet")
    report = evaluate_video(pred, video, gt)
    click.echo(report.table())
    if json_out:
        Path(json_out).write_text(json.dumps(report.to_dict(), indent=2) + "\n")


MODEL_COMMANDS = (image_command, eval_command, train_command, prepare_ppt_command, models_command)
