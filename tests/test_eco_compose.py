"""docker-compose.yml and the collector config agree (ports, service names, pipeline wiring),
checked without Docker; the `spanchain serve` service's settings are checked against our CLI."""

import re
import urllib.parse
from importlib.metadata import entry_points

import pytest
import yaml

from eco_support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
COLLECTOR = ROOT / "deploy" / "collector" / "otel-collector.yaml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def collector():
    return yaml.safe_load(COLLECTOR.read_text())


def _container_ports(service: dict) -> set[int]:
    """Ports other containers can reach: published container ports and `expose`."""
    ports = set()
    for entry in service.get("ports", []):
        ports.add(int(str(entry).split(":")[-1].split("/")[0]))
    for entry in service.get("expose", []):
        ports.add(int(str(entry).split("/")[0]))
    return ports


def _published(service: dict) -> set[int]:
    return {int(str(e).split(":")[-1].split("/")[0]) for e in service.get("ports", [])}


def _host_port(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url if "://" in url else f"grpc://{url}")
    return parsed.hostname, parsed.port


def _env_default(value: str) -> str:
    """`${VAR:-default}` → default (what compose uses when VAR is unset)."""
    m = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", value)
    return m.group(2) if m else value


def test_every_service_is_runnable_and_references_exist(compose):
    services = compose["services"]
    assert {"otel-collector", "jaeger", "spanchain-serve", "aim-server", "aim-ui", "sagemaker-emulator"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dep in service.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown {dep}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose.get("volumes", {}), f"{name} uses undeclared volume {source}"
    build = services["spanchain-serve"]["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_collector_config_is_mounted_where_the_command_reads_it(compose):
    service = compose["services"]["otel-collector"]
    [mount] = [v for v in service["volumes"] if "otel-collector.yaml" in v]
    source, target = mount.split(":")[:2]
    assert (ROOT / source).resolve() == COLLECTOR
    assert f"--config={target}" in service["command"]
    assert "contrib" in service["image"]


def test_collector_receives_otlp_on_the_published_ports(compose, collector):
    protocols = collector["receivers"]["otlp"]["protocols"]
    published = _published(compose["services"]["otel-collector"])
    for proto in ("grpc", "http"):
        host, port = _host_port(protocols[proto]["endpoint"])
        assert host == "0.0.0.0", f"{proto} receiver must listen on all interfaces inside the container"
        assert port in published
    health_port = _host_port(collector["extensions"]["health_check"]["endpoint"])[1]
    assert health_port in published


def test_every_collector_exporter_points_at_a_service_port(compose, collector):
    services = compose["services"]
    for name, exporter in collector["exporters"].items():
        host, port = _host_port(exporter["endpoint"])
        assert host in services, f"{name} → unknown service {host}"
        assert port in _container_ports(services[host]), f"{name} → {host}:{port} not exposed"


def test_pipeline_wiring(collector):
    pipeline = collector["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        defined = set(collector.get(kind, {}))
        used = set(pipeline.get(kind, []))
        assert used <= defined, f"undefined {kind}: {used - defined}"
        assert defined <= used, f"{kind} defined but unused: {defined - used}"
    assert pipeline["processors"][0] == "memory_limiter"  # must come first to protect the collector
    assert {"otlp/jaeger", "otlphttp/spanchain"} <= set(pipeline["exporters"])
    assert set(collector["service"]["extensions"]) == set(collector["extensions"])


def test_collector_and_serve_share_the_token_and_port(compose, collector):
    services = compose["services"]
    serve_env = services["spanchain-serve"]["environment"]
    collector_env = services["otel-collector"]["environment"]
    exporter = collector["exporters"]["otlphttp/spanchain"]
    for var in re.findall(r"\$\{env:(\w+)\}", yaml.safe_dump(collector)):
        assert var in collector_env, f"collector config needs {var} in the collector's environment"
    assert exporter["headers"]["authorization"] == "Bearer ${env:SPANCHAIN_SERVE_TOKEN}"
    assert collector_env["SPANCHAIN_SERVE_TOKEN"] == serve_env["SPANCHAIN_SERVE_TOKEN"]
    assert _host_port(exporter["endpoint"]) == ("spanchain-serve", 4318)


def test_serve_service_settings_are_valid_for_our_cli(compose):
    from spanchain.cli.commands import _build_parser
    from spanchain.serve.app import options_from

    service = compose["services"]["spanchain-serve"]
    args = _build_parser().parse_args(service["command"])
    options = options_from(args)
    assert (options.host, options.port) == ("0.0.0.0", 4318)
    env = service["environment"]
    installed = {ep.name for ep in entry_points(group="opentelemetry_traces_exporter")}
    assert set(env["SPANCHAIN_SERVE_EXPORTERS"].split(",")) <= installed
    aim_host, aim_port = _host_port(env["OTEL_EXPORTER_AIM_REPO"].replace("aim://", "http://"))
    assert f"--port {aim_port}" in " ".join(compose["services"][aim_host]["command"])
    assert aim_port in _container_ports(compose["services"][aim_host])
    aws_host, aws_port = _host_port(env["AWS_ENDPOINT_URL"])
    assert aws_port in _container_ports(compose["services"][aws_host])
    assert _env_default(env["SPANCHAIN_SERVE_TOKEN"])
    healthcheck = " ".join(service["healthcheck"]["test"])
    assert "127.0.0.1:4318/health" in healthcheck


def test_aim_ui_reads_the_repository_the_server_writes(compose):
    server, ui = compose["services"]["aim-server"], compose["services"]["aim-ui"]
    server_volume, ui_volume = server["volumes"][0].split(":"), ui["volumes"][0].split(":")
    assert server_volume == ui_volume
    repo = server_volume[1]
    assert f"--repo {repo}" in server["command"][0] and f"--repo {repo}" in ui["command"][0]
    assert "aim up" in ui["command"][0] and 43800 in _published(ui)


# --- the scale-out profile ----------------------------------------------------------------------

SCALE_OUT = ROOT / "deploy" / "collector" / "otel-collector-scale-out.yaml"
RELAY = ROOT / "deploy" / "collector" / "relay.yaml"


def _config_mounted(service: dict, config_path) -> None:
    [mount] = [v for v in service["volumes"] if v.split(":")[0].endswith(config_path.name)]
    source, target = mount.split(":")[:2]
    assert (ROOT / source).resolve() == config_path
    assert f"--config={target}" in service["command"]


def _pipeline_is_wired(config: dict) -> dict:
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline.get(kind, [])) == set(config.get(kind, {})), kind
    assert pipeline["processors"][0] == "memory_limiter"
    return pipeline


def test_scale_out_profile_routes_each_trace_to_one_serve_replica(compose):
    services = compose["services"]
    lb_config, relay_config = yaml.safe_load(SCALE_OUT.read_text()), yaml.safe_load(RELAY.read_text())
    lb = services["lb-collector"]
    _config_mounted(lb, SCALE_OUT)
    _pipeline_is_wired(lb_config)
    _pipeline_is_wired(relay_config)
    balancer = lb_config["exporters"]["loadbalancing"]
    assert balancer["routing_key"] == "traceID"  # all spans of a trace reach one replica
    assert "otlp" in balancer["protocol"]  # the only protocol the loadbalancing exporter speaks
    relays = balancer["resolver"]["static"]["hostnames"]
    replicas = set()
    for entry in relays:
        host, port = entry.split(":")
        relay = services[host]
        assert "scale-out" in relay["profiles"] and port == "4317" and 4317 in _container_ports(relay)
        assert _host_port(relay_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]) == ("0.0.0.0", 4317)
        _config_mounted(relay, RELAY)
        # the relay forwards to its own replica, with the replica's token
        env = relay["environment"]
        for var in re.findall(r"\$\{env:(\w+)\}", yaml.safe_dump(relay_config)):
            assert var in env, f"{host} needs {var}"
        target = services[env["SPANCHAIN_SERVE_HOST"]]
        assert 4318 in _container_ports(target) and "scale-out" in target["profiles"]
        assert _env_default(env["SPANCHAIN_SERVE_TOKEN"]) == _env_default(target["environment"]["SPANCHAIN_SERVE_TOKEN"])
        assert env["SPANCHAIN_SERVE_HOST"] in relay["depends_on"] and host in lb["depends_on"]
        replicas.add(env["SPANCHAIN_SERVE_HOST"])
    assert len(replicas) == len(relays) == 3  # one relay per replica, none shared
    exporter = relay_config["exporters"]["otlphttp/spanchain"]
    assert exporter["endpoint"] == "http://${env:SPANCHAIN_SERVE_HOST}:4318"
    assert exporter["headers"]["authorization"] == "Bearer ${env:SPANCHAIN_SERVE_TOKEN}"
    # the front collector's published ports do not clash with the default stack's
    lb_ports = {int(str(p).split(":")[0]) for p in lb["ports"]}
    other_ports = {int(str(p).split(":")[0]) for name, s in services.items() if name != "lb-collector"
                   for p in s.get("ports", [])}
    assert lb_ports and other_ports and not lb_ports & other_ports


def test_scale_out_replicas_share_the_backends_under_their_own_names(compose):
    from spanchain.cli.commands import _build_parser
    from spanchain.serve.app import options_from

    services = compose["services"]
    base = services["spanchain-serve"]
    names = []
    for name in ("spanchain-serve-1", "spanchain-serve-2", "spanchain-serve-3"):
        replica = services[name]
        assert replica["build"] == base["build"] and replica["command"] == base["command"]
        options = options_from(_build_parser().parse_args(replica["command"]))
        assert (options.host, options.port) == ("0.0.0.0", 4318)
        env = replica["environment"]
        for key in ("OTEL_EXPORTER_AIM_REPO", "OTEL_EXPORTER_SAGEMAKER_EXPERIMENT", "AWS_ENDPOINT_URL", "SPANCHAIN_SERVE_EXPORTERS"):
            assert env[key] == base["environment"][key], key  # one Aim server, one experiment
        assert env["OTEL_EXPORTER_AIM_REPO"].startswith("aim://")  # a server, not a shared local folder
        names.append(env["SPANCHAIN_SERVE_REPLICA"])
    assert len(set(names)) == 3
    assert "scale-out" not in base.get("profiles", [])  # the default stack is unchanged
