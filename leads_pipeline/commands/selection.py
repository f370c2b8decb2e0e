"""The selection options shared by ``leads search``, ``leads bulk`` and ``leads dedupe`` (and, later,
enrichment and CRM sync): the same flags select the same leads everywhere; pass them to ``Selection.build``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from leads_pipeline.commands.common import print_line

if TYPE_CHECKING:
    from leads_pipeline.lib.filters import Selection
    from leads_pipeline.lib.store.lists import Connection

ListOption = Annotated[list[str] | None, typer.Option("--list", help="Only leads of this list (repeatable).")]
WhereOption = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        help='A filter "FIELD OP VALUE" (repeatable, all must hold): = != < <= > >= ~ (contains) !~ in, not in, '
        'is empty, is not empty; custom fields as custom.NAME. Example: --where "country in DE, FR"',
    ),
]
TagOption = Annotated[list[str] | None, typer.Option("--tag", help="Only leads with this tag (repeatable: any).")]
StageOption = Annotated[list[str] | None, typer.Option("--stage", help="Only leads in this stage (repeatable).")]
ScoreMinOption = Annotated[int | None, typer.Option("--score-min", help="Only leads scored at least this.")]
ScoreMaxOption = Annotated[int | None, typer.Option("--score-max", help="Only leads scored at most this.")]
IdOption = Annotated[list[int] | None, typer.Option("--id", help="Only this lead id (repeatable).")]


def note_unheard_stages(conn: Connection, selection: Selection, user: str) -> None:
    """Say on standard error which ``--stage`` of a selection that matched no lead no lead of its lists has and
    none a person may set (``unheard_of_stages``): a typo, or ``MQL`` for the stored ``mql``. ``leads search``
    said so, ``leads bulk`` and ``leads enrich`` said "0 leads" and no more; each calls this once nothing
    matched (the command's outcome and exit code stay its own)."""
    from leads_pipeline.lib.scoring.stages import MANUAL_STAGES
    from leads_pipeline.lib.store.search import unheard_of_stages

    for stage in unheard_of_stages(conn, selection, user):
        print_line(
            f"note: no lead of the selected lists has stage {stage!r}, and it is none of {', '.join(MANUAL_STAGES)}"
            " (a stage a CRM set is searched as stored)",
            err=True,
        )
