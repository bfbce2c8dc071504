#!/usr/bin/env bash
# Make Debian 12's pgSphere 1.2.0 extension installable on PostgreSQL >= 15.20.
#
# PostgreSQL's late minor releases refuse an operator whose COMMUTATOR is already the
# commutator of another operator ("commutator operator @> is already the commutator of
# operator <@"). pgSphere 1.2.0's extension script still declares two obsolete
# `@(bigint, smoc)` / `@(spoint, smoc)` compatibility operators that do exactly that;
# upstream pgSphere dropped them (postgrespro/pgsphere#92: "not used anymore" by DaCHS),
# so CREATE EXTENSION pg_sphere fails on such servers until they are removed.
#
# This script tries CREATE EXTENSION in a scratch database; only when it fails with that
# error does it remove the same two operator blocks from the installed scripts (as the
# upstream fix does), then tries again. Idempotent; a no-op on fixed pgSphere packages.
# Usage (root, PostgreSQL running): scripts/pgsphere-compat.sh <postgres major version>
set -euo pipefail
PGV="${1:?postgres major version}"
EXT="/usr/share/postgresql/${PGV}/extension"
try() {
  runuser -u postgres -- dropdb --if-exists vespa_pgsphere_probe >/dev/null
  runuser -u postgres -- createdb vespa_pgsphere_probe
  local out rc=0
  out=$(runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d vespa_pgsphere_probe \
        -c 'CREATE EXTENSION pg_sphere' 2>&1) || rc=$?
  runuser -u postgres -- dropdb --if-exists vespa_pgsphere_probe >/dev/null
  echo "$out"
  return $rc
}
if out=$(try); then
  echo "pgSphere: CREATE EXTENSION works as installed"
  exit 0
fi
echo "$out"
if ! grep -q "is already the commutator of operator" <<<"$out"; then
  echo "pgSphere: CREATE EXTENSION fails for another reason; not patching" >&2
  exit 1
fi
echo "pgSphere: removing the obsolete @(bigint|spoint, smoc) operators (upstream #92)"
python3 - "$EXT" <<'PY'
import re, sys, pathlib
ext = pathlib.Path(sys.argv[1])
block = re.compile(r"CREATE OPERATOR @ \(\s*LEFTARG\s*=\s*(?:bigint|spoint),\s*"
                   r"RIGHTARG\s*=\s*smoc,[^;]*?\);\n?", re.S)
for f in sorted(ext.glob("pg_sphere--*.sql")):
    text = f.read_text()
    new, n = block.subn("", text)
    if n:
        f.write_text(new)
        print(f"  {f.name}: {n} operator(s) removed")
PY
try >/dev/null && echo "pgSphere: CREATE EXTENSION works now"
