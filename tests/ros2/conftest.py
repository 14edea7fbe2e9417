"""What the ROS 2 tests share: the network rule (discovery on localhost only, a ROS domain
per test, nothing sent on any interface but loopback, asserted) and the processes they
start (Python 3.6 compatible; the tests skip where rclpy is missing)."""

import os
import zlib
from pathlib import Path
from typing import Dict

import pytest

from support.ros_peers import ros_environment, transmitted

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def ros_env(request, monkeypatch) -> Dict[str, str]:
    """The environment of a test's ROS processes, set in this process too (for its own
    ROS nodes); the test fails if any interface but loopback sent a byte while it ran."""
    pytest.importorskip("rclpy", reason="rclpy is not installed (pip install 'fanet[ros2]')")
    domain = zlib.crc32(request.node.nodeid.encode())
    env = ros_environment(domain)
    for name in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "RMW_IMPLEMENTATION"):
        monkeypatch.setenv(name, env[name])
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), str(TESTS)])
    before = transmitted()
    yield env
    assert transmitted() == before, "a ROS test sent traffic on an interface other than loopback"
