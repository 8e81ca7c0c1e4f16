"""A lock made without some of its parts (mesh.without): a model with no camera, no
radio, no app or no Home Assistant runs none of their services, is healthy without them,
and never waits on them."""

from __future__ import annotations

import pytest

from ops import supervisor_conf
from proto import config as configuration
from proto import supervisor_rpc
from proto.biometric import EnrolDone
from proto.layout import OPTIONAL, SERVICES, Layout
from proto.policy import Audit, Decision
from services.policy.doorbell import NO_CAMERA
from tests.meshkit import ADMIN_CODE, LEAN, is_type, made_without, running


def config_of(tmp_path, text: str) -> dict:
    path = tmp_path / "lockmesh.toml"
    path.write_text(text)
    return configuration.load(path)


def test_mesh_without_names_only_optional_parts(tmp_path):
    assert configuration.services(configuration.load(None)) == SERVICES
    fitted = configuration.services(config_of(tmp_path, made_without("", ("ble", "face"))))
    assert fitted == tuple(s for s in SERVICES if s not in ("ble", "face"))
    for wrong in ('["policy"]', '["motor"]', '["watchdog"]', '["camera"]', "[1]"):
        with pytest.raises(configuration.ConfigError, match="may name only " + OPTIONAL[0]):
            config_of(tmp_path, f"[mesh]\nwithout = {wrong}\n")
    with pytest.raises(configuration.ConfigError, match="must be list"):
        config_of(tmp_path, '[mesh]\nwithout = "face"\n')


def test_made_without_keeps_a_mesh_table_whole(tmp_path):
    text = made_without('[mesh]\nup_timeout_s = 15.0\n[board]\nkind = "sim"\n', ("face",))
    config = config_of(tmp_path, text)
    assert (config["mesh"]["without"], config["mesh"]["up_timeout_s"]) == (["face"], 15.0)


def test_supervisord_runs_no_program_for_a_part_left_out(tmp_path):
    layout = Layout(tmp_path / "data")
    layout.data.mkdir()
    layout.config_file.write_text(made_without("", LEAN))
    rendered = supervisor_conf.render(layout)
    for name in SERVICES:
        assert (f"[program:{name}]" in rendered) == (name not in LEAN), name


@pytest.mark.slow
def test_a_lock_without_optional_parts_is_healthy_waits_on_none_and_says_what_it_lacks(tmp_path):
    with running(tmp_path / "data", without=LEAN) as lock:
        status = lock.status()
        assert status["healthy"] and set(status["services"]) == set(SERVICES) - set(LEAN)
        assert not set(LEAN) & set(supervisor_rpc.processes(lock.layout.run))

        watch = lock.watcher()
        try:
            lock.press("touch", "bell")  # no snapshot asked of a camera that is not there
            rung = watch.wait_for(
                lambda e: isinstance(e.body, Audit) and e.body.kind == "doorbell"
            ).body
            assert rung.detail == NO_CAMERA
            assert lock.status()["services"]["motor"]["detail"]["chimes"] == 1

            for kind, part in (("face", "camera"), ("finger", "fingerprint module")):
                refused = lock.cli("enrol", kind, "001", "--timeout", "5", check=False)
                said = refused.stdout + refused.stderr
                assert refused.returncode != 0 and f"this lock has no {part}" in said, said
            assert not [e for e in watch.seen if isinstance(e.body, EnrolDone)]

            watch.seen.clear()
            lock.press("touch", *ADMIN_CODE, "ok")
            assert watch.wait_for(is_type(Decision, method="pin")).body.granted
        finally:
            watch.close()
