"""Kubernetes deployment files, checked with the tools that run here: step Jobs built by
dagster-k8s's own functions from the real asset tags and the Helm values, every built-in manifest
validated against the Kubernetes JSON schemas (kubernetes-validate), the Helm values held to the
official chart's key paths, the KEDA objects to KEDA's ScaledObject spec, both Dockerfiles
linted by hadolint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)
from kubernetes.client import ApiClient

from media_assets import k8s_manifests
from media_assets.defs.episodes import COMPUTE_CLASSES, STEP_POD_CONFIG
from media_assets.lib.stages import STAGES
from media_assets_tests.services import REPO

K8S_VERSION = "1.33"  # a Kubernetes release the manifests must hold for
CHART_KEYS = Path(__file__).parent / "data" / "dagster-chart-1.13-keys.txt"
VALUES = yaml.safe_load((REPO / "k8s" / "values.yaml").read_text())
LAUNCHER = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
# The Helm chart writes runK8sConfig's keys into the instance's run_k8s_config under these names.
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


def key_paths(value, path: str = ""):
    """Every key path set in a values tree: `a.b`, list items as `a[]`."""
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            yield child_path
            yield from key_paths(child, child_path)
    elif isinstance(value, list):
        for item in value:
            yield from key_paths(item, f"{path}[]")


def unknown_chart_keys(values: dict) -> list[str]:
    """Key paths the chart does not declare (under a free-form object, anything goes)."""
    known = {line for line in CHART_KEYS.read_text().splitlines() if line and not line.startswith("#")}
    free_form = {p.removesuffix(".*") for p in known if p.endswith(".*")}

    def declared(path: str) -> bool:
        parents = [path[:i] for i, c in enumerate(path) if c in ".["]
        return path in known or any(parent in free_form for parent in parents)

    return [p for p in key_paths(values) if not declared(p)]


def test_helm_values_use_only_keys_of_the_official_chart() -> None:
    assert unknown_chart_keys(VALUES) == []
    misspelled = yaml.safe_load((REPO / "k8s" / "values.yaml").read_text())
    misspelled["runLauncher"]["config"]["k8sRunLauncher"]["jobNamspace"] = "x"
    misspelled["dagster-user-deployments"]["deployments"][0]["imagee"] = {}
    assert sorted(unknown_chart_keys(misspelled)) == [
        "dagster-user-deployments.deployments[].imagee",
        "runLauncher.config.k8sRunLauncher.jobNamspace",
    ]


def test_helm_values_deploy_this_code_location_on_the_production_setup() -> None:
    (code,) = VALUES["dagster-user-deployments"]["deployments"]
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert code["dagsterApiGrpcArgs"] == ["--module-name", workspace["load_from"][0]["python_module"]["module_name"]]
    assert {e["name"]: e["value"] for e in code["env"]}["MEDIA_LAKE_EXECUTOR"] == "k8s"
    assert code["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert code["podSecurityContext"]["runAsNonRoot"] and code["securityContext"]["readOnlyRootFilesystem"]
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert VALUES["postgresql"]["enabled"] is False and VALUES["generatePostgresqlPasswordSecret"] is False
    daemon = VALUES["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"]["maxResumeRunAttempts"] > 0
    assert daemon["runRetries"]["enabled"] and daemon["runRetries"]["retryOnAssetOrOpFailure"] is False
    # Secrets go by reference only: envSecrets name Secrets, no value of one is in the file.
    assert all(set(s) == {"name"} for s in LAUNCHER["envSecrets"] + code["envSecrets"])
    text = (REPO / "k8s" / "values.yaml").read_text()
    assert "AWS_SECRET_ACCESS_KEY:" not in text and "HF_TOKEN:" not in text


def step_job(asset: dg.AssetsDefinition) -> dict:
    """The Job k8s_job_executor launches for this asset's step: the run launcher's container
    context from the Helm values, merged with the step's `dagster-k8s/config` op tag, built by
    dagster-k8s's construct_dagster_k8s_job (as K8sStepHandler does)."""
    run_k8s_config = {RUN_K8S_CONFIG_KEYS[key]: value for key, value in LAUNCHER["runK8sConfig"].items()}
    launcher = K8sContainerContext(
        namespace=LAUNCHER["jobNamespace"],
        image_pull_policy=LAUNCHER["imagePullPolicy"],
        env_secrets=[secret["name"] for secret in LAUNCHER["envSecrets"]],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(run_k8s_config),
    )
    step = K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(asset.op.tags))
    context = launcher.merge(step)
    code = VALUES["dagster-user-deployments"]["deployments"][0]
    chart_launcher = SimpleNamespace(  # what the chart renders into the K8sRunLauncher's config
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        postgres_password_secret=VALUES["global"]["postgresqlSecretName"],
    )
    job_config = context.get_k8s_job_config(f"{code['image']['repository']}:{code['image']['tag']}", chart_launcher)
    name = "dagster-step-" + get_k8s_job_name("0123456789abcdef", asset.op.name)
    job = construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": asset.op.name},
    )
    return ApiClient().sanitize_for_serialization(job)


def episode_assets() -> list[dg.AssetsDefinition]:
    from media_assets.definitions import defs

    return [a for a in {a.key: a for a in defs().assets}.values() if a.partitions_def is not None]


