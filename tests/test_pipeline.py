"""The harvest stage: the same rows whether chunks are mapped in process, in local worker
processes or on a Dask cluster; bad sources refused by name before anything is written."""
import sqlite3

import pandas as pd
import pytest

from vespa_curation import export, harvest, runfolder
from vespa_curation.config import load_config
from vespa_curation.sources import SourceError


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    from vespa_curation.hfc.sample import build_hfc_sample
    return build_hfc_sample(tmp_path_factory.mktemp("sample") / "hfc.sqlite")


def _params(db, tmp_path, **kw):
    over = {"source": f"sqlite:///{db}", "full": True, "chunk_size": 25,
            "dachs_inputs": str(tmp_path / "dachs"), "qa_gallery": 0}
    over.update(kw)
    return load_config("hfc1ar", overrides=over)


def _comparable(run_dir):
    rows = pd.read_parquet(run_dir / runfolder.ROWS)
    rows = rows.drop(columns=["creation_date", "modification_date", "release_date"])
    return rows.sort_values("granule_uid").reset_index(drop=True)


def test_chunks_never_split_an_image_and_executors_agree(sample_db, tmp_path):
    one = harvest.run(_params(sample_db, tmp_path, workers=1), tmp_path / "a")
    two = harvest.run(_params(sample_db, tmp_path, workers=2), tmp_path / "b")
    assert one["counts"] == two["counts"]
    assert one["counts"]["accepted"] > 50
    pd.testing.assert_frame_equal(_comparable(tmp_path / "a"), _comparable(tmp_path / "b"))
    # chunk_size 25 is smaller than the sample: several chunks, no image split
    # (a split image would reuse a granule_uid or lose the _<ID_AR> suffix rule)
    rows = _comparable(tmp_path / "a")
    assert rows["granule_uid"].is_unique


