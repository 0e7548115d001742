"""The Kubernetes manifests in docker/k8s: valid objects, consistent with each other and the app.

Each object is checked offline against the Kubernetes OpenAPI schemas bundled with
`kubernetes-validate`, in strict mode (unknown fields are errors), for the oldest Kubernetes
version the manifests support and for the newest the library knows. The rest checks what a
schema cannot: that the objects point at each other, at the container's port and at the
gateway's routes and variables.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from azproxy.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "docker" / "k8s"
SETTINGS_SOURCE = ROOT / "azproxy" / "settings.py"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
NOT_IN_KUSTOMIZATION = {"kustomization.yaml", "secret.example.yaml"}

# The oldest Kubernetes the manifests are written for: PodDisruptionBudget's
# unhealthyPodEvictionPolicy and topologySpreadConstraints' matchLabelKeys are beta from 1.27.
OLDEST_VERSION = "1.27.0"
KUBERNETES_VERSIONS = (OLDEST_VERSION, kubernetes_validate.latest_version())

Manifest = dict[str, Any]


def _load(path: Path) -> list[Manifest]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert documents, f"{path.name} holds no YAML document"
    for doc in documents:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
    return documents


MANIFEST_FILES = sorted(K8S.glob("*.yaml"))
OBJECTS: list[tuple[str, Manifest]] = [
    (path.name, doc)
    for path in MANIFEST_FILES
    if path.name != "kustomization.yaml"
    for doc in _load(path)
]


def _one(kind: str) -> Manifest:
    found = [doc for _, doc in OBJECTS if doc["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind} in docker/k8s, found {len(found)}"
    return found[0]


def _container(deployment: Manifest) -> Manifest:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Manifest = containers[0]
    return container


def _container_port(container: Manifest, port: int | str) -> int:
    """The container port that a probe's or a Service's port (number or name) designates."""
    for declared in container["ports"]:
        if port in (declared["containerPort"], declared.get("name")):
            number: int = declared["containerPort"]
            return number
    raise AssertionError(f"port {port!r} is not declared by container {container['name']!r}")


def _prestop_seconds(container: Manifest) -> float:
    """How long the preStop hook sleeps: `sleep N`, `python -c '...time.sleep(N)'` or sleep."""
    hook = container["lifecycle"]["preStop"]
    if "sleep" in hook:  # the native sleep action (Kubernetes 1.30+)
        return float(hook["sleep"]["seconds"])
    command = " ".join(hook["exec"]["command"])
    match = re.fullmatch(r"sleep (\d+(?:\.\d+)?)", command) or re.search(
        r"time\.sleep\((\d+(?:\.\d+)?)\)", command
    )
    assert match, f"cannot tell how long the preStop hook {command!r} sleeps"
    return float(match.group(1))


def _environment() -> dict[str, str]:
    """What the container's environment would be: the ConfigMap plus the example Secret."""
    env: dict[str, str] = dict(_one("ConfigMap")["data"])
    env.update(_one("Secret")["stringData"])
    return env


def _settings() -> Settings:
    return load_settings(_environment())


# --- the schema -----------------------------------------------------------------------------


def test_every_manifest_file_is_loaded() -> None:
    names = {path.name for path in MANIFEST_FILES}
    assert {
        "configmap.yaml",
        "deployment.yaml",
        "hpa.yaml",
        "kustomization.yaml",
        "pdb.yaml",
        "secret.example.yaml",
        "service.yaml",
    } <= names
    kinds = sorted(doc["kind"] for _, doc in OBJECTS)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("filename", "manifest"), OBJECTS, ids=[f"{name}:{doc['kind']}" for name, doc in OBJECTS]
)
def test_manifest_matches_the_kubernetes_schema(
    filename: str, manifest: Manifest, version: str
) -> None:
    validated = kubernetes_validate.validate(manifest, version, strict=True)
    assert validated == ".".join(version.split(".")[:2]), f"{filename} checked against {validated}"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "template", "spec", "containers", 0, "livenesProbe"), {}),
        (
            (
                "spec",
                "template",
                "spec",
                "containers",
                0,
                "securityContext",
                "readOnlyRootFileSystem",
            ),
            True,
        ),
        (("spec", "template", "spec", "terminationGracePeriodSeconds"), "150"),
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), None),
        (("spec", "selector"), None),
    ],
    ids=["typo", "nested-typo", "wrong-type", "missing-port", "missing-selector"],
)
def test_the_schema_check_rejects_a_broken_deployment(
    path: tuple[str | int, ...], value: object
) -> None:
    # Proves the check above is not vacuous: the same library, mode and version reject these.
    # (The schemas have no enums: a wrong value such as `strategy.type: BlueGreen` is caught
    # only by the API server.)
    broken = copy.deepcopy(_one("Deployment"))
    parent: Any = broken
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


# --- what a schema cannot check ---------------------------------------------------------------


