"""The Celery app of media-lake's workers, built with the broker, backend and settings of the
celery executor (defs/orchestration/executors.py), so a worker needs no config file:

    dagster-celery worker start -A media_assets.celery_app -q cpu-normalization,cpu-metadata,cpu-nlp
    dagster-celery worker start -A media_assets.celery_app -q gpu-transcription -- --concurrency 1 --pool solo

A worker process keeps the models it loaded (functools.cache in lib/) for every later step.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from media_assets.defs.orchestration.executors import celery_app_args

app = make_app(celery_app_args())
execute_plan = create_task(app)
