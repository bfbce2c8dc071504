#!/usr/bin/env bash
# Does a change keep the export byte-identical on the embedded samples?
#
# Builds the DaCHS import area (outputs/dachs/) of two commits of this repository and
# compares them file by file with scripts/compare_import_areas.py (run stamps, run ids,
# the clone's folder and the manifests' hashes of stamped files masked; Parquet compared
# as tables, FITS data bytes raw). Each commit runs in its own local clone, with that
# clone's lib/ on PYTHONPATH (checked, in the CLI and in a stage notebook's kernel):
#   vespa-curate sample; vespa-curate run all --no-progress
# Local only: the clones come from this repository, the runs read the embedded samples.
# Commits are compared, not the working tree: commit (or stash) a change first.
#
# Usage: scripts/compare_import_areas.sh [A] [B]       (defaults: A=HEAD~1, B=HEAD)
#   env VENV=...   virtualenv whose python / vespa-curate run both commits
#                  (default <repository>/.venv)
#   env KEEP=1     keep the work folder (clones, outputs, logs of each command)
#   env WORK=DIR   compare the clones an earlier KEEP=1 run left in DIR, without
#                  cloning or running again (DIR is kept)
# Exit codes: 0 all files identical (after masking), 1 differences, 2 a step failed.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "ERROR: $*" >&2; exit 2; }

REPO=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null) || die "$HERE is not in a git repository"
A=${1:-HEAD~1}
B=${2:-HEAD}
VENV=${VENV:-$REPO/.venv}
PY=$VENV/bin/python
CURATE=$VENV/bin/vespa-curate
[ -x "$PY" ] && [ -x "$CURATE" ] || die "no python / vespa-curate in $VENV (set VENV=...)"
# The project root of each run must be its clone (checked below), not one set from outside.
unset VESPA_CURATION_ROOT

# The work folder: a fresh one (removed at the end unless KEEP=1), or WORK=DIR to reuse.
if [ -n "${WORK:-}" ]; then
    [ -d "$WORK" ] || die "WORK=$WORK is not a folder"
    WORKDIR=$(cd "$WORK" && pwd)
    REUSE=1
else
    WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/compare_import_areas.XXXXXX") || die "mktemp -d failed"
    REUSE=0
