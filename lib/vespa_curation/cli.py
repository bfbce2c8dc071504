"""The ``vespa-curate`` console script: run, publish, diff, schedule, sample, params,
rules, collection new, list."""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

from . import paths

log = logging.getLogger("vespa_curation.cli")

#: Exit codes (documented in ``vespa-curate --help``; cron mails rely on them).
OK, STAGE_FAILED, USAGE, LOCKED, PUBLISH_FAILED, ENVIRONMENT = 0, 1, 2, 3, 4, 5
NO_DIFF = 6

EXIT_CODES = f"""\
exit codes:
  {OK}  every stage (or publish step) completed; rows quarantined by validation are a
     normal outcome, listed in each run's report
  {STAGE_FAILED}  a stage notebook failed (kept in the run folder with its error; run.log)
  {USAGE}  bad usage or bad parameter (unknown service, unknown key, refused value):
     nothing was run, no run folder was written
  {LOCKED}  another vespa-curate run or publish holds the lock (<outputs>/vespa-curate.lock)
  {PUBLISH_FAILED}  publish failed (dachs imp/val or the TAP check)
  {ENVIRONMENT}  a needed program is missing (e.g. crontab) or the environment refused
  {NO_DIFF}  diff: the live service did not answer (or failed during the scan): no diff
     was made
"""

#: Crontab block markers (``schedule --install`` replaces what lies between them).
BEGIN = "# BEGIN vespa-curate (managed by `vespa-curate schedule --install`)"
END = "# END vespa-curate"


def _services(name: str) -> list[str]:
    from .parameter import ParameterError
    from .services import service_names
    if name == "all":
        return list(service_names())
    if name not in service_names():
        raise ParameterError(f"unknown service {name!r}; accepted: all, "
                             + ", ".join(service_names()))
    return [name]


def _load_all(service: str, file, overrides, preflight: bool = False) -> list:
    """Checked configurations of every service named (all before any work); with
    ``preflight``, file collections' folders and patterns too."""
    from .config import load_config
    from .parameter import ParameterError
    from .sources import SourceError
    plist = [load_config(s, file, overrides) for s in _services(service)]
    if preflight:
        from .harvest import preflight as check
        for p in plist:
            try:
                check(p)
            except SourceError as e:
                raise ParameterError(f"{p['service']}: {e}") from None
    return plist


# -- commands ---------------------------------------------------------------------------

def cmd_run(args) -> int:
    from . import runs
    first = getattr(args, "first_kernel", None)
    try:
        return _run(args, first)
    finally:
        if first is not None:   # not used (bad parameters, the lock held), or shut down
            first.close(now=True)
        runs.stop_fork_server()


def _first_kernel(service: str):
    """The run's kernel fork server, and the kernel of the first stage of the first
    service ``vespa-curate run`` names (:func:`vespa_curation.runs.first_kernel`);
    neither for a name it does not know."""
    from . import runs
    from .parameter import ParameterError
    try:    # a single name is looked up later, with the parameters: not before this
        names = _services(service) if service == "all" else [service]
    except ParameterError:
        return None
    if not names:
        return None
    runs.start_fork_server(names)
    return runs.first_kernel(names[0])


def _run(args, first) -> int:
    from . import runs
    from .parameter import ParameterError
    try:
        plist = _load_all(args.service, args.file, args.param, preflight=True)
    except ParameterError as e:
        print(f"vespa-curate run: {e}", file=sys.stderr)
        return USAGE
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        results = runs.run(plist, params_file=args.file, overrides=args.param,
                           wait=args.wait, progress=progress, first=first)
    except runs.LockedError as e:
        print(f"vespa-curate run: {e}", file=sys.stderr)
        return LOCKED
    failed = [r for r in results if not r.ok]
    for r in results:
        state = "completed" if r.ok else f"FAILED: {r.error}"
        print(f"{r.service}: {state} — {r.folder}")
    return STAGE_FAILED if failed else OK


