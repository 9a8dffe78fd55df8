"""How episode_job executes its steps: MEDIA_LAKE_EXECUTOR names one of EXECUTORS. The assets and
their tags are the same under each; episodes.compute() turns a compute class into a pool (local
executors), a Celery queue and a Kubernetes pod spec.

- in_process (default): every step in the run's process, so models load once per run; runs go
  side by side through the run queue. The multiprocess executor starts a process per step, which
  imports torch and loads its models again (a 2 s episode took 4 min on 2 cores, two runs at once).
- celery: each step is a task on its compute class's queue, taken by a worker bound to that queue
  (media_assets/celery_app.py). Celery ignores Dagster pools: the GPU queue's workers serialize
  GPU work by their concurrency. Workers share the PostgreSQL instance and the S3 lake.
- k8s: each step is a Kubernetes Job built by dagster-k8s from the step's `dagster-k8s/config` tag
  and the K8sRunLauncher's settings (k8s/values.yaml).
"""

import os

import dagster as dg
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor
from dagster_k8s import k8s_job_executor

EXECUTOR_ENV = "MEDIA_LAKE_EXECUTOR"
# The broker and result backend of the Celery executor and of its workers: one setting for both.
# An amqp:// URL (py-amqp under Celery) is also what KEDA's RabbitMQ scaler reads (k8s/workers.yaml).
CELERY_BROKER_ENV = "MEDIA_LAKE_CELERY_BROKER"
CELERY_BROKER = os.environ.get(CELERY_BROKER_ENV, "amqp://guest:guest@127.0.0.1:5672//")
CELERY_BACKEND = os.environ.get("MEDIA_LAKE_CELERY_BACKEND", "rpc://")
# A step is acknowledged when it ends, not when it starts: a busy worker then reserves no further
# step (with early acks, a concurrency-1 GPU worker would hold the next GPU step while another GPU
# sat idle), and the waiting steps stay visible as queue length to the autoscaler.
CELERY_SETTINGS = {
    "worker_prefetch_multiplier": 1,
    "task_acks_late": True,
    "broker_connection_retry_on_startup": True,
}
CELERY_CONFIG = {"broker": CELERY_BROKER, "backend": CELERY_BACKEND, "config_source": CELERY_SETTINGS}

EXECUTORS = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor,
    "celery": celery_executor.configured(CELERY_CONFIG),
    "k8s": k8s_job_executor,
}


def celery_app_args() -> dict:
    """The Celery app's arguments, as the executor builds them, for the workers' app."""
    return CeleryExecutor.for_cli(**CELERY_CONFIG).app_args()


def chosen_executor(environ=os.environ) -> dg.ExecutorDefinition:
    name = environ.get(EXECUTOR_ENV, "in_process")
    if name not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={name!r}: choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]
