"""Compose files: every key either supported or refused by name, and a project brought up and down
through the real engine as one unit, with traffic between its services."""

from __future__ import annotations

import time

import pytest

from netcore.docker.compose import PROJECT_LABEL, compose_plan
from netcore.docker.manage import docker_request
from netcore.docker.read import DockerReader
from netcore.errors import InvalidSpec, NotFound
from tests.conftest import RUN

IMAGE = "switchboard/busybox:latest"


def classic(project: str, front: str) -> str:
    """Two services with static addresses on an external user-defined bridge, one publishing port 80."""
    return f"""\
name: {project}
services:
  web:
    image: {IMAGE}
    command: httpd -f -p 80 -h /etc
    ports: ["127.0.0.1:18088:80"]
    networks:
      front: {{ipv4_address: 198.19.221.10}}
  app:
    image: {IMAGE}
    command: ["sleep", "600"]
    depends_on: [web]
    networks:
      front:
        ipv4_address: 198.19.221.20
        aliases: [client]
networks:
  front:
    external: true
    name: {front}
"""


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("services: {web: {image: x, volumes: [a]}}", "services.web.volumes", "not supported"),
        ("services: {web: {image: x}}\nsecrets: {}", "file.secrets", "not supported"),
        ("services: {web: {image: x, networks: [back]}}", "services.web.networks.back", "not a network"),
        ("services: {web: {image: x, network_mode: 'service:db'}}", "services.web.network_mode", "not in"),
        ("services: {a: {image: x, depends_on: [b]}, b: {image: x, depends_on: [a]}}", "services.a", "it"),
        ("services: {web: {image: x, ports: ['80:99999']}}", "services.web.ports[0]", "not in"),
        ("services: {web: {image: x}}\nnetworks: {n: {ipam: {config: [{subnet: 198.18.0.0/33}]}}}",
         "networks.n.ipam.config[0].subnet", "CIDR"),
        ("services: {web: {image: x, network_mode: host, networks: [a]}}\nnetworks: {a: {}}",
         "services.web.network_mode", "cannot be given with networks"),
        ("services: {}", "services", "at least one service"),
        ("x: &a 1\nservices: {web: {image: *a}}", "file", "anchors"),
    ],
)  # fmt: skip
def test_what_is_not_supported_is_refused_by_name(text, key, words):
    with pytest.raises(InvalidSpec) as caught:
        compose_plan(text, project="demo")
    assert caught.value.obj == key and words in str(caught.value), caught.value


def test_the_plan_makes_default_network_names_labels_and_start_order():
    text = """\
services:
  side: {image: x, network_mode: "service:web"}
  web: {image: x, ports: ["8080-8081:80-81", 53/udp]}
"""
    plan = compose_plan(text, project="shop")
    (default,) = plan["networks"]
    assert default["name"] == "shop_default" and default["labels"][PROJECT_LABEL] == "shop"
    assert [s["service"] for s in plan["services"]] == ["web", "side"]  # side joins web's namespace
    web, side = (s["request"] for s in plan["services"])
    assert web["name"] == "shop-web-1" and web["network"] == "shop_default" and web["aliases"] == ["web"]
    assert [(p["host_port"], p["container_port"], p["protocol"]) for p in web["ports"]] == [
        (8080, 80, "tcp"), (8081, 81, "tcp"), (None, 53, "udp")]  # fmt: skip
    assert side["mode"] == "container" and side["container"] == "shop-web-1"


def test_a_project_comes_up_talks_and_goes_down_as_one_unit(docker_engine):
    front, project = f"sb{RUN}cf", f"sb{RUN}proj"
    docker_request(docker_engine, action="network.create",
                   body={"name": front, "subnets": [{"subnet": "198.19.221.0/24"}],
                         "options": {"com.docker.network.bridge.enable_ip_masquerade": "false"}})  # fmt: skip
    result = docker_request(
        docker_engine, action="compose.up", body={"project": "ignored", "file": classic(project, front)}
    )
    assert result["project"] == project and len(result["containers"]) == 2 and result["networks"] == []

    state = DockerReader(docker_engine).read()
    mine = {c.service: c for c in state.containers.values() if c.project == project}
    assert set(mine) == {"web", "app"}
    assert mine["web"].endpoints[0].ipv4 == "198.19.221.10/24" and mine["web"].ports[0].host_port == 18088
    assert {"app", "client"} <= set(mine["app"].endpoints[0].aliases)
    app = docker_engine.containers.get(mine["app"].id)
    for _ in range(50):  # httpd listens a moment after its container starts
        got = app.exec_run(["wget", "-q", "-O", "-", "http://web/hostname"])  # by service name: Docker's DNS
        if got.exit_code == 0:
            break
        time.sleep(0.1)
    assert got.exit_code == 0 and got.output.strip() == mine["web"].hostname.encode(), got

    down = docker_request(docker_engine, action="compose.down", body={"project": project})
    assert len(down["containers"]) == 2 and down["networks"] == []  # the external network stays
    assert not docker_engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    assert docker_engine.networks.get(front)
    with pytest.raises(NotFound, match="no container or network belongs"):
        docker_request(docker_engine, action="compose.down", body={"project": project})


def test_a_project_that_fails_half_way_leaves_nothing(docker_engine):
    project = f"sb{RUN}half"
    text = f"""\
services:
  one:
    image: {IMAGE}
    command: sleep 600
    networks: {{mine: {{ipv4_address: 198.19.222.5}}}}
  two:
    image: {IMAGE}
    command: sleep 600
    depends_on: [one]
    networks: {{mine: {{ipv4_address: 198.19.222.5}}}}
networks:
  mine:
    driver_opts: {{com.docker.network.bridge.enable_ip_masquerade: "false"}}
    ipam: {{config: [{{subnet: 198.19.222.0/24}}]}}
"""
    with pytest.raises(Exception, match="Address already in use"):
        docker_request(docker_engine, action="compose.up", body={"project": project, "file": text})
    label = {"label": f"{PROJECT_LABEL}={project}"}
    assert not docker_engine.containers.list(all=True, filters=label)
    assert not docker_engine.networks.list(filters=label)