def cmd_publish(args) -> int:
    from . import runs
    from .parameter import ParameterError
    try:
        plist = _load_all(args.service, None, args.param)
    except ParameterError as e:
        print(f"vespa-curate publish: {e}", file=sys.stderr)
        return USAGE
    try:
        from .publish import publish
    except ImportError as e:
        print(f"vespa-curate publish: not available: {e}", file=sys.stderr)
        return ENVIRONMENT
    code = OK
    try:
        with runs.MultiLock([runs.outputs_dir(p) for p in plist], wait=args.wait,
                            what=f"vespa-curate publish {args.service}"):
            for p in plist:
                try:
                    out = publish(p["service"], p)
                except Exception as e:   # noqa: BLE001 — reported, exit code for cron
                    log.error("%s: publish FAILED: %s", p["service"], e)
                    code = PUBLISH_FAILED
                else:
                    print(f"{p['service']}: published" + (f" — {out}" if out else ""))
    except runs.LockedError as e:
        print(f"vespa-curate publish: {e}", file=sys.stderr)
        return LOCKED
    return code


def cmd_diff(args) -> int:
    """Compare the live service with the import area about to be published."""
    import json
    from .diff import DiffError, diff
    from .parameter import ParameterError
    try:
        if args.service == "all":
            raise ParameterError("diff compares one service at a time; name it")
        (cfg,) = _load_all(args.service, None, args.param)
    except ParameterError as e:
        print(f"vespa-curate diff: {e}", file=sys.stderr)
        return USAGE
    if not cfg.area.exists():
        print(f"vespa-curate diff: no export of {cfg.service} in {cfg.area.path}: run "
              f"`vespa-curate run {cfg.service}` first", file=sys.stderr)
        return USAGE
    try:
        d = diff(cfg, url=args.tap_url, content=args.content, timeout=args.timeout)
    except DiffError as e:
        print(f"vespa-curate diff: {e}", file=sys.stderr)
        return NO_DIFF
    print("\n".join(d.lines()))
    if args.json:
        Path(args.json).write_text(json.dumps(d.to_dict(), indent=1, default=str) + "\n",
                                   encoding="utf-8")
        print(f"summary: {args.json}")
    if args.csv:
        print(f"every granule that differs: {d.write_csv(args.csv)}")
    return OK


def _add_diff(sub, fmt) -> None:
    """``vespa-curate diff``."""
    d = sub.add_parser("diff", formatter_class=fmt, epilog=EXIT_CODES,
                       help="what publishing the import area would change in the live "
                       "service", description="Query the live EPN-TAP service (tap_url, "
                       "default <server_url>/tap) and compare it with the import area "
                       "about to be published: granules new, changed (which columns), "
                       "unchanged, retracted by the publish, served but missing from "
                       "the export (with the last run's quarantine rules). Reads the "
                       "live table in pages of two columns; hashes the content of the "
                       "rows whose modification_date differs (all rows with --content).")
    d.add_argument("service", metavar="SERVICE")
    d.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--tap-url", metavar="URL", help="the TAP endpoint (overrides tap_url)")
    d.add_argument("--content", action="store_true",
                   help="hash every served row (do not trust equal modification dates)")
    d.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    d.add_argument("--csv", metavar="FILE",
                   help="write every granule that differs: granule_uid,status,columns")
    d.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="per request to the service (default 60)")
    d.set_defaults(func=cmd_diff)


