"""tools.course.labconfig: a quiet JupyterLab for students, written into an environment in one step."""
import json

from tools.course import labconfig


def test_writes_the_quiet_settings(tmp_path):
    written = labconfig.write(tmp_path)
    page = json.loads((tmp_path / "etc/jupyter/labconfig/page_config.json").read_text())
    assert page["disabledExtensions"]["@jupyter/nbgrader"] is True
    assert page["disabledExtensions"]["@jupyterlab/apputils-extension:announcements"] is True
    for name in labconfig.SERVER_DISABLED:
        cfg = json.loads((tmp_path / f"etc/jupyter/jupyter_server_config.d/{name}.json").read_text())
        assert cfg == {"ServerApp": {"jpserver_extensions": {name: False}}}
    overrides = json.loads((tmp_path / "share/jupyter/lab/settings/overrides.json").read_text())
    assert overrides["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    assert len(written) == 2 + len(labconfig.SERVER_DISABLED)


def test_keeps_existing_settings(tmp_path):
    page = tmp_path / "etc/jupyter/labconfig/page_config.json"
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps({"disabledExtensions": {"other": True}, "lockedExtensions": {"x": True}}))
    labconfig.write(tmp_path)
    data = json.loads(page.read_text())
    assert data["disabledExtensions"]["other"] is True and data["lockedExtensions"] == {"x": True}
