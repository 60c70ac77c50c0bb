"""Command line: parses arguments and calls the Python API. No science here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optbench.cli_args import kv as _kv
from optbench.cli_args import leaf_parsers as _leaf_parsers
from optbench.cli_args import named_keys as _named_keys
from optbench.cli_args import positive_int, property_name
from optbench.errors import InputError, exit_code


# ---------------------------------------------------------------- finetune / evaluate
def _add_finetune(sub) -> None:
    from optbench.cli_args import add_finetune_arguments

    p = sub.add_parser("finetune", help="fine-tune a pretrained backbone on extxyz data (optbench's or MACE's option names)")
    add_finetune_arguments(p)
    p.add_argument("--restart", action="store_true", default=False,
                   help="discard what --out holds (checkpoints, results) and start over")
    p.set_defaults(func=_cmd_finetune)


def _cmd_finetune(args) -> int:
    from optbench.cli_args import finetune_overrides
    from optbench.config import FinetuneConfig
    from optbench.evaluate import format_table
    from optbench.provenance import console, log, run_log
    from optbench.run import finetune

    if getattr(args, "list_groups", False):
        from optbench.strategies import list_groups

        print(list_groups(getattr(args, "model", None) or "chgnet", getattr(args, "device", None) or "cpu",
                          getattr(args, "strategy", None)))
        return 0
    console()  # what optbench logs is printed, and the run's log.txt holds it
    config = FinetuneConfig.from_sources(args.config, finetune_overrides(args))
    result = finetune(config, restart=args.restart, named_keys=_named_keys(args))
    with run_log(config.out):
        log.info(format_table(result["metrics"]))
        log.info(f"status: {result['status']}  steps: {result['steps']}  wall time: {result['wall_time_s']:.1f} s  -> {config.out}")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="energy/force/stress errors of any model on named test sets")
    p.add_argument("--model", required=True, help="chgnet, sevennet-0, mace:PATH or a RUN_DIR")
    p.add_argument("--test", action="append", type=_kv, required=True, metavar="NAME=FILE", help="named extxyz test set (repeatable)")
    p.add_argument("--energy-key", help="extxyz key of the energy in eV (unset: 'energy'; a key you name must exist)")
    p.add_argument("--forces-key", help="extxyz key of the forces in eV/Å (unset: 'forces'; a key you name must exist)")
    p.add_argument("--stress-key", help="extxyz key of the stress in eV/Å^3, ASE sign (unset: 'stress'; a key you name must exist)")
    p.add_argument("--batch-size", type=int, default=16, help="structures per forward pass")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    p.add_argument("--out", required=True, help="output JSON file")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    from optbench.evaluate import evaluate_model, format_table

    block = evaluate_model(
        args.model, dict(args.test), out=args.out, energy_key=args.energy_key or "energy",
        forces_key=args.forces_key or "forces", stress_key=args.stress_key or "stress",
        batch_size=args.batch_size, device=args.device, named_keys=_named_keys(args),
    )
    print(format_table({"evaluate": block}))
    return 0


# ---------------------------------------------------------------- data suite
def _add_data(sub) -> None:
    from optbench.regimes import regime_names

    p = sub.add_parser("data", help="built-in benchmark datasets and the public-dataset registry")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    g = dsub.add_parser("generate", help="generate a dataset with an offline reference method")
    g.add_argument("regime", choices=regime_names(), help="which built-in regime")
    g.add_argument("--size", choices=["small", "full"], default="small", help="small: the shipped size; full: larger cells, 10x more frames")
    g.add_argument("--seed", type=int, default=0, help="seed of every sampling stream")
    g.add_argument("--out", required=True, help="dataset folder to write")
    g.add_argument("--workers", type=int, default=1,
                   help="processes labelling frames and computing reference properties at once (same numbers)")
    g.set_defaults(func=_cmd_data_generate)
    ls = dsub.add_parser("list", help="list built-in and public datasets")
    ls.set_defaults(func=_cmd_data_list)
    f = dsub.add_parser("fetch", help="download (or import with --from) a public dataset, verified by sha256")
    f.add_argument("name", help="public dataset name (see `optbench data list`)")
    f.add_argument("--out", required=True, help="folder to write")
    f.add_argument("--from", dest="from_path", help="local copy to import instead of downloading")
    f.set_defaults(func=_cmd_data_fetch)


def _cmd_data_generate(args) -> int:
    from optbench.data.generate import generate

    if args.workers < 1:
        raise InputError(f"--workers must be at least 1 (got {args.workers})", field="--workers")
    generate(args.regime, size=args.size, out=args.out, seed=args.seed, workers=args.workers)
    return 0


def _cmd_data_list(args) -> int:
    from optbench.data.registry import format_listing

    print(format_listing())
    return 0


def _cmd_data_fetch(args) -> int:
    from optbench.data.registry import fetch

    path = fetch(args.name, out=args.out, from_path=args.from_path)
    print(f"{args.name} -> {path}")
    return 0


# ---------------------------------------------------------------- properties
def _add_property(sub) -> None:
    p = sub.add_parser("property", help="a physical property of a model, against reference")
    p.add_argument("name", type=property_name,
                   help="a property of the registry optbench.properties.PROPERTIES (eos, phonons, ...; "
                        "an unknown name lists them all); units are in the names of NAME.json's fields")
    p.add_argument("--model", required=True, help="RUN_DIR, chgnet, ... or 'reference'")
    p.add_argument("--structure", required=True, help="structure file (any ASE format)")
    p.add_argument("--dataset", help="dataset folder whose manifest holds reference values")
    p.add_argument("--device", default="cpu", help="torch device of the model: cpu, cuda, cuda:1, ...")
    p.add_argument("--out", required=True, help="folder for NAME.json and figures")
    p.set_defaults(func=_cmd_property)


def _cmd_property(args) -> int:
    from optbench.properties import run_property

    result = run_property(args.name, model=args.model, structure=args.structure, dataset=args.dataset, out=args.out,
                          device=args.device)
    print(f"{args.name} -> {Path(args.out) / (args.name + '.json')}")
    if result.get("error_vs_reference") is not None:
        print(f"error vs reference: {result['error_vs_reference']}")
    return 0


# ---------------------------------------------------------------- curvature
def _add_curvature(sub) -> None:
    p = sub.add_parser("curvature", help="Hessian spectra of the fine-tuning loss as each optimizer sees it")
    p.add_argument("--run", required=True, help="RUN_DIR of a finetune run")
    p.add_argument("--checkpoint", choices=["start", "mid", "final", "refined"], default="final", help="weights of the run to analyse")
    p.add_argument("--data", required=True, help="extxyz file for the loss")
    p.add_argument("--n-structures", type=int, default=32, help="structures in the loss")
    p.add_argument("--k", type=int, default=10, help="top Hessian eigenpairs (Lanczos) and directions of the spectral filter")
    p.add_argument("--gauss-newton", action="store_true", help="Gauss-Newton matrix instead of the Hessian")
    p.add_argument("--seed", type=int, default=0, help="seed of the structure choice and the random vectors")
    p.add_argument("--lanczos-iter", type=int, help="Lanczos steps per run (default 2k+10)")
    p.add_argument("--probes", type=int, help="Hutchinson probes (default k)")
    p.add_argument("--slq-vectors", type=int, default=3, help="random vectors for the spectral density")
    p.add_argument("--device", default="cpu", help="torch device of the model: cpu, cuda, cuda:1, ...")
    p.add_argument("--out", required=True, help="folder for curvature.json and figures")
    p.set_defaults(func=_cmd_curvature)


def _cmd_curvature(args) -> int:
    from optbench.curvature import run_curvature

    run_curvature(
        run_dir=args.run, checkpoint=args.checkpoint, data=args.data,
        n_structures=args.n_structures, k=args.k, gauss_newton=args.gauss_newton,
        seed=args.seed, out=args.out,
        n_iter=args.lanczos_iter, n_probes=args.probes, n_slq=args.slq_vectors, device=args.device,
    )
    from optbench.layout import CURVATURE_JSON

    print(f"curvature -> {Path(args.out) / CURVATURE_JSON}")
    return 0


# ---------------------------------------------------------------- studies
def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run a study (the built-in quick study when no file is given)")
    p.add_argument("study", nargs="?", help="study YAML")
    p.add_argument("--preset", help="a built-in study instead of a file: quick (default), paper-cpu, paper, strategies")
    p.add_argument("--executor", choices=["local", "process", "ray"], default="local", help="where trials run")
    p.add_argument("--workers", type=int, default=1, help="trials at a time (process and local Ray); with the process executor, analyses too")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--out", help="study folder (default runs/<study name>)")
    p.add_argument("--dry-run", action="store_true", help="check the study, print its trials and estimated wall time; write nothing")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    from optbench.study import load_study, run_study

    if args.study and args.preset:
        raise InputError("give a study file or --preset, not both", field="preset")
    study = load_study(args.study, args.preset)
    if args.dry_run:
        from optbench.study.dryrun import dry_run

        print(dry_run(study, executor=args.executor, workers=args.workers))
        return 0
    out = Path(args.out or Path("runs") / study.name)
    run_study(study, out, executor=args.executor, workers=args.workers, address=args.address)
    from optbench.layout import StudyDir

    folder = StudyDir(out)
    print(f"report: {folder.report_html}  ({folder.report_md}, {folder.results_csv})")
    return 0


def _add_report(sub) -> None:  # and `export`
    p = sub.add_parser("report", help="rebuild a study's report from its stored results")
    p.add_argument("folder", help="study folder (holds study.json)")
    p.set_defaults(func=_cmd_report)
    e = sub.add_parser("export", help="copy a study's report and the records behind it, no weights, for publication")
    e.add_argument("folder", help="study folder")
    e.add_argument("dest", help="new folder (run.json: commands, commit, versions, wall time); `optbench report DEST` rebuilds")
    e.set_defaults(func=_cmd_export)


def _cmd_report(args) -> int:
    from optbench.layout import StudyDir
    from optbench.report import build_report

    folder = StudyDir(args.folder)
    if not folder.is_study():
        raise InputError(f"not a study folder (no {folder.INDEX})", file=args.folder)
    paths = build_report(args.folder)
    print(f"report: {paths['html']}")
    return 0


def _cmd_export(args) -> int:
    from optbench.report.export import export_study
    print(f"{export_study(args.folder, args.dest)['exported']['files']} files -> {args.dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from optbench import __version__
    from optbench.cli_args import use_help_formatter

    parser = argparse.ArgumentParser(prog="optbench", description=__doc__)
    parser.add_argument("--version", action="version", version=f"optbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    from optbench import cli_cache  # `optbench cache`, a command module of its own

    for add in (_add_finetune, _add_evaluate, _add_data, _add_property, _add_curvature, _add_run, _add_report,
                cli_cache.add_arguments):
        add(sub)
    for command in _leaf_parsers(sub):
        command.add_argument("--threads", type=positive_int, metavar="N", default=None,
                             help="CPU threads of torch and the reference codes (default: OMP_NUM_THREADS, "
                                  "else half the available CPUs)")
    use_help_formatter(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from optbench.provenance import set_command

    parser = build_parser()
    args = parser.parse_args(argv)
    from optbench.threads import configure

    set_command(["optbench", *(sys.argv[1:] if argv is None else argv)])
    args.threads = configure(args.threads)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("optbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as err:  # every error ends as one line; the traceback only with --debug
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"optbench: error: {_one_line(err)}", file=sys.stderr)
        return exit_code(err)


def _one_line(err: Exception) -> str:
    """The error as one line; untyped errors (bugs) say so and point at --debug."""
    from optbench.errors import OptbenchError

    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, (InputError, OptbenchError)):
        return text
    return f"{type(err).__name__}: {text} (unexpected; rerun with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
