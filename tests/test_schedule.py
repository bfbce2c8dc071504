"""vespa-curate schedule: crontab lines (absolute paths, logs, lock) and idempotent install.

The machine has no cron; ``--install`` talks to whatever ``crontab`` program
``VESPA_CURATE_CRONTAB`` names. The stand-in below implements the two calls used
(``crontab -l`` and ``crontab -``) on a file, with cron's "no crontab" answer.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vespa_curation import cli

from test_cli import ROOT, curate

FAKE_CRONTAB = """#!/bin/sh
f="$FAKE_CRONTAB_FILE"
case "$1" in
  -l) if [ -f "$f" ]; then cat "$f"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -)  cat > "$f" ;;
  *)  echo "usage" >&2; exit 2 ;;
esac
"""


def _fake(tmp_path):
    prog = tmp_path / "crontab"
    prog.write_text(FAKE_CRONTAB)
    prog.chmod(0o755)
    store = tmp_path / "crontab.txt"
    return {"VESPA_CURATE_CRONTAB": str(prog), "FAKE_CRONTAB_FILE": str(store)}, store


def _jobs(text):
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_schedule_prints_cron_lines():
    p = curate("schedule")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == cli.BEGIN and lines[-1] == cli.END
    run, pub = _jobs(p.stdout)
    for line, sub in ((run, "run all"), (pub, "publish all --wait")):
        fields = line.split(None, 5)
        assert fields[2:5] == ["*", "*", "*"]              # daily
        assert 0 <= int(fields[0]) < 60 and 0 <= int(fields[1]) < 24
        cmd = fields[5]
        assert f"cd {ROOT}" in cmd                          # absolute project root
        assert f"{sys.prefix}/bin/vespa-curate {sub}" in cmd  # absolute program
        assert f"{ROOT}/outputs/logs/" in cmd and ">>" in cmd and "2>&1" in cmd
        assert "%" not in cmd                               # cron turns % into newlines
        assert "exit code $?" in cmd                        # a mail on failure only
        # the command is valid sh
        assert subprocess.run(["sh", "-n", "-c", cmd]).returncode == 0
    assert int(run.split()[1]) < int(pub.split()[1])        # publish after the run


def test_schedule_times_and_bad_time():
    p = curate("schedule", "--at", "23:05", "--publish-at", "06:30")
    run, pub = _jobs(p.stdout)
    assert run.startswith("5 23 * * * ") and pub.startswith("30 6 * * * ")
    bad = curate("schedule", "--at", "25:00")
    assert bad.returncode == cli.USAGE and "25:00" in bad.stderr


@pytest.mark.parametrize("args, named", [
    (("--at", "x"), "'x': expected HH:MM"),
    (("--publish-at", "6h30"), "'6h30': expected HH:MM"),
    (("--at", "12:3:4"), "'12:3:4': expected HH:MM"),
    (("--publish-wait", "-5"), "--publish-wait -5"),
])
def test_schedule_refuses_bad_values_by_name(args, named):
    """A time that is not HH:MM and a negative wait get a sentence, not a traceback or
    a crontab line cron would choke on."""
    bad = curate("schedule", *args)
    assert bad.returncode == cli.USAGE, bad.stdout
    assert named in bad.stderr and "Traceback" not in bad.stderr and not bad.stdout


def test_install_is_idempotent_and_keeps_other_lines(tmp_path):
    env, store = _fake(tmp_path)
    store.write_text("MAILTO=ops@example.org\n0 3 * * * /usr/bin/backup\n")
    p = curate("schedule", "--install", env=env)
    assert p.returncode == 0, p.stderr
    first = store.read_text()
    assert first.startswith("MAILTO=ops@example.org\n0 3 * * * /usr/bin/backup\n")
    assert first.count(cli.BEGIN) == 1 and len(_jobs(first)) == 4   # 2 kept + 2 ours
    again = curate("schedule", "--install", env=env)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert store.read_text() == first
    # new times replace the block, never add a second one
    curate("schedule", "--install", "--at", "02:00", env=env)
    text = store.read_text()
    assert text.count(cli.BEGIN) == 1 and len(_jobs(text)) == 4
    assert "0 2 * * * " in text and "/usr/bin/backup" in text


def test_install_into_empty_crontab(tmp_path):
    env, store = _fake(tmp_path)
    assert curate("schedule", "--install", env=env).returncode == 0
    assert _jobs(store.read_text())[0].split(None, 5)[5].startswith(f"cd {ROOT}")


def test_install_without_crontab_program(tmp_path):
    p = curate("schedule", "--install",
               env={"VESPA_CURATE_CRONTAB": str(tmp_path / "no-crontab")})
    assert p.returncode == cli.ENVIRONMENT
    assert "install cron" in p.stderr and "run all" in p.stderr   # lines still shown


def test_merge_crontab_unit():
    block = cli.schedule_lines(root=Path("/srv/x"), exe="/srv/x/.venv/bin/vespa-curate")
    once = cli.merge_crontab("a\n", block)
    assert cli.merge_crontab(once, block) == once
    assert cli.merge_crontab("", block) == "\n".join(block) + "\n"