def test_step_jobs_built_by_dagster_k8s_carry_each_compute_class() -> None:
    compute_class = {stage.name: stage.compute_class for stage in STAGES}
    assets = episode_assets()
    assert sorted(a.op.name for a in assets) == sorted(compute_class)
    for asset in assets:
        job = step_job(asset)
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
        expected = STEP_POD_CONFIG[compute_class[asset.op.name]]
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["resources"] == expected["container_config"]["resources"], asset.op.name
        assert pod["nodeSelector"] == expected["pod_spec_config"]["node_selector"]
        gpu = compute_class[asset.op.name] == "gpu-transcription"
        assert ("nvidia.com/gpu" in container["resources"]["limits"]) == gpu
        tolerations = pod.get("tolerations", [])
        assert (tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]) == gpu
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and security["runAsUser"] == 10001
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}} in pod["volumes"]
        assert {"secretRef": {"name": "media-lake"}} in container["envFrom"]
        assert job["spec"]["backoffLimit"] == 0  # retries are Dagster's (RetryPolicy), not the Job's


def test_worker_manifests_are_current_and_valid() -> None:
    committed = (REPO / "k8s" / "workers.yaml").read_text()
    assert committed == k8s_manifests.render(), "k8s/workers.yaml is stale: python -m media_assets.k8s_manifests"
    documents = list(yaml.safe_load_all(committed))
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    scaled = [d for d in documents if d["kind"] == "ScaledObject"]
    (auth,) = [d for d in documents if d["kind"] == "TriggerAuthentication"]
    for deployment in deployments.values():
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    celery_queues = {asset.op.tags["dagster-celery/queue"] for asset in episode_assets()}
    assert celery_queues == set(COMPUTE_CLASSES)
    by_queue = {}
    for deployment in deployments.values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["celery", "-A", "media_assets.celery_app", "worker", "--loglevel", "INFO"]
        args = container["args"]
        queue = args[args.index("-Q") + 1]
        assert args[args.index("-n") + 1] == f"{queue}@%h"
        by_queue[queue] = (deployment, args[args.index("-n") + 2 :])
    assert set(by_queue) == celery_queues
    gpu_deployment, gpu_args = by_queue["gpu-transcription"]
    assert gpu_args == ["--concurrency", "1", "--pool", "solo"]
    assert gpu_deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # KEDA's ScaledObject (keda.sh/v1alpha1): scaleTargetRef and triggers required; trigger
    # metadata is a map of strings; minReplicaCount <= maxReplicaCount.
    assert {s["spec"]["triggers"][0]["metadata"]["queueName"] for s in scaled} == celery_queues
    for s in scaled:
        spec = s["spec"]
        assert s["apiVersion"] == "keda.sh/v1alpha1" and spec["scaleTargetRef"]["name"] in deployments
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert scale_down["stabilizationWindowSeconds"] >= 300
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert all(isinstance(v, str) for v in trigger["metadata"].values())
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "media-lake", "key": "MEDIA_LAKE_CELERY_BROKER"}
    ]


def test_the_exporter_manifests_are_current_and_wire_prometheus_and_grafana() -> None:
    target = REPO / "k8s" / "monitoring" / "exporter.yaml"
    committed = target.read_text()
    assert committed == k8s_manifests.render(target), f"{target} is stale: python -m media_assets.k8s_manifests"
    kinds = {d["kind"]: d for d in yaml.safe_load_all(committed)}
    assert set(kinds) == {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"}
    for kind in ("Deployment", "Service", "ConfigMap"):
        kubernetes_validate.validate(kinds[kind], K8S_VERSION, strict=True)
    deployment, service, monitor = kinds["Deployment"], kinds["Service"], kinds["ServiceMonitor"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:3] == ["media-lake", "metrics", "serve"]
    assert {"DAGSTER_HOME", "DAGSTER_PG_PASSWORD", "MEDIA_LAKE_ROOT"} <= {e["name"] for e in container["env"]}
    assert "MEDIA_LAKE_EXECUTOR" not in {e["name"] for e in container["env"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]
    # the Service selects the pod and names its port; the ServiceMonitor selects the Service and
    # gives the job name the alert rules use
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "media-lake"
    rules = yaml.safe_load((REPO / "k8s" / "monitoring" / "media-lake.rules.yaml").read_text())
    assert kinds["PrometheusRule"]["spec"] == rules
    assert 'up{job="media-lake"}' in str(rules)
    dashboard = json.loads(kinds["ConfigMap"]["data"]["media-lake.json"])
    assert dashboard == json.loads((REPO / "k8s" / "monitoring" / "media-lake-dashboard.json").read_text())
    assert kinds["ConfigMap"]["metadata"]["labels"] == {"grafana_dashboard": "1"}


def test_validation_rejects_a_broken_manifest() -> None:
    """The validator is not vacuous: a step Job with a misspelled field fails."""
    job = step_job(episode_assets()[0])
    job["spec"]["template"]["spec"]["containers"][0]["resource"] = job["spec"]["template"]["spec"]["containers"][0].pop(
        "resources"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_lint_clean(dockerfile: str) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--format", "json", dockerfile], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr
    text = (REPO / dockerfile).read_text()
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text