@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows(sample_db, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        rep = harvest.run(
            _params(sample_db, tmp_path, dask_scheduler=cluster.scheduler_address),
            tmp_path / "dask")
    ref = harvest.run(_params(sample_db, tmp_path, workers=1), tmp_path / "ref")
    assert rep["counts"] == ref["counts"]
    pd.testing.assert_frame_equal(_comparable(tmp_path / "dask"),
                                  _comparable(tmp_path / "ref"))


def test_missing_column_is_named_and_nothing_written(sample_db, tmp_path):
    broken = tmp_path / "broken.sqlite"
    src = sqlite3.connect(sample_db)
    dst = sqlite3.connect(broken)
    src.backup(dst)
    dst.execute("ALTER TABLE OBSERVATIONS DROP COLUMN CDELT2")
    dst.commit()
    dst.close()
    with pytest.raises(SourceError, match=r"OBSERVATIONS\.CDELT2"):
        harvest.run(_params(broken, tmp_path), tmp_path / "run")
    assert not (tmp_path / "run" / runfolder.ROWS).exists()


def test_missing_source_is_named(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        harvest.run(_params(tmp_path / "nope.sqlite", tmp_path), tmp_path / "run")


@pytest.mark.parametrize("bad_at", [0, 9, 10, 24, 39])
def test_text_that_is_not_utf8_is_read_once_in_order_with_replacement(tmp_path, bad_at):
    """SQLite text is decoded by sqlite3 in C; a value that is not UTF-8 makes the
    query be read again with replacement from the first row not yet yielded: every row
    comes once, in order, the bad one with U+FFFD (which the validator refuses)."""
    from vespa_curation.sources.sql import sqlite_source
    db = tmp_path / "latin1.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE T (ID INTEGER PRIMARY KEY, NAME TEXT)")
    con.executemany("INSERT INTO T VALUES (?, ?)", [(i, f"r{i}") for i in range(40)])
    con.execute("UPDATE T SET NAME = CAST(X'6d64695fe9' AS TEXT) WHERE ID = ?", (bad_at,))
    con.commit()
    con.close()
    src = sqlite_source(db)
    chunks = list(src.query("SELECT ID, NAME FROM T ORDER BY ID", chunksize=10))
    got = pd.concat(chunks, ignore_index=True)
    assert got["ID"].tolist() == list(range(40))
    assert got.loc[bad_at, "NAME"] == "mdi_\ufffd"
    assert got.drop(index=bad_at)["NAME"].tolist() == [f"r{i}" for i in range(40)
                                                       if i != bad_at]
    assert [len(c) for c in chunks] == [10, 10, 10, 10]
    src.close()


def test_a_record_that_crashes_mapping_is_isolated_not_fatal(sample_db, tmp_path,
                                                             monkeypatch):
    """A record no mapping rule foresaw (here: a prepare step that raises on one ID_AR,
    standing in for a bug) is quarantined with the exception; its chunk's other
    records are exported."""
    from vespa_curation.services import get_service
    svc = get_service("hfc1ar")
    real = svc.prepare

    def prepare(records, params):
        if (records["ID_AR"].astype(int) == 7).any():
            raise ZeroDivisionError("planted")
        return real(records, params)
    monkeypatch.setattr(svc, "prepare", prepare)
    rep = harvest.run(_params(sample_db, tmp_path, workers=1, chunk_size=40),
                           tmp_path / "run")
    q = runfolder.read_quarantine(tmp_path / "run")
    bad = q[q["rule"] == "internal.error"]
    assert list(bad["source_id"]) == ["7"]
    assert "ZeroDivisionError: planted" in bad["reason"].iloc[0]
    assert rep["counts"]["accepted"] == rep["counts"]["source_records"] - 1


def test_export_in_parts_equals_export_in_one(sample_db, tmp_path):
    """A run larger than export_batch is exported part by part (bounded memory): several
    data files whose rows are exactly those of a one-part export; the state and the
    manifest count every row; the next night exports nothing."""
    from conftest import manifest as read_manifest
    from vespa_curation.export.votable import read_votable

    def run(name, **kw):
        params = _params(sample_db, tmp_path / name, workers=1, **kw)
        run_dir = tmp_path / name / "runs" / f"{name}-1" / "hfc1ar"
        harvest.run(params, run_dir)
        return params, run_dir, export.run(params, run_dir)

    _, _, one = run("one")
    params, run_dir, parts = run("parts", export_batch=20)
    assert one["parts"] == 1 and parts["parts"] >= 3
    assert parts["exported"] == one["exported"] > 40

    def table(name):
        area = tmp_path / name / "dachs" / "hfc1ar"
        man = read_manifest(area)
        files = sorted(r for r in man["files"] if r.startswith("data/"))
        t = pd.concat([read_votable(area / f) for f in files], ignore_index=True)
        t = t.drop(columns=["creation_date", "modification_date", "release_date"])
        return man, files, t.sort_values("granule_uid").reset_index(drop=True)

    man1, files1, t1 = table("one")
    man2, files2, t2 = table("parts")
    assert len(files1) == 1 and len(files2) == parts["parts"]
    assert man2["total_rows"] == man1["total_rows"] == len(t2)
    assert man2["runs"][-1]["rows"] == len(t2)
    pd.testing.assert_frame_equal(t1, t2)
    assert not list(run_dir.parent.glob(runfolder.EXPORT_ROWS))
    assert not list(run_dir.glob(runfolder.EXPORT_ROWS))
    assert not list(run_dir.glob("*.part"))
    # the same night again: nothing new, nothing written
    again = run_dir.parent.parent / "parts-2" / "hfc1ar"
    params2 = dict(params, full=False)
    harvest.run(params2, again)
    rep = export.run(params2, again)
    assert rep["exported"] == rep["new"] == rep["changed"] == 0 and not rep["written"]


def test_export_parts_written_by_workers_are_the_same_files(sample_db, tmp_path,
                                                             monkeypatch):
    """With workers, the data files of a run in parts are written by worker processes:
    the same bytes as written in process; a part that fails in a worker fails the export
    with its reason and leaves the import area as it was."""
    import hashlib
    import os
    from conftest import manifest as read_manifest
    from vespa_curation.export import ExportError, writer as writer_mod

    run_dir = tmp_path / "runs" / "r-1" / "hfc1ar"
    harvest.run(_params(sample_db, tmp_path / "h", workers=1), run_dir)

    def export_with(name, workers):
        params = _params(sample_db, tmp_path / name, workers=workers, export_batch=20)
        assert params["coverage"]
        rep = export.run(params, run_dir)
        area = tmp_path / name / "dachs" / "hfc1ar"
        listed = read_manifest(area)["files"]
        # the manifest's checksums (the data files' taken by the writers) are the files'
        for f, info in listed.items():
            assert (info["sha256"], info["bytes"]) == (
                hashlib.sha256((area / f).read_bytes()).hexdigest(),
                (area / f).stat().st_size), f
        return rep, {f: hashlib.sha256((area / f).read_bytes()).hexdigest()
                     for f in listed
                     if f != "q.rd"}    # (the RD holds the export's creation time)

    rep1, files1 = export_with("in_process", 1)
    rep2, files2 = export_with("workers", 2)
    assert rep1["parts"] == rep2["parts"] >= 3
    assert {"coverage/smoc.fits", "coverage/tmoc.fits"} <= set(files1)
    assert files1 == files2     # data files, coverage, state

    real = writer_mod.write_epn_votable_slices

    def fail_third(slices, names, path, *a, **kw):
        if str(path).endswith("-0003.vot"):
            raise ExportError(f"planted: part 3 cannot be written (pid {os.getpid()})")
        return real(slices, names, path, *a, **kw)
    # the writers stream their part (TABLEDATA); the patch is inherited by the fork
    monkeypatch.setattr(writer_mod, "write_epn_votable_slices", fail_third)
    with pytest.raises(ExportError, match="planted: part 3") as err:
        export.run(_params(sample_db, tmp_path / "failing", workers=2, export_batch=20),
                   run_dir)
    assert f"(pid {os.getpid()})" not in str(err.value)     # raised in a writer process
    area = tmp_path / "failing" / "dachs"
    assert not list(area.rglob("*.vot")) and not list(area.rglob("manifest.json")), \
        sorted(str(p.relative_to(area)) for p in area.rglob("*"))


def test_a_part_that_fails_its_decisions_on_a_writer_fails_the_export_cleanly(
        sample_db, tmp_path, monkeypatch):
    """The parts of a run are decided (decisions, content hashes, links) on the writer
    processes: a part failing there fails the export with its reason, raised from that
    process; nothing is written to the import area and no staged rows are left."""
    import os
    from vespa_curation.export import stage as stage_mod

    run_dir = tmp_path / "runs" / "r-1" / "hfc1ar"
    harvest.run(_params(sample_db, tmp_path / "h", workers=1), run_dir)
    real = stage_mod.changed_rows
    calls = []

    def fail_on_second_part(service, rows, area, now=None):
        calls.append(1)
        if str(rows["granule_uid"].iloc[0]) == second_first_uid:
            raise ValueError(f"planted: part 2 cannot be decided (pid {os.getpid()})")
        return real(service, rows, area, now=now)
    parts = runfolder.row_group_parts(run_dir / runfolder.ROWS, 20)
    assert len(parts) >= 3
    second_first_uid = str(parts[1].read(["granule_uid"])["granule_uid"].iloc[0])
    monkeypatch.setattr(stage_mod, "changed_rows", fail_on_second_part)
    with pytest.raises(ValueError, match="planted: part 2") as err:
        export.run(_params(sample_db, tmp_path / "failing", workers=2, export_batch=20),
                   run_dir)
    assert f"(pid {os.getpid()})" not in str(err.value)     # raised in a writer process
    assert not calls    # (the parts were decided in the writers, not in this process)
    area = tmp_path / "failing" / "dachs"
    assert not list(area.rglob("*.vot")) and not list(area.rglob("manifest.json"))
    assert not list(run_dir.glob(runfolder.EXPORT_ROWS))
    assert not list(run_dir.glob("*.part"))
