"""The selection options shared by ``leads search``, ``leads bulk`` and ``leads dedupe`` (and, later,
enrichment and CRM sync): the same flags select the same leads everywhere; pass them to ``Selection.build``."""

from __future__ import annotations

from typing import Annotated

import typer

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
