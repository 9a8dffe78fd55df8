"""k8s/workers.yaml, rendered: per compute class, a Deployment of Celery workers bound to its queue
and a KEDA ScaledObject that sizes it by the queue's length on RabbitMQ. k8s/monitoring/exporter.yaml,
rendered: `media-lake metrics serve` as a Deployment and Service, a ServiceMonitor and a
PrometheusRule for the Prometheus operator, and the Grafana dashboard as a sidecar ConfigMap.

Nothing in the output is declared twice: each worker pod takes its resources, node pool and GPU
toleration from the class's step pod config (defs/episodes.py STEP_POD_CONFIG), and its image,
secrets, security context and scratch volume from k8s/values.yaml, so Celery workers and
k8s_job_executor step pods of a class look alike. Run `python -m media_assets.k8s_manifests`
after changing either (or the rules or dashboard in k8s/monitoring/); the test suite fails while a
rendered file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from media_assets.defs.episodes import STEP_POD_CONFIG

K8S_DIR = Path(__file__).resolve().parent.parent / "k8s"
GPU_CLASS = "gpu-transcription"
APP = "media-lake-worker"
BROKER_AUTH = "media-lake-rabbitmq"
# KEDA targets: ready messages per worker replica (steps are acknowledged when they end, so a
# running step is not counted and a waiting one is). A GPU step runs for minutes and a GPU node is
# dear, so one waiting step is worth a replica, and idle GPU workers go to zero after 10 minutes.
# CPU steps are short; a few waiting steps per replica keep pods from flapping, and one replica
# of each stays up so a new episode's first steps start without a cold pod. Every scale-down
# waits for `settle` seconds of lower demand (a new pod loads its models again).
SCALING = {
    "gpu-transcription": {"value": 1, "min": 0, "max": 4, "settle": 600},
    "cpu-normalization": {"value": 2, "min": 1, "max": 8, "settle": 300},
    "cpu-nlp": {"value": 2, "min": 1, "max": 8, "settle": 300},
    "cpu-metadata": {"value": 5, "min": 1, "max": 4, "settle": 300},
}
# One step at a time per worker pod (its requests are one step's); CUDA wants the solo pool.
# `celery` itself is the container's process (PID 1), so SIGTERM reaches it and it finishes its
# step before it stops (a warm shutdown); `dagster-celery worker start` would hold it as a child.
WORKER_COMMAND = ["celery", "-A", "media_assets.celery_app", "worker", "--loglevel", "INFO"]
WORKER_ARGS = {GPU_CLASS: ["--concurrency", "1", "--pool", "solo"]}
DEFAULT_WORKER_ARGS = ["--concurrency", "1"]
MONITORING_DIR = K8S_DIR / "monitoring"
METRICS_APP = "media-lake-metrics"
METRICS_PORT = 9464  # media_assets/observability/server.py DEFAULT_PORT
METRICS_JOB = "media-lake"  # the Prometheus job name the alert rules expect (MediaLakeExporterDown)
# The Helm chart's instance ConfigMap (release `dagster`, as k8s/README.md installs it): the
# exporter reads the same instance as the daemon.
INSTANCE_CONFIGMAP = "dagster-instance"
DAGSTER_HOME = "/opt/dagster/dagster_home"


def _instance_env(code: dict, values: dict) -> list[dict]:
    """The code location's environment without its executor choice, and the PostgreSQL password
    the chart's instance configuration reads."""
    return [
        *(e for e in code["env"] if e["name"] != "MEDIA_LAKE_EXECUTOR"),
        {
            "name": "DAGSTER_PG_PASSWORD",
            "valueFrom": {
                "secretKeyRef": {"name": values["global"]["postgresqlSecretName"], "key": "postgresql-password"}
            },
        },
    ]


def worker_deployment(compute_class: str, values: dict) -> dict:
    """The Celery workers of one compute class, in the code location's image and security context."""
    step = STEP_POD_CONFIG[compute_class]
    code = values["dagster-user-deployments"]["deployments"][0]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_pod = launcher["runK8sConfig"]
    image = f"{code['image']['repository']}{'-gpu' if compute_class == GPU_CLASS else ''}:{code['image']['tag']}"
    labels = {"app.kubernetes.io/name": APP, "media-lake/compute": compute_class}
    container = {
        "name": "worker",
        "image": image,
        "imagePullPolicy": code["image"]["pullPolicy"],
        "command": WORKER_COMMAND,
        "args": [
            "-Q",
            compute_class,
            "-n",
            f"{compute_class}@%h",
            *WORKER_ARGS.get(compute_class, DEFAULT_WORKER_ARGS),
        ],
        "env": _instance_env(code, values),
        "envFrom": [{"secretRef": {"name": secret["name"]}} for secret in launcher["envSecrets"]],
        "resources": step["container_config"]["resources"],
        "securityContext": run_pod["containerConfig"]["securityContext"],
        "volumeMounts": run_pod["containerConfig"]["volumeMounts"],
    }
    pod = {
        "securityContext": run_pod["podSpecConfig"]["securityContext"],
        "terminationGracePeriodSeconds": 3600,  # a warm shutdown lets the running step finish
        "nodeSelector": step["pod_spec_config"]["node_selector"],
        **({"tolerations": step["pod_spec_config"]["tolerations"]} if "tolerations" in step["pod_spec_config"] else {}),
        "containers": [container],
        "volumes": run_pod["podSpecConfig"]["volumes"],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{APP}-{compute_class}", "namespace": launcher["jobNamespace"], "labels": dict(labels)},
        "spec": {  # no replicas: KEDA sets them, and `kubectl apply` must not reset them
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }


def scaled_object(compute_class: str, namespace: str) -> dict:
    scaling = SCALING[compute_class]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"{APP}-{compute_class}", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"name": f"{APP}-{compute_class}"},
            "pollingInterval": 15,
            "cooldownPeriod": scaling["settle"],  # the last replica to zero
            "minReplicaCount": scaling["min"],
            "maxReplicaCount": scaling["max"],
            "advanced": {  # every other scale-down
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": scaling["settle"]}}
                }
            },
            "triggers": [
                {
                    "type": "rabbitmq",
                    "metadata": {
                        "protocol": "amqp",
                        "queueName": compute_class,
                        "mode": "QueueLength",
                        "value": str(scaling["value"]),
                    },
                    "authenticationRef": {"name": BROKER_AUTH},
                }
            ],
        },
    }