def test_service_selects_the_deployment_pods_on_the_container_port() -> None:
    deployment, service = _one("Deployment"), _one("Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector
    assert selector.items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert _container_port(_container(deployment), port["targetPort"]) == _settings().port


def test_hpa_scales_the_deployment_on_cpu() -> None:
    deployment, hpa = _one("Deployment"), _one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    # Utilization is measured against the request: the container must have one.
    assert _container(deployment)["resources"]["requests"]["cpu"]
    # Every pod removed drains its streams: scale down only after a sustained drop, slowly.
    scale_down = hpa["spec"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 300
    assert all(
        policy["type"] == "Pods" and policy["value"] == 1 for policy in scale_down["policies"]
    )


def test_replicas_are_left_to_the_hpa() -> None:
    # With spec.replicas in the manifest, every `kubectl apply` would reset the count the
    # HPA chose; the HPA's minReplicas (>= 2) is what keeps at least two pods.
    assert "replicas" not in _one("Deployment")["spec"]


def test_pdb_covers_the_deployment_pods() -> None:
    deployment, pdb = _one("Deployment"), _one("PodDisruptionBudget")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector
    assert selector.items() <= pod_labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


def test_probes_use_health_and_ready_on_the_container_port() -> None:
    container = _container(_one("Deployment"))
    port = _settings().port
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/health"
    assert readiness["path"] == "/ready"
    assert _container_port(container, liveness["port"]) == port
    assert _container_port(container, readiness["port"]) == port


def test_grace_period_outlasts_prestop_and_drain() -> None:
    deployment = _one("Deployment")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    prestop = _prestop_seconds(_container(deployment))
    assert prestop >= 5, "too short for endpoint removal to reach kube-proxy and ingresses"
    assert grace > prestop
    # The grace period counts from deletion, so it covers the sleep and then the drain.
    assert grace > prestop + _settings().shutdown_timeout


def test_prestop_command_exists_in_the_image() -> None:
    hook = _container(_one("Deployment"))["lifecycle"]["preStop"]
    if "exec" not in hook:
        return  # the native sleep action runs in the kubelet, not in the image
    command = hook["exec"]["command"]
    entrypoint = re.search(r'^ENTRYPOINT \["(\w+)"', DOCKERFILE.read_text(), re.MULTILINE)
    assert entrypoint
    assert command[0] in (entrypoint.group(1), "sleep")


def test_one_worker_per_pod() -> None:
    settings = _settings()
    assert settings.workers == 1
    assert _container(_one("Deployment"))["resources"]["requests"]["cpu"] in ("1", 1, "1000m")


def test_pod_runs_locked_down_as_the_image_user() -> None:
    spec = _one("Deployment")["spec"]["template"]["spec"]
    container = _container(_one("Deployment"))
    uid = re.search(r"--uid (\d+)", DOCKERFILE.read_text())
    assert uid
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == int(uid.group(1)) == 10001
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    resources = container["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


def test_pods_are_spread_across_nodes() -> None:
    spec = _one("Deployment")["spec"]["template"]["spec"]
    pod_labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    keys = {
        constraint["topologyKey"]
        for constraint in spec.get("topologySpreadConstraints", [])
        if constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    }
    anti = spec.get("affinity", {}).get("podAntiAffinity")
    assert "kubernetes.io/hostname" in keys or anti


def test_environment_comes_from_the_configmap_and_an_optional_secret() -> None:
    configmap, secret = _one("ConfigMap"), _one("Secret")
    container = _container(_one("Deployment"))
    assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    secret_refs = [
        item["valueFrom"]["secretKeyRef"]
        for item in container["env"]
        if "secretKeyRef" in item.get("valueFrom", {})
    ]
    assert secret_refs
    for ref in secret_refs:
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
        assert ref["optional"] is True
    assert "AZURE_OPENAI_TOKEN" not in configmap["data"], "the key belongs in the Secret"


def test_every_variable_is_one_the_gateway_reads() -> None:
    source = SETTINGS_SOURCE.read_text()
    container = _container(_one("Deployment"))
    names = set(_one("ConfigMap")["data"]) | {item["name"] for item in container["env"]}
    names |= set(_one("Secret")["stringData"])
    assert names
    unknown = sorted(name for name in names if f'"{name}"' not in source)
    assert not unknown, f"not read by azproxy/settings.py: {unknown}"


def test_configmap_values_are_accepted_by_the_gateway() -> None:
    settings = _settings()  # raises ConfigError naming any value the gateway would refuse
    assert settings.endpoint is not None, "an empty endpoint would serve the built-in emulator"
    assert settings.host == "0.0.0.0"


def test_secret_example_holds_only_placeholders() -> None:
    for path in MANIFEST_FILES:
        long_run = re.search(r"[A-Za-z0-9]{32,}", path.read_text())
        assert long_run is None, f"{path.name} holds something that looks like a key"
    for value in _one("Secret")["stringData"].values():
        assert "replace" in value


# --- kustomize --------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    (kustomization,) = _load(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    expected = sorted(path.name for path in MANIFEST_FILES if path.name not in NOT_IN_KUSTOMIZATION)
    assert sorted(kustomization["resources"]) == expected
    image = _container(_one("Deployment"))["image"].split(":")[0]
    assert [entry["name"] for entry in kustomization.get("images", [])] in ([], [image])