def schedule_lines(run_at: str = "01:15", publish_at: str = "04:15",
                   publish_wait: int = 3 * 3600, exe: str | None = None,
                   root: Path | None = None) -> list[str]:
    """The crontab block for the nightly run and publish (absolute paths).

    Output goes to ``outputs/logs/cron-{run,publish}.log``; cron mails only a one-line
    failure notice (exit code and where to look), so a quiet night sends no mail. Each
    run also keeps its own ``run.log`` in its run folder; the lock keeps runs apart and
    the publish waits up to ``publish_wait`` seconds for a run still going.
    """
    root = Path(root or paths.ROOT).resolve()
    exe = exe or _executable()
    logs = root / "outputs" / "logs"
    q = shlex.quote

    def when(hhmm: str) -> str:
        try:
            h, m = (int(v) for v in hhmm.split(":"))
        except ValueError:
            h = m = -1
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError(f"bad time {hhmm!r}: expected HH:MM (local time, "
                             "00:00 to 23:59)")
        return f"{m} {h} * * *"

    if int(publish_wait) < 0:
        raise ValueError(f"--publish-wait {publish_wait}: a number of seconds, 0 or more")

    def line(at, cmd, logname):
        lf = logs / logname
        return (f"{when(at)} cd {q(str(root))} && mkdir -p {q(str(logs))} && "
                f"{exe} {cmd} >> {q(str(lf))} 2>&1 || "
                f"echo \"vespa-curate {cmd.split()[0]} failed with exit code $? "
                f"(1 stage failed, 2 bad parameters, 3 locked, 4 publish failed); "
                f"see {lf} and run.log in the run folders\"")

    return [BEGIN,
            line(run_at, "run all", "cron-run.log"),
            line(publish_at, f"publish all --wait {int(publish_wait)}", "cron-publish.log"),
            END]


def _executable() -> str:
    """How cron calls this program: the console script beside the interpreter."""
    script = Path(sys.executable).parent / "vespa-curate"
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m vespa_curation.cli"


def merge_crontab(existing: str, block: list[str]) -> str:
    """``existing`` crontab text with the vespa-curate block replaced (idempotent)."""
    out, skipping = [], False
    for ln in existing.splitlines():
        if ln.strip() == BEGIN:
            skipping = True
            continue
        if skipping and ln.strip() == END:
            skipping = False
            continue
        if not skipping:
            out.append(ln)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out + ([""] if out else []) + block) + "\n"


def cmd_schedule(args) -> int:
    try:
        block = schedule_lines(args.at, args.publish_at, args.publish_wait)
    except ValueError as e:
        print(f"vespa-curate schedule: {e}", file=sys.stderr)
        return USAGE
    if not args.install:
        print("\n".join(block))
        return OK
    crontab = os.environ.get("VESPA_CURATE_CRONTAB", "crontab")
    try:
        cur = subprocess.run([crontab, "-l"], capture_output=True, text=True)
    except FileNotFoundError:
        print(f"vespa-curate schedule: no {crontab!r} program (install cron); the lines "
              "to install by hand:\n" + "\n".join(block), file=sys.stderr)
        return ENVIRONMENT
    existing = cur.stdout if cur.returncode == 0 else ""
    if cur.returncode != 0 and "no crontab" not in (cur.stderr or "").lower():
        print(f"vespa-curate schedule: {crontab} -l failed: {cur.stderr.strip()}",
              file=sys.stderr)
        return ENVIRONMENT
    new = merge_crontab(existing, block)
    if new == existing:
        print("crontab already holds these lines; nothing changed")
        return OK
    put = subprocess.run([crontab, "-"], input=new, capture_output=True, text=True)
    if put.returncode != 0:
        print(f"vespa-curate schedule: {crontab} - failed: {put.stderr.strip()}",
              file=sys.stderr)
        return ENVIRONMENT
    print("installed in the crontab:\n" + "\n".join(block))
    return OK


def cmd_sample(args) -> int:
    from .samples import build_samples
    out = paths.resolve(args.out) if args.out else paths.OUTPUTS / "samples"
    res = build_samples(out)
    print(f"samples written under {out}" + (f": {res}" if res else ""))
    return OK


def cmd_params(args) -> int:
    from .config import describe
    from .parameter import ParameterError
    try:
        _services(args.service)
    except ParameterError as e:
        print(f"vespa-curate params: {e}", file=sys.stderr)
        return USAGE
    print(describe(args.service))
    return OK


def cmd_rules(args) -> int:
    from .rules import describe
    print(describe())
    return OK


