"""The shape of the package: one direction of imports, one catalogue of rule codes,
short functions, services discovered, and a project that reads nothing outside itself."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from vespa_curation import rules
from vespa_curation.services import get_service, service_names

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "vespa_curation"
#: The longest function the package may hold (the issue asks for "under ~80 lines").
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for p in LIB.rglob("*.py"):
        parts = list(p.relative_to(LIB.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports, at module level or inside functions
    (``from . import x`` depends on ``x``, not on the package importing it)."""
    mods = _modules()
    graph = {}
    for mod, p in mods.items():
        base = mod.split(".") if p.name == "__init__.py" else mod.split(".")[:-1]
        deps = set()
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.ImportFrom):
                up = base[:len(base) - (n.level - 1)] if n.level else []
                name = ".".join(up + ([n.module] if n.module else [])) if n.level \
                    else n.module
                if name not in mods:
                    continue
                subs = [f"{name}.{a.name}" for a in n.names if f"{name}.{a.name}" in mods]
                deps.update(subs)
                if len(subs) < len(n.names):
                    deps.add(name)
            elif isinstance(n, ast.Import):
                deps.update(a.name for a in n.names if a.name in mods)
        graph[mod] = deps - {mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lower_layers_do_not_import_the_stages():
    """Sources, formats, the import area, the run configuration's parts and the
    validator never reach up to the stages or the CLI."""
    graph = import_graph()
    stages = {"vespa_curation.harvest", "vespa_curation.qa", "vespa_curation.export",
              "vespa_curation.publish", "vespa_curation.cli", "vespa_curation.runs",
              "vespa_curation.diff"}
    low = [m for m in graph if m.count(".") and m.split(".")[1] in (
        "sources", "formats", "area", "validate", "epncore", "times", "rules",
        "quarantine", "parameter", "services", "geometry", "stcs", "incremental")]

    def reach(m, seen):
        for d in graph[m]:
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen
    for m in low:
        up = {d for d in reach(m, set()) if any(d == s or d.startswith(s + ".")
                                                for s in stages)}
        assert not up, f"{m} reaches {sorted(up)}"


#: A quoted rule code: ``family.name`` of a catalogued family.
_CODE = re.compile(r"""["']((?:source|chaincode|geometry|tfcat|stcs|pgsphere|epn|curator|"""
                   r"""internal|link)\.[a-z0-9_]+)["']""")


def test_every_rule_code_written_in_the_package_is_catalogued():
    found = {}
    for p in LIB.rglob("*.py"):
        for code in _CODE.findall(p.read_text(encoding="utf-8")):
            found.setdefault(code, p.name)
    assert len(found) >= 35
    missing = {c: f for c, f in found.items() if c not in rules.RULES}
    assert not missing
    assert all(r.text.endswith(".") for r in rules.RULES.values())


def test_an_uncatalogued_rule_cannot_reach_a_quarantine_table():
    from vespa_curation.quarantine import quarantine_frame
    with pytest.raises(rules.UnknownRule, match="epn.made_up"):
        quarantine_frame(["u"], ["1"], "map", ["epn.made_up"], ["why"])
    with pytest.raises(rules.UnknownRule, match="QA flag"):
        quarantine_frame(["u"], ["1"], "map", ["limb_clipped"], ["why"])


def test_functions_are_short():
    long = []
    for p in LIB.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = n.end_lineno - n.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(LIB)}:{n.name} ({length} lines)")
    assert not long


def test_services_are_discovered_from_their_folders_and_declarations():
    folders = sorted(p.name for p in (LIB / "services").iterdir()
                     if (p / "__init__.py").is_file())
    declared = sorted(p.stem for p in (ROOT / "parameters" / "collections").glob("*.yaml"))
    assert {"wind_waves", "juno_waves", "tfcat_akr"} <= set(declared)
    assert not set(folders) & set(declared)
    assert list(service_names()) == sorted(folders + declared)
    for name in service_names():
        svc = get_service(name)
        assert svc.name == name and svc.source.key


def test_nothing_reads_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    hits = []
    for rel in tracked:
        if not rel.endswith((".py", ".ipynb", ".toml", ".cfg", ".yml", ".yaml")) \
                and rel not in ("Makefile", ".ci/run"):
            continue
        text = (ROOT / rel).read_text(encoding="utf-8", errors="replace")
        if re.search(r"\.\./shared|parent\s*/\s*[\"']shared[\"']", text):
            hits.append(rel)
    assert hits == []
