"""`recon eval`: score models or meshes on a ShapeNet-layout split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from recon_cli.cli.common import err_console, guarded, print_json
from recon_cli.cli.common import one_of as _one_of
from recon_cli.cli.options import threads_option, use_threads
from recon_cli.io.choices import FUSION_STRATEGIES

#: --model -> Reconstructor stages.
MODEL_STAGES: dict[str, str] = {"auto": "auto", "onet": "1", "doccnet": "1+2", "blend": "blend", "r2n2": "r2n2"}

HELP = """Score reconstructions on a split with the published protocol: IoU, Chamfer-L1/L2, normal
consistency, F-score@0.5/1/2%, accuracy and completeness; per-category means, class mean, object mean.

Modes: a model (--weights, reconstructs view 0 of each model); meshes made by any tool (--meshes DIR
holding <synset>/<model>.{off,obj,ply,stl}); the retrieval baseline (--baseline retrieval --weights W);
or --merge of shard results.

\b
Examples:
  recon eval --data data/ShapeNet --weights best.pt --out runs/eval
  recon eval --data data/ShapeNet --meshes other/meshes --out runs/other
  recon eval --data data/ShapeNet --weights best.pt --baseline retrieval
  recon eval --data data/ShapeNet --weights best.pt --out runs/eval --shard 0/4
  recon eval --merge --out runs/eval
"""


QUALITIES = ("draft", "standard", "high")
DEVICES = ("auto", "cpu", "cuda")
SPLITS = ("train", "val", "test")


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' -> (i, n); BadParameter (exit code 2) when malformed."""
    if text is None:
        return (0, 1)
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"expected I/N such as 0/4, got {text!r}", param_hint="--shard") from None
    if count < 1 or not 0 <= index < count:
        raise typer.BadParameter(f"need 0 <= I < N, got {text!r}", param_hint="--shard")
    return (index, count)


def _check_mode(*, merge: bool, meshes: Path | None, weights: Path | None, baseline: str | None,
                data: Path | None, shard: str | None, train_root: Path | None = None) -> str:
    """Which mode the options ask for; usage errors (exit 2) for impossible combinations."""
    if train_root is not None and baseline is None:
        raise typer.BadParameter("--train-root only applies to --baseline retrieval", param_hint="--train-root")
    if merge:
        if meshes or weights or baseline or shard:
            raise typer.BadParameter("--merge only combines results; drop --meshes/--weights/--baseline/--shard",
                                     param_hint="--merge")
        return "merge"
    if data is None:
        raise typer.BadParameter("the dataset root is required", param_hint="--data")
    if baseline is not None:
        if baseline != "retrieval":
            raise typer.BadParameter(f"unknown baseline {baseline!r}; valid: retrieval", param_hint="--baseline")
        if meshes is not None:
            raise typer.BadParameter("the retrieval baseline embeds images with a model's encoder (--weights, "
                                     "default the shipped weights), not meshes: drop --meshes", param_hint="--baseline")
        return "retrieval"
    if meshes is not None and weights is not None:
        raise typer.BadParameter("give either --meshes or --weights, not both", param_hint="--meshes")
    if meshes is not None:
        return "meshes"
    return "model"  # --weights, or the shipped weights like `recon reconstruct`