def cmd_collection_new(args) -> int:
    """Propose a YAML declaration from a folder of files, write it, dry-run it."""
    from .parameter import ParameterError
    from . import scaffold
    from .services import service_names
    from .services.from_yaml import folder
    name, root = args.name, Path(args.files).expanduser().resolve()
    if name in service_names() and not (folder() / f"{name}.yaml").exists():
        print(f"vespa-curate collection new: {name!r} is a service declared in Python "
              "(lib/vespa_curation/services/); choose another name", file=sys.stderr)
        return USAGE
    if name in service_names() and not args.force:
        print(f"vespa-curate collection new: {name!r} is already a service (use --force "
              "to replace a YAML collection's declaration)", file=sys.stderr)
        return USAGE
    try:
        sets = dict(_key_value(kv) for kv in args.set)
        decl, found = scaffold.propose(name, root, doi=args.doi, bib=args.bib, sets=sets)
    except (ValueError, OSError) as e:
        print(f"vespa-curate collection new: {e}", file=sys.stderr)
        return USAGE
    if found["missing"]:
        print(scaffold.render(name, decl))
        print(scaffold.summary(found))
        print(f"vespa-curate collection new: not written: give the required column(s) "
              f"{', '.join(found['missing'])} with --set column=value", file=sys.stderr)
        return USAGE
    try:
        path = scaffold.write(name, decl, overwrite=args.force)
    except (FileExistsError, ParameterError) as e:
        print(f"vespa-curate collection new: {e}", file=sys.stderr)
        return USAGE
    print(f"wrote {path}")
    from .sources import SourceError
    try:
        rows, quarantine = scaffold.dry_run(name, n=args.first)
    except (SourceError, ParameterError) as e:
        print(scaffold.summary(found))
        print(f"vespa-curate collection new: the dry run stopped: {e}", file=sys.stderr)
        return USAGE
    print(scaffold.summary(found, rows, quarantine))
    print(f"next: edit {path} (title, description, creator, subjects), then "
          f"`vespa-curate run {name}` and `vespa-curate publish {name}`")
    return OK


def _key_value(item: str) -> tuple[str, str]:
    from .parameter import ParameterError
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        raise ParameterError(f"--set {item!r}: expected column=value")
    return key.strip(), value.strip()


def cmd_list(args) -> int:
    from .services import all_services
    for svc in all_services():
        print(f"{svc.name:12s} {svc.title} — {svc.source.describe()}")
    return OK


# -- parser -----------------------------------------------------------------------------

