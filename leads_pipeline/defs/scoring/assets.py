"""The scoring stage: ``lead_scores`` per batch, and ``lead_fit_model``, the learned fit model."""

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from leads_pipeline.defs.config import DESCRIBED_FIELDS, RunConfig
from leads_pipeline.defs.executor import final_failure, stops_on_interrupt
from leads_pipeline.defs.partitions import batches, no_batch_leads, registered_batch
from leads_pipeline.defs.resources import LeadsDatabase
from leads_pipeline.defs.scoring.checks import CHECK_SPECS, scores_check
from leads_pipeline.lib.errors import ConfigurationError, LeadsError, PermanentError
from leads_pipeline.lib.scoring.batch import score_leads
from leads_pipeline.lib.scoring.config import ScoringConfig, load_config, parse_config, read_yaml_file
from leads_pipeline.lib.scoring.selection import list_lead_ids
from leads_pipeline.lib.store import access
from leads_pipeline.lib.store import scoring as store
from leads_pipeline.lib.store.batches import batch_exists, batch_lead_ids
from leads_pipeline.lib.store.lists import get_list

if TYPE_CHECKING:
    from leads_pipeline.lib.scoring.model import LabelledData

RESCORE_CONFIG_TAG = "leads/rescore_config"
"""A daily rescore run's tag: the configuration version whose scored leads its batch is made of when it starts."""


class LeadScoresConfig(dg.PermissiveConfig):
    """The scoring configuration: any section of the YAML file (``weights``, ``thresholds``, ``companyFit``,
    ``engagement``, ``recency``, ``model`` ...) given here replaces that section of ``config_file`` (default: the
    shipped configuration). ``as_of`` scores as of another time (ISO 8601), e.g. a backfill."""

    model_config = DESCRIBED_FIELDS

    config_file: str | None = None
    """The scoring configuration file (YAML); unset: the shipped configuration."""
    as_of: str | None = None
    """Score as of this time (ISO 8601, e.g. 2026-11-28T03:00:00Z) instead of now."""


def resolve_config(config: LeadScoresConfig) -> ScoringConfig:
    """The file's configuration with each section given in the run config replacing the file's section (so a
    ``companyFit`` given here is the whole ICP), validated as one document."""
    overrides = dict(config.model_extra or {})
    base = load_config(Path(config.config_file) if config.config_file else None)
    if not overrides:
        return base
    return parse_config({**base.as_document(), **overrides}, source="run config")


