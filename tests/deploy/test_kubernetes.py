"""deploy/kubernetes/: valid against the Kubernetes schemas (offline, kubernetes-validate), and
holding what a cluster operator expects, so that no edit drops it silently."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
HA, SINGLE = ROOT / "deploy/kubernetes/ocigate.yaml", ROOT / "deploy/kubernetes/ocigate-single.yaml"
# the oldest Kubernetes the manifests name (native preStop sleep, unhealthyPodEvictionPolicy GA)
# and the newest one kubernetes-validate knows
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
# the planned defaults of OCIGATE_DRAIN_DELAY / OCIGATE_DRAIN_TIMEOUT (issue 13, part 3)
DRAIN_DEFAULTS = {"OCIGATE_DRAIN_DELAY": 5, "OCIGATE_DRAIN_TIMEOUT": 30}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def the(path: Path, kind: str) -> dict[str, Any]:
    found = [doc for doc in documents(path) if doc["kind"] == kind]
    assert len(found) == 1, f"{path.name}: {len(found)} {kind}s"
    return found[0]


def named(path: Path, kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in documents(path) if doc["kind"] == kind and doc["metadata"]["name"] == name)


def pod_volume(path: Path, container: dict[str, Any], mount_path: str) -> dict[str, Any]:
    """The volume the container mounts at MOUNT_PATH."""
    name = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}[mount_path]
    volumes = the(path, "Deployment")["spec"]["template"]["spec"]["volumes"]
    return next(volume for volume in volumes if volume["name"] == name)


def image_uid() -> int:
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "deploy/image/Dockerfile").read_text(), re.M)
    assert user is not None
    return int(user.group(1))


def containers(path: Path) -> Iterator[dict[str, Any]]:
    yield from the(path, "Deployment")["spec"]["template"]["spec"]["containers"]


def env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def test_there_are_the_two_variants() -> None:
    assert MANIFESTS == [SINGLE, HA]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_every_object_is_valid_for_kubernetes(path: Path, version: str) -> None:
    for doc in documents(path):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {error.message}")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_pods_meet_the_restricted_pod_security_standard(path: Path) -> None:
    pod = the(path, "Deployment")["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == image_uid()
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    for container in containers(path):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security.get("privileged", False) is False


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_the_writable_paths_are_volumes(path: Path) -> None:
    """A read-only root: /tmp and the data dir are volumes (emptyDir, or the PersistentVolume)."""
    for container in containers(path):
        data_dir = env(container).get("OCIGATE_DATA_DIR", "/data")  # the image's default
        assert set(pod_volume(path, container, data_dir)) & {"emptyDir", "persistentVolumeClaim"}
        assert "emptyDir" in pod_volume(path, container, "/tmp")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_tls_comes_from_a_secret_and_the_probes_use_it(path: Path) -> None:
    pod = the(path, "Deployment")["spec"]["template"]["spec"]
    secrets = {volume["name"] for volume in pod["volumes"] if "secret" in volume}
    for container in containers(path):
        mounts = {m["mountPath"]: m for m in container["volumeMounts"] if m["name"] in secrets}
        for setting in ("OCIGATE_TLS_CERT", "OCIGATE_TLS_KEY"):
            file = Path(env(container)[setting])
            assert str(file.parent) in mounts, f"{setting} is not a file of a mounted Secret"
            assert mounts[str(file.parent)]["readOnly"] is True
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_the_grace_period_covers_the_drain(path: Path) -> None:
    """Killed only after the preStop sleep, the drain delay and the drain timeout have run out."""
    pod = the(path, "Deployment")["spec"]["template"]["spec"]
    for container in containers(path):
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = sum(int(env(container).get(name, default)) for name, default in DRAIN_DEFAULTS.items())
        assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_resources_are_requested_and_memory_is_limited(path: Path) -> None:
    for container in containers(path):
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert "memory" in resources["limits"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_prometheus_scrapes_metrics_on_the_main_port(path: Path) -> None:
    template = the(path, "Deployment")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {port["containerPort"] for container in containers(path) for port in container["ports"]}
    assert int(annotations["prometheus.io/port"]) in ports


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_the_service_reaches_the_pods(path: Path) -> None:
    deployment, service = the(path, "Deployment"), the(path, "Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    names = {port["name"] for container in containers(path) for port in container["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_the_image_is_this_version(path: Path) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert [c["image"] for c in containers(path)] == [f"ocigate:{version}"]


def test_ha_replicas_spread_and_stay_available() -> None:
    deployment = the(HA, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    keys = {c["topologyKey"]: c for c in spread}
    assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= set(keys)
    assert keys["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = the(HA, "PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["maxUnavailable"] == 1


def test_ha_replicas_share_metadata_blobs_limits_and_keys() -> None:
    (container,) = containers(HA)
    values = env(container)
    assert values["OCIGATE_BLOB_STORE"] == "s3"
    assert values["OCIGATE_S3_SSE"] != "none"
    (source,) = container["envFrom"]
    secrets = named(HA, "Secret", source["secretRef"]["name"])["stringData"]
    assert secrets["OCIGATE_METADATA_URL"].startswith("postgresql://")
    assert secrets["OCIGATE_REDIS_URL"].startswith("redis://")
    keys = pod_volume(HA, container, values["OCIGATE_KEYS_DIR"])["secret"]["secretName"]
    assert all(name.endswith(".pem") for name in named(HA, "Secret", keys)["stringData"])


def test_single_node_keeps_its_data_on_a_persistent_volume() -> None:
    deployment = the(SINGLE, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two pods on one SQLite
    (container,) = containers(SINGLE)
    assert not {"OCIGATE_METADATA_URL", "OCIGATE_BLOB_STORE", "OCIGATE_REDIS_URL"} & set(env(container))
    volume = pod_volume(SINGLE, container, env(container)["OCIGATE_DATA_DIR"])
    claim = the(SINGLE, "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert not [doc for doc in documents(SINGLE) if doc["kind"] == "PodDisruptionBudget"]
