"""Parameters are typed and a bad one is refused by name before any work."""
import pytest

from vespa_curation import paths
from vespa_curation.config import load_config
from vespa_curation.parameter import ParameterError


def test_defaults_and_override():
    p = load_config("hfc1ar", overrides=["workers=1", "limit=10"])
    assert p["workers"] == 1 and p["limit"] == 10
    assert p.decisions_path == paths.ROOT / "parameters/decisions/hfc1ar.csv"
    assert p.area.path == paths.ROOT / "outputs/dachs/hfc1ar"
    assert p["source"].startswith("sqlite:///")


@pytest.mark.parametrize("override,needle", [
    (["wokers=2"], "'wokers'"),
    (["workers=two"], "'workers'"),
    (["workers=0"], "'workers'"),
    (["source=mysql://x"], "'source'"),
    (["server_url=localhost"], "'server_url'"),
    (["full=maybe"], "'full'"),
    (["noequals"], "key=value"),
])
def test_bad_parameter_named(override, needle):
    with pytest.raises(ParameterError, match=needle):
        load_config("hfc1ar", overrides=override)


def test_unknown_service():
    with pytest.raises(ParameterError, match="unknown service 'hfc2ar'"):
        load_config("hfc2ar")


def test_missing_file(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        load_config("hfc1ar", tmp_path / "nope.yaml")


@pytest.mark.parametrize("given", ["sqlite:///my/hfc.sqlite", "ndjson:dump.ndjson",
                                   "files:archive", "odbc:conn.txt", "es:es.json"])
def test_a_relative_source_the_user_names_is_relative_to_the_working_directory(
        tmp_path, monkeypatch, given):
    """-p and -f sources resolve against the working directory (where the curator typed
    the command), the project's own defaults against the project root."""
    monkeypatch.chdir(tmp_path)
    prefix, rest = given[:given.index(":") + 1], given[given.index(":") + 1:]
    if prefix == "sqlite:":
        prefix, rest = "sqlite:///", given[len("sqlite:///"):]
    assert load_config("hfc1ar", overrides=[f"source={given}"])["source"] \
        == prefix + str(tmp_path / rest)
    f = tmp_path / "p.yaml"
    f.write_text(f"source: '{given}'\n")
    assert load_config("hfc1ar", file="p.yaml")["source"] == prefix + str(tmp_path / rest)


def test_absolute_and_environment_sources_stay_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for given in ("sqlite:////data/hfc.sqlite", "odbc:env:HFC_DSN", "files:/srv/nda"):
        assert load_config("hfc1ar", overrides=[f"source={given}"])["source"] == given


def test_the_default_source_is_relative_to_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = load_config("hfc1ar")["source"]
    assert src.startswith("sqlite:///" + str(paths.ROOT))


def test_the_notebooks_get_the_source_the_user_meant(tmp_path, monkeypatch):
    """The stage notebooks run in the project root: the relative source typed in another
    folder reaches them as the absolute path it resolved to, not re-read from there."""
    from vespa_curation.runs import notebook_parameters
    monkeypatch.chdir(tmp_path)
    cfg = load_config("hfc1ar", overrides=["source=sqlite:///mine.sqlite", "workers=1"])
    nb = notebook_parameters(cfg, tmp_path / "run", None,
                             ["source=sqlite:///mine.sqlite", "workers=1"])
    assert nb["overrides"] == ["workers=1", f"source=sqlite:///{tmp_path}/mine.sqlite"]
    monkeypatch.chdir(paths.ROOT)          # where papermill runs the kernel
    again = load_config("hfc1ar", nb["params_file"], nb["overrides"])
    assert again["source"] == cfg["source"]
    plain = notebook_parameters(load_config("hfc1ar"), tmp_path / "run", None, ["workers=1"])
    assert plain["overrides"] == ["workers=1"]


def test_a_url_where_a_path_belongs_is_not_made_a_path(tmp_path, monkeypatch):
    """Left as typed, so that the credential check still sees the user:password@."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match="'source'") as e:
        load_config("hfc1ar", overrides=["source=es:https://u:Pw0rd-x@es.example.org:9200"])
    assert "Pw0rd" not in str(e.value)
