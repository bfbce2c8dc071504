"""``dachs imp`` of one RD in ONE database transaction — run by DaCHS's own interpreter
(``python3 dachs_imp_atomic.py [--full] RD_ID``), never imported by vespa_curation.

DaCHS 2.7's ``dachs imp`` (gavo/user/importing.py, ``process``) makes each data element
of the RD with ``api.makeData(dd, connection=conn)``, whose ``runCommit=True`` default
commits that element's transaction when it ends (gavo/rsc/data.py): when a later
element fails (the links, the retractions), the earlier ones stay imported — epn_core
rows served without their links, and their files recorded as imported so that the next
nightly import skips them. ``-c`` (continue-bad) skips a failing source inside a
savepoint, ``-m`` only updates metadata: no option makes the whole RD one transaction.

Here ``api.makeData`` is called with ``runCommit=False``, so every data element runs in
the connection ``process`` opened and nothing is committed until ``process`` itself
commits, after the last element: a failure anywhere leaves the database as it was (the
connection is closed uncommitted: PostgreSQL rolls it back). ``--full`` also drops the
RD's tables first (``dachs drop``'s own code, ``_do_dropRD``) in that same transaction,
so a failed full rebuild leaves the previous tables served (their readers wait on the
drop's lock until the rebuild commits or fails, instead of seeing an empty table).

Everything else is ``dachs`` itself (its command line, messages and exit codes).
"""
import inspect
import sys


def _one_transaction(full: bool) -> None:
    from gavo import api
    from gavo.user import dropping, importing

    make = api.makeData
    if "runCommit" not in inspect.signature(make).parameters:
        sys.stderr.write("this DaCHS's makeData has no runCommit: it cannot import an RD "
                         "in one transaction\n")
        sys.exit(3)

    def make_uncommitted(dd, *args, **kwargs):
        kwargs["runCommit"] = False
        return make(dd, *args, **kwargs)

    api.makeData = make_uncommitted
    if not full:
        return
    connect, process = api.getDBConnection, importing.process
    shared = {}

    def admin_connection(profile, *args, **kwargs):
        if profile != "admin":
            return connect(profile, *args, **kwargs)
        if "conn" not in shared:
            shared["conn"] = connect(profile, *args, **kwargs)
        return shared["conn"]

    class DropOptions:
        force, dropAll, systemImport = False, False, False

    def drop_then_import(opts, args):
        api.getDBConnection = admin_connection
        dropping._do_dropRD(DropOptions(), args[0], admin_connection("admin"))
        return process(opts, args)

    importing.process = drop_then_import


def main(argv) -> None:
    full = bool(argv) and argv[0] == "--full"
    args = argv[1:] if full else argv
    _one_transaction(full)
    from gavo.user import cli
    sys.argv = ["dachs", "imp", *args]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
