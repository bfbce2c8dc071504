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