def register(app: typer.Typer) -> None:
    """Attach `recon eval` to the root app."""

    @app.command("eval", help=HELP, short_help="Score a model, meshes or the retrieval baseline on a dataset split.")
    @guarded
    def eval_command(
        sources: list[Path] = typer.Argument(None, help="With --merge: result folders (default: --out).",
                                             show_default=False),
        data: Path = typer.Option(None, "--data", help="Dataset root (ShapeNet layout).", show_default=False),
        split: str = typer.Option("test", "--split", callback=_one_of(SPLITS), metavar="train|val|test",
                                  help="Split to evaluate."),
        categories: str = typer.Option(None, "--categories", "-c",
                                       help="Comma-separated names or synset ids (default: all).",
                                       show_default=False),
        weights: Path = typer.Option(None, "--weights", "-w",
                                     help="Checkpoint (.pt) to evaluate (default: the shipped weights/doccnet.pt).",
                                     show_default=False),
        model: str = typer.Option("auto", "--model", callback=_one_of(MODEL_STAGES),
                                  metavar="auto|onet|doccnet|blend|r2n2",
                                  help="Which network of the checkpoint: auto (what it measured best, else all "
                                       "its stages), onet (stage 1 only), doccnet (stages 1+2), blend (stages 1+2, "
                                       "final field blended with stage 1's); r2n2 = the 3D-R2N2 voxel model (default "
                                       "weights/r2n2.pt; --views N feeds it N views; adds its 32^3 voxel IoU)."),
        meshes: Path = typer.Option(None, "--meshes",
                                    help="Score existing meshes <DIR>/<synset>/<model>.{off,obj,ply,stl}.",
                                    show_default=False),
        baseline: str = typer.Option(None, "--baseline", metavar="retrieval",
                                     help="'retrieval': nearest training shape by image embedding (the encoder of "
                                          "--weights).", show_default=False),
        train_root: Path = typer.Option(None, "--train-root",
                                        help="Retrieval baseline: take the training shapes from this dataset's train "
                                             "split (default: --data).", show_default=False),
        limit: int = typer.Option(None, "--limit", min=1, help="At most N models per category.",
                                  show_default=False),
        out: Path = typer.Option(None, "--out", "-o", help="Results folder: objects.csv, summary.json, "
                                 "meshes/ (resumes: models already scored there are skipped).",
                                 show_default=False),
        quality: str = typer.Option("standard", "--quality", callback=_one_of(QUALITIES),
                                    metavar="draft|standard|high",
                                    help="Extraction lattice: draft (65^3), standard (129^3), high (257^3)."),
        threshold: float = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                        help="Occupancy probability of the surface (default: the one stored "
                                             "in the weights, tuned on validation; else 0.2)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Models reconstructed together."),
        device: str = typer.Option("auto", "--device", callback=_one_of(DEVICES), metavar="auto|cpu|cuda",
                                   help="auto = CUDA when available."),
        shard: str = typer.Option(None, "--shard", help="Evaluate only shard I of N (I/N, 0-based).",
                                  show_default=False),
        merge: bool = typer.Option(False, "--merge", help="Combine shard results (SOURCES, or --out's shards)."),
        seed: int = typer.Option(0, "--seed", help="Base seed of the per-model surface sampling."),
        samples: int = typer.Option(100_000, "--samples", min=1000,
                                    help="Surface samples per predicted mesh (the published protocol: 100000)."),
        raw_chamfer: bool = typer.Option(False, "--raw-chamfer",
                                         help="Print Chamfer-L1, accuracy, completeness unscaled (not x10)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
        views: int = typer.Option(1, "--views", min=1, help="Fuse N views per model (multi-view reconstruction)."),
        view_choice: str = typer.Option("first", "--view-choice", metavar="first|random",
                                        help="Views 0..N-1, or N random distinct views fixed per model by --seed."),
        fusion: str = typer.Option("logits", "--fusion", metavar="|".join(FUSION_STRATEGIES),
                                   help="How the views are fused (see recon reconstruct --fuse)."),
        threads: int = threads_option(),
    ) -> None:
        use_threads(threads)
        if view_choice not in ("first", "random"):
            raise typer.BadParameter("valid: first, random", param_hint="--view-choice")
        if fusion not in FUSION_STRATEGIES:
            raise typer.BadParameter(f"valid: {', '.join(FUSION_STRATEGIES)}", param_hint="--fusion")
        if (views > 1 or view_choice != "first") and (meshes is not None or baseline is not None):
            raise typer.BadParameter("--views and --view-choice apply to --weights models only", param_hint="--views")
        mode = _check_mode(merge=merge, meshes=meshes, weights=weights, baseline=baseline, data=data, shard=shard,
                           train_root=train_root)
        if out is not None:
            from recon_cli.io.paths import check_output_folder

            check_output_folder(out)  # before any work
        if mode == "merge":
            run = _merge(sources or [], out, data)
        else:
            run = _evaluate(mode, data=data, split=split, categories=categories, weights=weights, model=model,
                            meshes=meshes, limit=limit, out=out, quality=quality, threshold=threshold,
                            batch_size=batch_size, device=device, shard=parse_shard(shard), seed=seed,
                            samples=samples, show_progress=True, views=views, view_choice=view_choice,
                            fusion=fusion, train_root=train_root)
        for note in run.notes:
            err_console.print(f"warning: {note}", style="yellow", markup=False, soft_wrap=True)
        for synset, model_id, reason in run.skipped:
            err_console.print(f"skipped: {synset}/{model_id}: {reason}", style="yellow", markup=False,
                              soft_wrap=True)
        if as_json:
            print_json(run.summary)
            return
        _print_table(run, raw_chamfer=raw_chamfer)


def _merge(sources: list[Path], out: Path | None, data: Path | None) -> Any:
    from recon_cli.evaluate import merge_results

    if not sources:
        if out is None:
            raise typer.BadParameter("give result folders or --out", param_hint="--merge")
        sources = [out]
    if out is None and len(sources) == 1:
        out = sources[0]
    return merge_results(sources, out_dir=out, root=data)


