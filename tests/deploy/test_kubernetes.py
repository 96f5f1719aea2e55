"""deploy/kubernetes/: the manifests run the hub as the hub expects to be run.

Probes ask real routes on the container's named ports, which are the configured binds;
every setting in the ConfigMap and the example Secret is a real, valid setting; the
Services, the PodDisruptionBudget and the Deployment agree on the pods; termination
leaves the hub its shutdown grace; the Job migrates.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from hub import MAX_NODE_ID_LENGTH
from tests.support.hub_settings import (
    ROOT,
    NodeSettings,
    handler_name,
    http_get_routes,
    load_yaml,
    load_yaml_all,
    node_settings,
    storage_settings,
    unknown_settings,
)

MANIFESTS = ROOT / "deploy" / "kubernetes"
#: The pod name Kubernetes gives a Deployment's pod: `<deployment>-<hash>-<suffix>`.
POD_NAME = "sovd-hub-5d8f9c7b6d-x2k9q"

Manifest = dict[str, Any]


def load_manifests() -> dict[tuple[str, str], Manifest]:
    """Every object of every manifest file, by (kind, name)."""
    found: dict[tuple[str, str], Manifest] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in load_yaml_all(path.read_text()):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            found[key] = document
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], Manifest]:
    return load_manifests()


@pytest.fixture(scope="module")
def deployment(manifests: dict[tuple[str, str], Manifest]) -> Manifest:
    (found,) = [m for (kind, _), m in manifests.items() if kind == "Deployment"]
    return found


def container(workload: Manifest) -> Manifest:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return cast(Manifest, only)


def pod_environment(
    workload: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> dict[str, str]:
    """The environment a pod of `workload` gets: envFrom (ConfigMap, Secret) then env."""
    env: dict[str, str] = {}
    spec = container(workload)
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(manifests["ConfigMap", source["configMapRef"]["name"]]["data"])
        else:
            env.update(manifests["Secret", source["secretRef"]["name"]]["stringData"])
    for variable in spec.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            field = variable["valueFrom"]["fieldRef"]["fieldPath"]
            assert field == "metadata.name", f"{variable['name']}: only the pod name is known here"
            env[variable["name"]] = POD_NAME
    return env


def pod_settings(deployment: Manifest, manifests: dict[tuple[str, str], Manifest]) -> NodeSettings:
    return node_settings(pod_environment(deployment, manifests))


def named_ports(workload: Manifest) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(workload)["ports"]}


def test_every_manifest_setting_is_a_real_and_valid_setting(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    env = pod_environment(deployment, manifests)
    assert unknown_settings(env) == set()
    settings = pod_settings(deployment, manifests)  # ConfigError names a bad value
    assert settings.storage.database_url.startswith("postgresql://")
    assert settings.storage.redis_url is not None
    assert (settings.api.http_host, settings.hub.grpc_host) == ("0.0.0.0", "0.0.0.0")


def test_example_secret_holds_only_marked_placeholders(
    manifests: dict[tuple[str, str], Manifest],
) -> None:
    secret = manifests["Secret", "sovd-hub"]
    assert "data" not in secret
    assert set(secret["stringData"]) == {
        "SOVD_HUB_JWT_SECRET",
        "SOVD_HUB_DATABASE_URL",
        "SOVD_HUB_REDIS_URL",
    }
    for key, value in secret["stringData"].items():
        assert "REPLACE-ME" in value, key


def test_node_id_is_the_pod_name(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    (node_id,) = [v for v in container(deployment)["env"] if v["name"] == "SOVD_HUB_NODE_ID"]
    assert node_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert pod_settings(deployment, manifests).hub.node_id == POD_NAME
    # Pod names are DNS labels (63 characters at most): always a valid node_id.
    assert MAX_NODE_ID_LENGTH >= 63


def test_named_ports_are_the_configured_binds(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    settings = pod_settings(deployment, manifests)
    assert named_ports(deployment) == {
        "http": settings.api.http_port,
        "grpc": settings.hub.grpc_port,
    }


@pytest.mark.parametrize(
    ("probe", "path"),
    [
        ("readinessProbe", "/health/ready"),
        ("livenessProbe", "/health/live"),
        ("startupProbe", "/health/live"),
    ],
)
def test_probes_ask_real_routes_on_the_http_port(
    deployment: Manifest, probe: str, path: str
) -> None:
    get = container(deployment)[probe]["httpGet"]
    assert get["path"] == path
    assert get["path"] in http_get_routes()
    assert get["port"] == "http"
    assert get["port"] in named_ports(deployment)


def test_termination_leaves_the_hub_its_shutdown_grace(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = container(deployment)["lifecycle"]["preStop"]
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])
    assert pre_stop_s > 0
    grace = pod_settings(deployment, manifests).hub.shutdown_grace_s
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + grace


def test_deployment_runs_two_unprivileged_nodes(deployment: Manifest) -> None:
    assert deployment["spec"]["replicas"] == 2
    assert handler_name(container(deployment)["args"]) == "_serve"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container(deployment)["resources"]["requests"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def selects(selector: dict[str, str], workload: Manifest) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def test_services_select_the_pods_and_target_the_named_ports(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    ports = named_ports(deployment)
    targets = {}
    for (kind, name), service in manifests.items():
        if kind != "Service":
            continue
        assert service["spec"]["selector"]
        assert selects(service["spec"]["selector"], deployment), name
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] in ports, name
        assert port["port"] == ports[port["targetPort"]], name
        targets[port["targetPort"]] = port.get("appProtocol")
    assert targets == {"http": "http", "grpc": "kubernetes.io/h2c"}


def test_disruption_budget_keeps_one_pod_of_the_deployment(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    (budget,) = [m for (kind, _), m in manifests.items() if kind == "PodDisruptionBudget"]
    assert budget["spec"]["minAvailable"] == 1
    selector = budget["spec"]["selector"]["matchLabels"]
    assert selects(selector, deployment)
    assert selector == deployment["spec"]["selector"]["matchLabels"]


def test_migration_job_migrates_the_same_database(
    deployment: Manifest, manifests: dict[tuple[str, str], Manifest]
) -> None:
    (job,) = [m for (kind, _), m in manifests.items() if kind == "Job"]
    assert handler_name(container(job)["args"]) == "_migrate"
    assert container(job)["image"] == container(deployment)["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    env = pod_environment(job, manifests)
    assert unknown_settings(env) == set()
    _, storage = storage_settings(env)
    assert storage.database_url == pod_settings(deployment, manifests).storage.database_url
    # The Job's pods must not be taken for hub pods by the Services or the budget.
    assert not selects(deployment["spec"]["selector"]["matchLabels"], job)


def test_kustomization_lists_existing_files_but_not_the_example_secret() -> None:
    kustomization = load_yaml((MANIFESTS / "kustomization.yaml").read_text())
    resources = kustomization["resources"]
    for resource in resources:
        assert (MANIFESTS / resource).is_file(), resource
    assert "secret.example.yaml" not in resources
    assert {"deployment.yaml", "services.yaml", "pdb.yaml", "configmap.yaml"} <= set(resources)


def test_manifest_files_are_all_read() -> None:
    kinds = {kind for kind, _ in load_manifests()}
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "Job"}