def trigger_authentication(namespace: str) -> dict:
    """KEDA reads the broker's URL from the same Secret the workers use."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": BROKER_AUTH, "namespace": namespace},
        "spec": {"secretTargetRef": [{"parameter": "host", "name": "media-lake", "key": "MEDIA_LAKE_CELERY_BROKER"}]},
    }


def worker_manifests(values: dict) -> list[dict]:
    namespace = values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespace"]
    manifests = [trigger_authentication(namespace)]
    for compute_class in STEP_POD_CONFIG:
        manifests += [worker_deployment(compute_class, values), scaled_object(compute_class, namespace)]
    return manifests


def monitoring_manifests(values: dict) -> list[dict]:
    """The exporter (one replica: its counts come from durable state, so a restart loses nothing),
    its Service, and what the Prometheus operator and Grafana's dashboard sidecar pick up."""
    code = values["dagster-user-deployments"]["deployments"][0]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    namespace = launcher["jobNamespace"]
    labels = {"app.kubernetes.io/name": METRICS_APP}
    container = {
        "name": "exporter",
        "image": f"{code['image']['repository']}:{code['image']['tag']}",
        "imagePullPolicy": code["image"]["pullPolicy"],
        "command": ["media-lake", "metrics", "serve", "--port", str(METRICS_PORT)],
        "env": [*_instance_env(code, values), {"name": "DAGSTER_HOME", "value": DAGSTER_HOME}],
        "envFrom": [{"secretRef": {"name": secret["name"]}} for secret in launcher["envSecrets"]],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "securityContext": code["securityContext"],
        "volumeMounts": [
            *code["volumeMounts"],
            {"name": "instance", "mountPath": f"{DAGSTER_HOME}/dagster.yaml", "subPath": "dagster.yaml"},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": METRICS_APP, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "securityContext": code["podSecurityContext"],
                    "nodeSelector": code["nodeSelector"],
                    "containers": [container],
                    "volumes": [
                        *code["volumes"],
                        {"name": "instance", "configMap": {"name": INSTANCE_CONFIGMAP}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": METRICS_APP, "namespace": namespace, "labels": {**labels, "media-lake/job": METRICS_JOB}},
        "spec": {
            "selector": dict(labels),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}],
        },
    }
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": METRICS_APP, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "jobLabel": "media-lake/job",
            "selector": {"matchLabels": dict(labels)},
            "endpoints": [{"port": "metrics", "interval": "30s", "scrapeTimeout": "10s"}],
        },
    }
    rules = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": METRICS_APP, "namespace": namespace, "labels": dict(labels)},
        "spec": yaml.safe_load((MONITORING_DIR / "media-lake.rules.yaml").read_text()),
    }
    dashboard = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{METRICS_APP}-dashboard", "namespace": namespace, "labels": {"grafana_dashboard": "1"}},
        "data": {"media-lake.json": json.dumps(json.loads((MONITORING_DIR / "media-lake-dashboard.json").read_text()))},
    }
    return [deployment, service, monitor, rules, dashboard]


RENDERED = {  # file -> what renders it from the Helm values
    K8S_DIR / "workers.yaml": worker_manifests,
    MONITORING_DIR / "exporter.yaml": monitoring_manifests,
}


def render(target: Path = K8S_DIR / "workers.yaml", values_path: Path = K8S_DIR / "values.yaml") -> str:
    values = yaml.safe_load(values_path.read_text())
    header = "# Rendered by `python -m media_assets.k8s_manifests` from k8s/values.yaml (and the files it names).\n"
    return header + yaml.safe_dump_all(RENDERED[target](values), sort_keys=False, explicit_start=True, width=120)


if __name__ == "__main__":
    for target in RENDERED:
        target.write_text(render(target))
        print(f"wrote {target}", file=sys.stderr)
