"""The Kubernetes manifests (deploy/k8s) are valid objects and fit the service.

Valid: each validates offline against the Kubernetes API's JSON schemas shipped by the
kubernetes-validate package, strict (an unknown or misspelt field fails, which a cluster
would drop without a word), for the oldest and the newest version the package knows.
Fitting: what no schema can see, checked against the app and the Dockerfile: the probes'
paths and port, the user, the limits against the torch threads, the Service's and the
autoscaler's targets, and that every NAMEGEN_* variable is a setting the service reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.config import Settings
from tests.conftest import REPO

K8S = REPO / "deploy" / "k8s"
# The oldest schemas the package bundles (autoscaling/v2 and policy/v1 are GA since 1.23
# and 1.21), and the newest.
VERSIONS = ["1.25", kubernetes_validate.latest_version()]

Manifest = dict[str, Any]


def kustomization() -> Manifest:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))


def manifests() -> list[Manifest]:
    """Every object kustomize would apply, in the kustomization's order."""
    objects = []
    for name in kustomization()["resources"]:
        objects += [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]
    return objects


def one(kind: str) -> Manifest:
    found = [m for m in manifests() if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod() -> Manifest:
    spec: Manifest = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> Manifest:
    containers = pod()["containers"]
    assert len(containers) == 1
    c: Manifest = containers[0]
    return c


def env() -> dict[str, Manifest]:
    return {e["name"]: e for e in container()["env"]}


def container_port(port: int | str) -> int:
    """A probe's or Service's port, by name or number, as the container's port number."""
    for p in container()["ports"]:
        if port in (p["name"], p["containerPort"]):
            number: int = p["containerPort"]
            return number
    raise AssertionError(f"port {port!r} is not one of the container's")


def dockerfile(instruction: str) -> str:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    found = re.findall(rf"^{instruction}\s+(.+)$", text, re.M)
    assert found, f"no {instruction} in the Dockerfile"
    return found[-1].strip()  # the last one wins


UNITS = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity ("500m", "2", "640Mi") as a number of cores or bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi|)", str(value))
    assert m, f"quantity {value!r} not understood"
    return float(m[1]) * UNITS[m[2]]


def test_the_kustomization_applies_every_manifest_in_the_folder() -> None:
    listed = kustomization()["resources"]
    present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present
    kinds = sorted(m["kind"] for m in manifests())
    assert kinds == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    for manifest in manifests():
        kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("a misspelt field", lambda c: c.update(readinesProbe=c.pop("readinessProbe"))),
        ("a wrong type", lambda c: c["resources"]["limits"].update(cpu=["2"])),
        ("a missing required field", lambda c: c.pop("name")),
    ],
)
def test_the_schema_check_catches(where: str, change: Any) -> None:
    deployment = one("Deployment")
    change(deployment["spec"]["template"]["spec"]["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_container_runs_the_image_command_on_the_exposed_port() -> None:
    command = container()["command"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from the kubelet
    assert container_port("http") == port == int(dockerfile("EXPOSE"))
    assert command[:3] == ["python", "-m", "app"]
    assert container()["image"].split(":")[0] == "namegen"


def test_probes_ask_health_and_ready_on_the_container_port() -> None:
    c = container()
    port = container_port("http")
    for probe, path in [("livenessProbe", "/health"), ("readinessProbe", "/ready")]:
        get = c[probe]["httpGet"]
        assert (get["path"], container_port(get["port"])) == (path, port), probe
    # A startup probe, if any, must not wait on /ready: a slow load would kill the pod.
    if "startupProbe" in c:
        assert c["startupProbe"]["httpGet"]["path"] == "/health"


def test_the_pod_runs_as_the_image_user_on_a_read_only_root() -> None:
    pod_security = pod()["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == int(dockerfile("USER")) != 0
    security = container()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["readOnlyRootFilesystem"] is True
    # ...with a writable /tmp for libraries that reach for a temporary file.
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod()["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_requests_and_limits_are_set_and_the_torch_threads_fit_the_cpu_limit() -> None:
    resources = container()["resources"]
    for what in ("cpu", "memory"):
        request, limit = resources["requests"][what], resources["limits"][what]
        assert 0 < quantity(request) <= quantity(limit), what
    # docs/operations.md: a serving process takes about 500 MB.
    assert quantity(resources["requests"]["memory"]) >= 500e6
    # torch counts the node's cores, not the pod's limit: 0 ("one per core") would start
    # more threads than the limit lets run, so both must be set, and within the limit.
    cpus = quantity(resources["limits"]["cpu"])
    for name in ("NAMEGEN_TORCH_THREADS", "NAMEGEN_LARGE_BATCH_THREADS"):
        assert 1 <= int(env()[name]["value"]) <= cpus, name


def test_every_variable_set_is_a_setting_and_its_value_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = set(Settings.model_fields)
    for name in env():
        assert name.startswith("NAMEGEN_"), name
        assert name.removeprefix("NAMEGEN_").lower() in fields, f"{name} is no setting"
    literal = {name: e["value"] for name, e in env().items() if "value" in e}
    for name, value in literal.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.device == "cpu"
    for name, value in literal.items():
        assert str(getattr(settings, name.removeprefix("NAMEGEN_").lower())) == value


def test_api_keys_come_from_an_optional_secret_the_docs_name() -> None:
    ref = env()["NAMEGEN_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True  # without the Secret the pods still start
    docs = (REPO / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    assert f"kubectl create secret generic {ref['name']} --from-literal={ref['key']}=" in docs


def test_the_service_and_the_disruption_budget_select_the_deployment_pods() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": one("Service")["spec"]["selector"],
        "PodDisruptionBudget": one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector and selector.items() <= labels.items(), kind
    for port in one("Service")["spec"]["ports"]:
        assert container_port(port["targetPort"]) == container_port("http")


def test_the_autoscaler_scales_the_deployment_on_cpu() -> None:
    deployment, hpa = one("Deployment"), one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    [metric] = hpa["spec"]["metrics"]
    assert (metric["type"], metric["resource"]["name"]) == ("Resource", "cpu")
    # Utilization is a share of the CPU request, which therefore must be set (see above).
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # A replica count in the Deployment would undo the autoscaler at every apply.
    assert "replicas" not in deployment["spec"]
    # The budget leaves room for a drain even at the fewest replicas.
    min_available = one("PodDisruptionBudget")["spec"]["minAvailable"]
    assert min_available < hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_renders_the_objects_as_written() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout

    def key(m: Manifest) -> tuple[str, str]:
        return m["kind"], m["metadata"]["name"]

    assert sorted(yaml.safe_load_all(rendered), key=key) == sorted(manifests(), key=key)