def _as_of(config: LeadScoresConfig) -> datetime:
    if not config.as_of:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(config.as_of)
    except ValueError as exc:
        raise ConfigurationError(
            f"as_of: expected an ISO 8601 time such as 2026-11-28T03:00:00Z, got {config.as_of!r}"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dg.asset(
    partitions_def=batches,
    group_name="scoring",
    kinds={"postgres", "python"},
    deps=["batch_leads"],
    check_specs=CHECK_SPECS,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
@stops_on_interrupt
def lead_scores(
    context: dg.AssetExecutionContext, config: LeadScoresConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """Scores 0-100 of the batch's leads with their components (data completeness, company fit, engagement,
    recency, and the fit model when configured), band (hot/warm/cold) and reasons; stages move new -> MQL -> SQL
    as thresholds are crossed. Every change is appended to the score history. Re-running is safe: one
    transaction, and unchanged scores append nothing."""
    batch_id = registered_batch(context)
    try:
        scoring = resolve_config(config)
        with database.connection() as conn:
            rescored = context.run.tags.get(RESCORE_CONFIG_TAG)
            if rescored is not None:  # the daily rescore's batch, made now rather than while the sensor ran
                store.create_rescore_batch(conn, batch_id, rescored)
            elif not batch_exists(conn, batch_id):
                raise PermanentError(
                    no_batch_leads(batch_id, "score", "import a file, or score a list with `leads score --list NAME`")
                )
            lead_ids = batch_lead_ids(conn, batch_id)
            model = None
            if scoring.model.mode != "off":
                # imported here: scikit-learn, SciPy and pandas took a third of `leads score`'s CPU (1.3 of 4.2 s)
                from leads_pipeline.lib.scoring.model import FitModel

                model = FitModel.from_row(store.load_model_row(conn, scoring.model.version))
            summary = score_leads(conn, lead_ids, scoring, now=_as_of(config), batch_id=batch_id, model=model)
            check = scores_check(conn, batch_id)
    except PermanentError as exc:  # a bad configuration or a missing batch: retrying cannot help
        raise final_failure(str(exc)) from exc
    except LeadsError as exc:
        raise dg.Failure(description=str(exc)) from exc
    response = summary.as_json()
    context.log.info(f"scored {summary.scored:,} leads of {batch_id}: average {summary.average}")
    return dg.MaterializeResult(
        metadata={
            "scored": dg.MetadataValue.int(summary.scored),
            "distribution": dg.MetadataValue.json(response["distribution"]),
            "averageScore": dg.MetadataValue.float(summary.average),
            "response": dg.MetadataValue.json(response),
            "histogram": dg.MetadataValue.md(summary.histogram_table()),
            "stages": dg.MetadataValue.json(response["stages"]),
            "stage_changes": dg.MetadataValue.int(summary.stage_changes),
            "history_appended": dg.MetadataValue.int(summary.history_appended),
            "config_version": dg.MetadataValue.text(summary.config_version),
            "model_version": dg.MetadataValue.text(summary.model_version or "none"),
        },
        check_results=[check],
    )


class FitModelConfig(RunConfig):
    """Where the historical outcomes are, one of: ``labelled_file``, a CSV with an outcome column ``label_column``
    (1/0, yes/no, won/lost), its columns mapped onto lead fields by ``mapping_file`` (YAML {column: field or null};
    others become custom.<column>); or ``labelled_list``, stored leads whose outcome is in the lead field
    ``label_column`` (e.g. custom.Converted pulled from a CRM). ``exclude_columns`` leaves columns (or, for a
    list, lead fields such as custom.Tags) out of the features, e.g. those filled only after sales contact."""

    labelled_file: str | None = None
    """A CSV of past leads with their outcome (or give ``labelled_list``)."""
    labelled_list: str | None = None
    """A list whose stored leads have their outcome in the field ``label_column`` (or give ``labelled_file``)."""
    label_column: str = "Converted"
    """The outcome: a column of ``labelled_file``, or a lead field of ``labelled_list`` (e.g. custom.Converted)."""
    mapping_file: str | None = None
    """YAML {column: lead field, or null to leave it out} for ``labelled_file``; other columns become custom fields."""
    exclude_columns: list[str] = []  # noqa: RUF012 - pydantic copies defaults
    """Columns or lead fields left out of the features, e.g. those filled only after sales contact."""
    holdout: float = 0.3
    """The fraction of the outcomes held out (stratified) to measure the model on."""
    seed: int = 0
    """The seed of the held-out split and of the models' training."""
    user: str | None = None
    """Who reads ``labelled_list``: they need the viewer role on it, as every command reading a list does (a
    non-member is told what an unknown list's name is told). Unset (a launch from the Dagster UI), the list's
    owner, as for the other assets."""


def read_mapping_file(path: Path) -> dict[str, str | None]:
    """A YAML mapping {column: lead field path, or null to leave the column out}."""
    document = read_yaml_file(path, "mapping file")
    if not isinstance(document, dict) or not all(isinstance(v, str | None) for v in document.values()):
        raise ConfigurationError(f"{path}: expected a mapping of column: field (or null)")
    return {str(k): v for k, v in document.items()}


def _calibration_md(table: list[dict[str, float]]) -> str:
    lines = ["| predicted | leads | mean predicted | observed rate |", "|---|---|---|---|"]
    lines += [
        f"| {r['from']:.1f}-{r['to']:.1f} | {r['leads']} | {r['predicted']:.3f} | {r['observed']:.3f} |" for r in table
    ]
    return "\n".join(lines)


def _labelled_data(config: FitModelConfig, database: LeadsDatabase) -> "LabelledData":
    from leads_pipeline.lib.scoring.model import labelled_leads, read_labelled_file

    if (config.labelled_file is None) == (config.labelled_list is None):
        raise ConfigurationError("give exactly one of labelled_file (a CSV) or labelled_list (stored leads)")
    if config.labelled_file is not None:
        mapping = read_mapping_file(Path(config.mapping_file)) if config.mapping_file else None
        return read_labelled_file(
            Path(config.labelled_file), config.label_column, mapping=mapping, exclude=config.exclude_columns
        )
    with database.connection() as conn:
        lead_list = get_list(conn, config.labelled_list or "", config.user)
        user = config.user or lead_list.owner
        access.require(conn, lead_list.id, user, "viewer", "training the fit model on its leads", write=False)
        leads = [s.lead for s in store.load_leads(conn, list_lead_ids(conn, lead_list.id))]
    return labelled_leads(leads, config.label_column, source=f"list {lead_list.name}", exclude=config.exclude_columns)


@dg.asset(group_name="scoring", kinds={"scikitlearn", "postgres"})
def lead_fit_model(
    context: dg.AssetExecutionContext, config: FitModelConfig, database: LeadsDatabase
) -> dg.MaterializeResult:
    """A learned model of which leads convert, trained on historical outcomes and measured on a stratified
    held-out part (accuracy, AUC, calibration); stored with a version that every score made with it records.
    Scoring uses it when the scoring configuration sets model.mode to component or replace."""
    from leads_pipeline.lib.scoring.model import train

    try:
        data = _labelled_data(config, database)
        model = train(data, holdout=config.holdout, seed=config.seed)
    except LeadsError as exc:
        raise final_failure(str(exc)) from exc
    metrics = model.metrics
    with database.connection() as conn:
        store.save_model(
            conn,
            model.version,
            kind="histogram-gradient-boosting",
            features=model.spec.as_json(),
            metrics=metrics,
            training={"source": data.source, "label": config.label_column, "rows": len(data.rows)},
            model=model.serialize(),
        )
    context.log.info(f"trained {model.version}: accuracy {metrics['accuracy']}, AUC {metrics['auc']}")
    return dg.MaterializeResult(
        metadata={
            "version": dg.MetadataValue.text(model.version),
            "accuracy": dg.MetadataValue.float(metrics["accuracy"]),
            "auc": dg.MetadataValue.float(metrics["auc"] if metrics["auc"] is not None else float("nan")),
            "brier": dg.MetadataValue.float(metrics["brier"]),
            "calibration_error": dg.MetadataValue.float(metrics["calibration_error"]),
            "calibration": dg.MetadataValue.md(_calibration_md(metrics["calibration"])),
            "holdout_rows": dg.MetadataValue.int(metrics["rows"]),
            "holdout_seed": dg.MetadataValue.int(metrics["seed"]),
            "training_rows": dg.MetadataValue.int(len(data.rows)),
            "features": dg.MetadataValue.json(model.spec.as_json()),
            "settings": dg.MetadataValue.text(" + ".join(metrics["settings"])),
        }
    )