def _evaluate(mode: str, *, data: Path, split: str, categories: str | None, weights: Path | None, model: str,
              meshes: Path | None, limit: int | None, out: Path | None, quality: str, threshold: float,
              batch_size: int, device: str, shard: tuple[int, int], seed: int, samples: int,
              show_progress: bool, views: int = 1, view_choice: str = "first", fusion: str = "logits",
              train_root: Path | None = None) -> Any:
    from recon_cli.evaluate import EvalOptions, evaluate_meshes, evaluate_model, evaluate_retrieval

    cats = None if categories is None else tuple(c for c in categories.split(",") if c.strip())
    options = EvalOptions(split=split, categories=cats, limit=limit, shard=shard, seed=seed, batch_size=batch_size,
                          n_samples=samples)
    with _Progress(enabled=show_progress) as progress:
        if mode == "meshes":
            assert meshes is not None
            return evaluate_meshes(data, meshes, options=options, out_dir=out, on_progress=progress.update)
        from recon_cli.pipeline import QUALITY_PRESETS, ExtractOptions
        from recon_cli.reconstruct import find_weights
        from recon_cli.runtime.torch_backend import TorchBackend

        res0, steps = QUALITY_PRESETS[quality]
        extract = ExtractOptions(resolution0=res0, upsampling_steps=steps, threshold=threshold)
        if model == "r2n2":
            if mode == "retrieval":
                raise typer.BadParameter("the retrieval baseline uses an occupancy model's encoder",
                                         param_hint="--model")
            from recon_cli.voxel import load_voxel_reconstructor

            rec, described = load_voxel_reconstructor(weights, options=extract, device=device)
            return evaluate_model(data, rec.backend, options=options, stages="r2n2", out_dir=out,
                                  describe={"weights": described, "model": model, "quality": quality,
                                            "upsample": rec.upsample},
                                  on_progress=progress.update, views=views, view_choice=view_choice,
                                  reconstructor=rec)
        weights = find_weights(weights)  # the shipped weights when none are given
        backend = TorchBackend.from_checkpoint(weights, device=device)
        describe = {"weights": str(weights), "model": model, "quality": quality}
        if mode == "retrieval":
            return evaluate_retrieval(data, backend, options=options, out_dir=out, describe=describe,
                                      on_progress=progress.update, on_index=progress.index, train_root=train_root)
        return evaluate_model(data, backend, options=options, extract=extract, stages=MODEL_STAGES[model],
                              out_dir=out, describe=describe, on_progress=progress.update, views=views,
                              view_choice=view_choice, fusion=fusion)


class _Progress:
    """A rich progress bar on stderr fed by the library's callbacks."""

    def __init__(self, *, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=err_console, transient=True, disable=not enabled)
        self.task: Any = None
        self.index_task: Any = None

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def update(self, done: int, total: int, _result: object = None) -> None:
        if self.task is None:
            self.task = self.bar.add_task("evaluating", total=total)
        self.bar.update(self.task, completed=done, total=total)

    def index(self, done: int, total: int) -> None:
        if self.index_task is None:
            self.index_task = self.bar.add_task("embedding training shapes", total=total)
        self.bar.update(self.index_task, completed=done, total=total)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(run: Any, *, raw_chamfer: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = run.summary
    scale = 1.0 if raw_chamfer else float(summary["chamfer_scale"])
    suffix = "" if raw_chamfer else f"×{summary['chamfer_scale']:g}"
    settings = summary.get("settings", {})
    title = f"recon eval: {settings.get('mode', '?')}"
    if settings.get("producer"):
        title += f" ({settings['producer']})"
    title += f", split {settings.get('split', '?')}"
    table = Table(title=title, title_justify="left")
    voxel = "voxel_iou" in summary.get("class_mean", {})
    headers = ["category", "IoU", f"CD-L1{suffix}", "CD-L2", "NC", "F@0.5%", "F@1%", "F@2%",
               f"acc{suffix}", f"comp{suffix}", *(["voxel IoU 32^3"] if voxel else []), "n", "failed"]
    for i, head in enumerate(headers):
        table.add_column(head, justify="left" if i == 0 else "right")

    def row(label: str, doc: dict[str, Any], n: int, failed: int, *, end_section: bool = False) -> None:
        def scaled(key: str) -> float | None:
            return None if doc.get(key) is None else doc[key] * scale

        table.add_row(label, _fmt(doc.get("iou")), _fmt(scaled("chamfer_l1")), _fmt(doc.get("chamfer_l2"), 5),
                      _fmt(doc.get("normal_consistency")), _fmt(doc.get("fscore_0_5")), _fmt(doc.get("fscore_1")),
                      _fmt(doc.get("fscore_2")), _fmt(scaled("accuracy")), _fmt(scaled("completeness")),
                      *([_fmt(doc.get("voxel_iou"))] if voxel else []), str(n), str(failed), end_section=end_section)

    cats = summary["categories"]
    for i, cat in enumerate(cats):
        row(cat["name"], cat, cat["n"], cat["failed"], end_section=i == len(cats) - 1)
    obj = summary["object_mean"]
    row("mean (class)", summary["class_mean"], obj["n"], obj["failed"])
    row("object mean", obj, obj["n"], obj["failed"])
    console = Console(highlight=False)
    if not console.is_terminal:  # files and pipes get the whole table, not an 80-column squeeze
        console = Console(highlight=False, width=160)
    console.print(table)
    worst = summary["worst_distance"]
    console.print(f"failed = empty or unusable predictions (never dropped): IoU 0, F 0, NC 0, accuracy and "
                  f"completeness {worst:.3f} (the 1.1-cube diagonal; {worst * scale:.2f} as printed).",
                  style="dim", markup=False)
    if summary.get("skipped"):
        console.print(f"{len(summary['skipped'])} model(s) skipped: the dataset lacks their render or ground truth "
                      f"(each is named above; in no mean).", style="yellow", markup=False)
    if run.folder is not None:
        console.print(f"results: {run.folder}", style="dim", markup=False)
