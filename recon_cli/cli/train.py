"""`recon train`: train onet / onet-pcl / doccnet on a ShapeNet-layout dataset."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import typer

from recon_cli.cli.common import err_console, guarded, one_of, print_json

MODELS = ("onet", "onet-pcl", "doccnet", "r2n2")


def register(app: typer.Typer) -> None:
    """Attach ``recon train`` to the root app."""
    app.command("train")(train_command)


@guarded
def train_command(
    data: Path = typer.Option(None, "--data", help="Dataset root (ShapeNet layout, e.g. from `recon data build`)."),
    model: str = typer.Option(None, "--model", callback=one_of(MODELS), metavar="onet|onet-pcl|doccnet|r2n2",
                              help="Model to train (default: model.name of --config, or of the run being resumed)."),
    out: Path = typer.Option(None, "--out", help="Run folder: config.yaml, log.jsonl, last.pt, best.pt."),
    config: str = typer.Option(
        None, "--config", help="YAML file layered over the built-in config, or a built-in name "
        "(onet, onet-pcl, doccnet, doccnet-cpu)."),
    overrides: list[str] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override one key, e.g. --set optim.lr=3e-4 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from last.pt exactly."),
    init_weights: Path = typer.Option(
        None, "--init-weights", metavar="CHECKPOINT",
        help="Start a new run from these weights (same model config; new optimiser and schedule), "
        "e.g. weights/doccnet.pt with --config doccnet-lite to train the shipped model further."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after N steps of this invocation."),
    max_minutes: float = typer.Option(None, "--max-minutes", min=0.01, help="Stop after M minutes (saves last.pt)."),
    device: str = typer.Option(None, "--device", callback=one_of(("auto", "cpu", "cuda")), metavar="auto|cpu|cuda",
                               help="Device (default: the config's, auto)."),
    workers: int = typer.Option(None, "--workers", min=0, help="DataLoader worker processes."),
    threads: int = typer.Option(None, "--threads", min=0, help="CPU threads for torch (1 is fastest on a busy machine)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit."),
    json_out: bool = typer.Option(False, "--json", help="Print the result (or config) as JSON on stdout."),
) -> None:
    """Train a model; SIGTERM/Ctrl-C save last.pt and stop cleanly (exit code 143 / 130), --resume continues.

    Several GPUs or nodes: launch the same command line with `torchrun`.
    """
    from recon_cli.config import load_yaml, to_dict
    from recon_cli.training import config_to_yaml, resolve_config, train

    sets = list(overrides or [])
    if device is not None:
        sets.append(f"device={device}")
    if workers is not None:
        sets.append(f"data.workers={workers}")
    if threads is not None:
        sets.append(f"threads={threads}")
    if init_weights is not None:
        if not init_weights.is_file():
            raise typer.BadParameter(f"{init_weights}: no such checkpoint file", param_hint="--init-weights")
        sets.append(f"init_weights={init_weights.resolve()}")
    base = None
    if resume and out is not None and (out / "config.yaml").is_file():
        base = load_yaml(out / "config.yaml")
    if model is None and config is None and base is None:
        raise typer.BadParameter(f"choose a model: --model {'|'.join(MODELS)} (or --config FILE)",
                                 param_hint="--model")
    if not dry_run and (data is None or out is None):
        raise typer.BadParameter("--data and --out are required (or use --dry-run)",
                                 param_hint="--data" if data is None else "--out")
    if not dry_run:
        from recon_cli.io.paths import check_output_folder

        check_output_folder(out)  # before any work
    cfg = resolve_config(model=model, config_file=config, overrides=sets, base=base)
    if dry_run:
        if json_out:
            print_json(to_dict(cfg))
        else:
            typer.echo(config_to_yaml(cfg), nl=False)
        return
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    with _Display(enabled=main_rank and not json_out) as display:
        result = train(cfg, data_root=data, out_dir=out, resume=resume, on_event=display.on_event,
                       max_steps=max_steps, max_minutes=max_minutes)
    if not main_rank:
        return
    if json_out:
        from dataclasses import asdict

        print_json(asdict(result))
    else:
        best = "n/a" if result.best_iou is None else f"{result.best_iou:.4f} (step {result.best_step})"
        err_console.print(
            f"{result.stopped}: step {result.step}/{result.total_steps} in {result.seconds:.0f} s; "
            f"best val IoU {best}; checkpoints in {result.out_dir}", markup=False)
    if result.stopped == "signal":  # a scheduler must tell an interrupted run from a finished one
        signum = result.signal or signal.SIGTERM
        err_console.print(f"stopped by {signal.Signals(signum).name} after saving last.pt at step {result.step}; "
                          "continue with --resume", style="yellow", markup=False)
        raise typer.Exit(128 + signum)


class _Display:
    """A rich progress bar on stderr fed by the library's events."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Any = None
        self.task: Any = None
        self.val = ""
        self.cache_tasks: dict[str, Any] = {}

    def __enter__(self) -> _Display:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=err_console,
            disable=not self.enabled, transient=False,
        )
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        p = self.progress
        if kind == "cache" and "what" in event:  # feature / near-surface caches, before training starts
            key = event["what"]
            if key not in self.cache_tasks:
                self.cache_tasks[key] = p.add_task(f"cache {key}", total=event["total"], info="")
            p.update(self.cache_tasks[key], completed=event["done"])
            return
        if kind == "warning":
            p.console.print(f"warning: {event['text']}", style="yellow", markup=False, soft_wrap=True)
            return
        if kind == "message" and self.task is None:
            p.console.print(event["text"], markup=False)
            return
        if kind == "start":
            self.task = p.add_task("train", total=event["total_steps"], completed=event["step"], info="")
            p.console.print(
                f"training on {event['train_models']} models (val {event['val_models']}), "
                f"device {event['device']} x{event['world_size']}", markup=False)
        elif self.task is None:
            return
        elif kind == "phase":
            p.update(self.task, description=event["name"])
        elif kind == "step":
            p.update(self.task, completed=event["step"])
            if "loss" in event:
                losses = " ".join(f"{k}={event[k]:.1f}" for k in ("loss1", "loss2") if k in event)
                p.update(self.task, info=f"{losses}{self.val}")
        elif kind == "log":
            p.update(self.task, info=p.tasks[self.task].fields["info"] + f" {event['samples_per_s']:.0f}/s")
        elif kind == "val":
            metrics = event["metrics"]
            self.val = "  val " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items())
            p.console.print(f"step {event['step']}:{self.val}{' (best)' if event['improved'] else ''}", markup=False)
        elif kind == "message":
            p.console.print(event["text"], markup=False)
        elif kind == "cache":
            p.update(self.task, info=f"caching stage-1 clouds {event['done']}/{event['total']}")
