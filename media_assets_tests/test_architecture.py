"""The shape of the code, enforced: pure logic without Dagster, domains that depend one way, one
declaration per stage that the assets, the job, the catalog and the README follow, and one default
per setting."""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import dagster as dg
import pytest

from media_assets.lib.core.settings import ENV_PREFIX, knobs
from media_assets.lib.stages import STAGES, markdown_table
from media_assets.resources import SETTINGS_RESOURCES, SpeechResource

PACKAGE = Path(__file__).resolve().parents[1] / "media_assets"
README = PACKAGE.parent / "README.md"
# a domain may import from those listed before it, never after
LAYERS = ("core", "media", "speech", "text", "distribution")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _python_files("lib", "demo"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_logic_imports_no_dagster(path: Path) -> None:
    offending = [module for module, _ in _imports(path) if module.split(".")[0].startswith("dagster")]
    assert not offending, f"{path.relative_to(PACKAGE)} imports {offending}: Dagster belongs in defs/ and resources/"


@pytest.mark.parametrize("path", _python_files("lib"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_domains_depend_one_way_and_never_reach_into_private_names(path: Path) -> None:
    relative = path.relative_to(PACKAGE / "lib").parts
    domain = relative[0] if len(relative) > 1 else None
    for module, names in _imports(path):
        parts = module.split(".")
        if parts[:2] != ["media_assets", "lib"] or len(parts) < 3:
            continue
        if domain in LAYERS and parts[2] in LAYERS:
            assert LAYERS.index(parts[2]) <= LAYERS.index(domain), f"{path.name}: {domain} must not import {module}"
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{path.relative_to(PACKAGE)} reaches into {module}: {private}"


def test_every_stage_lives_in_its_domain_folder_with_a_schema_and_known_upstreams() -> None:
    seen: set[str] = set()
    for stage in STAGES:
        assert (PACKAGE / "lib" / stage.domain / f"{stage.name}.py").is_file(), stage.name
        assert stage.run.__module__ == f"media_assets.lib.{stage.domain}.{stage.name}"
        assert (PACKAGE.parent / "schemas" / f"{stage.name}.schema.json").is_file(), stage.name
        assert set(stage.upstream) <= seen, f"{stage.name} reads a stage declared after it"
        assert (PACKAGE / "defs" / stage.domain / "assets.py").is_file(), stage.domain
        assert stage.kinds and stage.quality_checks[0].name == "contract"
        seen.add(stage.name)


def test_the_readme_asset_table_is_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    begin, end = "<!-- stages:begin -->\n", "\n<!-- stages:end -->"
    written = text[text.index(begin) + len(begin) : text.index(end)]
    assert written == markdown_table(), "regenerate it: uv run python -m media_assets.lib.stages"


def _leaves(settings, prefix: str = "") -> dict[str, object]:
    """Every knob of a (nested) settings dataclass, by dotted name."""
    found = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if dataclasses.is_dataclass(value):
            found |= _leaves(value, f"{prefix}{field.name}.")
        else:
            found[prefix + field.name] = value
    return found


def _another(value, annotation) -> object:
    """A valid value of the field's type that differs from `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 3
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, list):
        return [*value, "xx"]
    return 7 if "int" in str(annotation) else "other"  # None defaults: int | None or str | None


@pytest.mark.parametrize("domain", SETTINGS_RESOURCES)
def test_each_knob_has_one_default_and_one_resource_field(domain: str, monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)  # the declared defaults, not this machine's
    resource_class = SETTINGS_RESOURCES[domain]
    defaults = _leaves(resource_class().settings())
    lib_defaults = _leaves(type(resource_class().settings())())
    assert defaults == lib_defaults, "a resource default differs from the lib dataclass default"
    wired: dict[str, str] = {}
    for name, field in resource_class.model_fields.items():
        value = _another(field.default, field.annotation)
        knobs = _leaves(resource_class(**{name: value}).settings())
        changed = [knob for knob, v in knobs.items() if v != defaults[knob]]
        assert len(changed) == 1, f"{domain}.{name} changes {changed}, not exactly one knob"
        wired[changed[0]] = name
    assert set(wired) == set(defaults), f"knobs without a resource field: {sorted(set(defaults) - set(wired))}"


def test_a_run_config_that_sets_one_knob_keeps_the_others_from_the_environment(monkeypatch) -> None:
    """Dagster builds a run's resource from the run config alone: the knobs it does not name keep
    their MEDIA_LAKE_* values, not the declared defaults."""
    monkeypatch.setenv("MEDIA_LAKE_ASR_MODEL", "tiny.en")
    monkeypatch.setenv("MEDIA_LAKE_NUM_SPEAKERS", "3")
    seen = {}

    @dg.asset(required_resource_keys={"speech"})
    def probe(context) -> None:
        seen["settings"] = context.resources.speech.settings()

    config = {"resources": {"speech": {"config": {"num_speakers": 2}}}}
    assert dg.materialize([probe], resources={"speech": SpeechResource.from_env()}, run_config=config).success
    assert seen["settings"].asr.model == "tiny.en"
    assert seen["settings"].diarization.num_speakers == 2


def test_a_setting_without_a_knob_declaration_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Loose:
        threshold: float = 0.5

    with pytest.raises(TypeError, match=r"Loose\.threshold is neither"):
        knobs(Loose)


@pytest.mark.parametrize(
    ("setting", "executor"),
    [
        (None, "in_process"),
        ("in_process", "in_process"),
        ("multiprocess", "multiprocess"),
        ("celery", "celery"),
        ("k8s", "k8s"),
    ],
)
def test_the_executor_is_chosen_by_configuration(setting: str | None, executor: str) -> None:
    """MEDIA_LAKE_EXECUTOR picks episode_job's executor; the Celery one is configured with the
    broker and backend its workers' app uses (media_assets.celery_app)."""
    from media_assets.defs.orchestration.executors import CELERY_CONFIG, celery_app_args, chosen_executor

    chosen = chosen_executor({} if setting is None else {"MEDIA_LAKE_EXECUTOR": setting})
    assert chosen.name == executor
    if executor == "celery":
        app = celery_app_args()
        assert (app["broker"], app["backend"]) == (CELERY_CONFIG["broker"], CELERY_CONFIG["backend"])
        assert app["config_source"].task_acks_late is True and app["config_source"].worker_prefetch_multiplier == 1
    with pytest.raises(ValueError, match="choose one of in_process, multiprocess, celery, k8s"):
        chosen_executor({"MEDIA_LAKE_EXECUTOR": "dask"})