fi
cleanup() {
    cd / || true
    if [ "$REUSE" = 1 ] || [ "${KEEP:-0}" = 1 ]; then
        echo "work folder kept: $WORKDIR"
    else
        rm -rf -- "$WORKDIR"
    fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM
LOGS=$WORKDIR/logs
mkdir -p "$LOGS" || die "mkdir $LOGS"
echo "work folder: $WORKDIR"

resolve() {  # short sha of a revision of $REPO
    git -C "$REPO" rev-parse --verify -q "$1^{commit}" >/dev/null || die "unknown revision $1 in $REPO"
    git -C "$REPO" rev-parse --short=7 "$1^{commit}"
}
SHA_A=$(resolve "$A") || exit 2
SHA_B=$(resolve "$B") || exit 2
DIR_A=$WORKDIR/$SHA_A
DIR_B=$WORKDIR/$SHA_B
if [ "$SHA_A" = "$SHA_B" ]; then
    echo "note: $A and $B are the same commit ($SHA_A); B runs in $WORKDIR/${SHA_B}-b"
    DIR_B=$WORKDIR/${SHA_B}-b
fi
echo "A = $A -> $SHA_A  ($(git -C "$REPO" log -1 --format=%s "$SHA_A" | cut -c1-90))"
echo "B = $B -> $SHA_B  ($(git -C "$REPO" log -1 --format=%s "$SHA_B" | cut -c1-90))"

tail_err() {  # last lines of a failed command's stderr (and stdout)
    echo "---- stderr tail ($1.err) ----" >&2; tail -n 40 "$1.err" >&2
    echo "---- stdout tail ($1.out) ----" >&2; tail -n 15 "$1.out" >&2
}

build() {  # build <sha> <dir>: clone, check the imports, sample, run all
    local sha=$1 dir=$2 tag log t0
    tag=$(basename "$dir")
    git clone -q --no-checkout "$REPO" "$dir" || die "git clone into $dir failed"
    git -C "$dir" checkout -q "$sha" || die "checkout $sha in $dir failed"
    cd "$dir" || die "cd $dir"

    # The clone's lib must be the package imported (PYTHONPATH comes before the venv's
    # site-packages, where an editable install of the repository's lib may live), and
    # the project root (parameters/, notebooks/, outputs/) must be the clone.
    local want="$dir/lib/vespa_curation/__init__.py" got
    got=$(PYTHONPATH="$dir/lib" "$PY" -c 'import vespa_curation, vespa_curation.paths as p; print(vespa_curation.__file__); print(p.ROOT)') \
        || die "import check failed in $dir"
    echo "[$tag] import check: $(echo "$got" | sed -n 1p)  ROOT=$(echo "$got" | sed -n 2p)"
    [ "$(echo "$got" | sed -n 1p)" = "$want" ] || die "[$tag] vespa_curation is imported from $(echo "$got" | sed -n 1p), not $want"
    [ "$(echo "$got" | sed -n 2p)" = "$dir" ] || die "[$tag] project root is $(echo "$got" | sed -n 2p), not $dir"

    # The stage notebooks run in Jupyter kernels (this venv's kernelspec, started with the
    # inherited environment, PYTHONPATH included): check what such a kernel imports.
    got=$(PYTHONPATH="$dir/lib" JUPYTER_PATH="$VENV/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}" \
          "$PY" - "$dir" 2>/dev/null <<'EOF'
import sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3", cwd=sys.argv[1])
out = []
try:
    kc.execute_interactive("import vespa_curation; print(vespa_curation.__file__)",
                           output_hook=lambda m: m["msg_type"] == "stream" and out.append(m["content"]["text"]),
                           timeout=120)
finally:
    kc.stop_channels(); km.shutdown_kernel(now=True)
print("".join(out).strip())
EOF
) || die "[$tag] kernel import check failed"
    echo "[$tag] kernel import check: $got"
    [ "$got" = "$want" ] || die "[$tag] the kernel imports vespa_curation from $got, not $want"

    log=$LOGS/$tag-sample
    t0=$SECONDS
    if ! PYTHONPATH="$dir/lib" "$CURATE" sample >"$log.out" 2>"$log.err"; then
        tail_err "$log"; die "[$tag] vespa-curate sample failed (exit != 0)"
    fi
    echo "[$tag] vespa-curate sample: ok ($((SECONDS - t0)) s)"
    log=$LOGS/$tag-run
    t0=$SECONDS
    if ! PYTHONPATH="$dir/lib" "$CURATE" run all --no-progress >"$log.out" 2>"$log.err"; then
        tail_err "$log"; die "[$tag] vespa-curate run all failed (exit != 0)"
    fi
    echo "[$tag] vespa-curate run all --no-progress: ok ($((SECONDS - t0)) s)"

    # A path into the repository's own lib/ in an executed stage notebook (a traceback,
    # a printed module path) would mean a stage kernel imported another lib.
    if grep -rl --include='*.ipynb' "$REPO/lib/" "$dir/outputs/runs" >/dev/null 2>&1; then
        echo "[$tag] WARNING: an executed notebook mentions $REPO/lib/:" >&2
        grep -rl --include='*.ipynb' "$REPO/lib/" "$dir/outputs/runs" | head -5 >&2
    fi
    cd "$WORKDIR" || exit 2
}

area() {  # the import area of a clone: the dachs_inputs parameter (relative to the clone)
    local dir=$1 p
    p=$(cd "$dir" && PYTHONPATH="$dir/lib" "$CURATE" params hfc1ar 2>/dev/null \
        | awk '$1=="dachs_inputs"{for(i=1;i<=NF;i++) if($i ~ /^default=/){sub(/^default=\047/,"",$i); sub(/\047$/,"",$i); print $i}}')
    p=${p:-outputs/dachs}
    case "$p" in /*) echo "$p";; *) echo "$dir/$p";; esac
}

# The UTC dates whose run stamps are masked: the day the runs started and the day the
# comparison starts (the runs may cross midnight); with WORK=DIR, the day of that run.
if [ "$REUSE" = 1 ]; then
    [ -d "$DIR_A" ] && [ -d "$DIR_B" ] || die "WORK=$WORKDIR holds no clones $(basename "$DIR_A") and $(basename "$DIR_B")"
    DATES=$(cat "$WORKDIR/dates" 2>/dev/null) || die "no $WORKDIR/dates (not a folder kept by KEEP=1)"
    echo "WORK=$WORKDIR: reusing $DIR_A and $DIR_B (no clone, no run)"
else
    date -u +%Y%m%d >"$WORKDIR/dates"
    build "$SHA_A" "$DIR_A"
    build "$SHA_B" "$DIR_B"
    DATES=$(cat "$WORKDIR/dates")
fi
DATES="$DATES,$(date -u +%Y%m%d)"

AREA_A=$(area "$DIR_A")
AREA_B=$(area "$DIR_B")
[ -d "$AREA_A" ] || die "no import area $AREA_A"
[ -d "$AREA_B" ] || die "no import area $AREA_B"
echo "import areas: $AREA_A  vs  $AREA_B"

"$PY" "$HERE/compare_import_areas.py" --dates "$DATES" \
    --root-a "$DIR_A" --root-b "$DIR_B" "$AREA_A" "$AREA_B"
rc=$?
case $rc in 0|1) exit $rc;; *) echo "ERROR: the comparison failed (exit $rc)" >&2; exit 2;; esac