def _add_collection(sub, fmt) -> None:
    """``vespa-curate collection new``."""
    co = sub.add_parser("collection", help="publish a folder of files without Python "
                        "(`collection new`)")
    cs = co.add_subparsers(dest="action", required=True, metavar="ACTION")
    cn = cs.add_parser("new", formatter_class=fmt, epilog=EXIT_CODES,
                       help="propose parameters/collections/NAME.yaml from a folder",
                       description="Scan a folder of files prepared for VESPA (CDF with "
                       "VESPA_* attributes, TFCat catalogues, FITS), propose the "
                       "declaration (patterns, reader, the columns the attributes fill, "
                       "the required columns that need a constant), write it and "
                       "dry-run the first files: what a row will look like, what is "
                       "missing, what is refused.")
    cn.add_argument("name", metavar="NAME", help="the schema name (lower-case, digits, _)")
    cn.add_argument("--files", required=True, metavar="DIR", help="the folder of files")
    cn.add_argument("--doi", help="the dataset's DOI")
    cn.add_argument("--bib", help="the article: DOI or bibcode (bib_reference)")
    cn.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE",
                    help="a constant for a column the files do not fill (repeatable)")
    cn.add_argument("--first", type=int, default=5, metavar="N",
                    help="files read by the dry run (default 5)")
    cn.add_argument("--force", action="store_true", help="replace the declaration")
    cn.set_defaults(func=cmd_collection_new)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="vespa-curate", formatter_class=fmt,
        description="Curation workbench for VESPA heliophysics EPN-TAP services: "
                    "harvest → QA → export through papermill, publish to DaCHS.",
        epilog=EXIT_CODES)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", formatter_class=fmt, epilog=EXIT_CODES,
                       help="harvest → qa → export of a service (or all) via papermill",
                       description="Run the stage notebooks 01_harvest, 02_qa, 03_export "
                       "into <outputs>/<UTC stamp>/<service>/ (executed notebooks, "
                       "figures, report, run.log). Parameters are checked before any "
                       "notebook starts.")
    r.add_argument("service", metavar="SERVICE|all")
    r.add_argument("-f", "--file", help="YAML parameters file on top of "
                   "parameters/<service>.yaml")
    r.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter override (repeatable); see `vespa-curate params "
                   "SERVICE`")
    r.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another run's lock (default: exit 3 at once)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar (default when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    r.set_defaults(func=cmd_run)

    pb = sub.add_parser("publish", formatter_class=fmt, epilog=EXIT_CODES,
                        help="dachs imp / val of the import area, then a TAP check")
    pb.add_argument("service", metavar="SERVICE|all")
    pb.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    pb.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                    help="wait this long for a run holding the lock")
    pb.set_defaults(func=cmd_publish)

    _add_diff(sub, fmt)

    s = sub.add_parser("schedule", formatter_class=fmt, epilog=EXIT_CODES,
                       help="print (or --install) the crontab lines for nightly runs",
                       description="Print the crontab lines of the nightly `run all` and "
                       "`publish all`; --install merges them into the user's crontab "
                       "(idempotent: the marked block is replaced). Output goes to "
                       "outputs/logs/; cron mails a one-line notice on failure only.")
    s.add_argument("--install", action="store_true")
    s.add_argument("--at", default="01:15", metavar="HH:MM", help="run time (local)")
    s.add_argument("--publish-at", default="04:15", metavar="HH:MM", help="publish time")
    s.add_argument("--publish-wait", type=int, default=3 * 3600, metavar="SECONDS",
                   help="how long the publish waits for a run still holding the lock")
    s.set_defaults(func=cmd_schedule)

    sm = sub.add_parser("sample", help="build the embedded sample sources "
                        "(outputs/samples)")
    sm.add_argument("--out", help="folder (default outputs/samples)")
    sm.set_defaults(func=cmd_sample)

    pa = sub.add_parser("params", help="print the parameter schema of a service")
    pa.add_argument("service", metavar="SERVICE")
    pa.set_defaults(func=cmd_params)

    ru = sub.add_parser("rules", help="list every quarantine rule and QA flag, with what "
                        "it means")
    ru.set_defaults(func=cmd_rules)

    _add_collection(sub, fmt)

    ls = sub.add_parser("list", help="list the services (discovered from "
                        "lib/vespa_curation/services/ and parameters/collections/) and "
                        "what each reads")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vespa-curate``; returns the exit code. Without ``argv`` (the
    command itself, on this process's command line), the process ends after it:
    what it made is then left out of the garbage collection every Python process runs
    as it exits (``gc.freeze``), which walked every object a run had made — the
    executed notebooks, the libraries — for 0.3 s of each ``vespa-curate run``.
    Objects are still released as the interpreter ends; only cycles of them are not
    looked for (files are closed where they are written, and flushed then)."""
    code = _main(argv)
    if argv is None:
        import gc
        gc.freeze()
    return code


def _main(argv: list[str] | None) -> int:
    """:func:`main`'s work."""
    from . import runs
    args = build_parser().parse_args(argv)
    runs.console_logging(logging.DEBUG if args.verbose else logging.INFO)
    if args.func is cmd_run:
        # its first kernel starts now, and warms up while this process checks the
        # parameters and takes the lock (cmd_run hands it on, or shuts it down)
        args.first_kernel = _first_kernel(args.service)
    try:
        import astropy.utils.iers
        astropy.utils.iers.conf.auto_download = False
    except ImportError:
        pass
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
