"""``leads search``: text and filters on the demo file, pagination, CSV, access, selection batches."""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

import pytest
from psycopg import sql
from rich.console import Console
from typer.testing import CliRunner

from leads_pipeline.commands import common
from leads_pipeline.lib.filters import Selection
from leads_pipeline.lib.store.db import connect
from leads_pipeline.lib.store.search import create_selection_batch, select_lead_ids
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE
from leads_pipeline_tests.support import import_file, import_text


@pytest.fixture
def fair(leads: Leads, database_url: str) -> Leads:
    leads.ok("lists", "create", "fair")
    import_file(database_url, DEMO_FILE, "fair")
    return leads


def _emails(leads: Leads, *args: str, user: str = "tester") -> list[str]:
    return [lead["email"] for lead in leads.json("search", *args, "--json", user=user)["leads"]]


def test_text_query_matches_substrings_of_names_email_domain_company_title(fair: Leads) -> None:
    assert _emails(fair, "sheryl") == ["zunigavanessa@smith.info", "mariokhan@ryan-pope.org"]
    assert _emails(fair, "SHERYL baxter") == ["zunigavanessa@smith.info"], "every word must appear"
    assert _emails(fair, "rasmussen") == ["zunigavanessa@smith.info"]
    assert _emails(fair, "@infosys.example") == ["priya.sharma@infosys.example"]
    assert _emails(fair, "infosys") == ["priya.sharma@infosys.example"], "the email's domain is searched"
    # the local part is sealed: a whole address is found through its blind index, a piece of it is not
    assert _emails(fair, "Priya.Sharma@Infosys.example") == ["priya.sharma@infosys.example"]
    assert _emails(fair, "zunigavanessa") == []
    assert _emails(fair, "garcía") == ["ana.garcia@acme.es"]
    assert _emails(fair, "garcia lopez") == ["ana.garcia@acme.es"], "accents are ignored"
    assert _emails(fair, "MULLER") == _emails(fair, "müller") == ["juergen@beispiel.de"]
    assert _emails(fair, "100%") == []


def test_each_lead_is_shown_whole_at_80_columns(fair: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (a pipe, a log) the table of nine columns cut every email to a dozen letters, and grepping
    the output for an address found nothing. There each lead takes two lines, every value whole; a wide
    terminal keeps the table."""
    [lead] = fair.json("search", "garcía", "--json")["leads"]
    monkeypatch.setattr(common, "console", Console(width=80))
    lines = fair.ok("search", "garcía").splitlines()
    assert lines[:2] == [
        f"{lead['id']}  Ana García-López in fair",
        f"  ana.garcia@acme.es, {lead['phone']}, {lead['company']}, stage new",  # no title: left out
    ]
    monkeypatch.setattr(common, "console", Console(width=200))
    [row] = [line for line in fair.ok("search", "garcía").splitlines() if "ana.garcia@acme.es" in line]
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:4] == [
        lead["id"],
        "fair",
        "Ana García-López",
        "ana.garcia@acme.es",
    ]


def test_the_cursor_of_the_next_page_is_one_line_however_long(fair: Leads) -> None:
    """The cursor holds the last lead's sort value: sorted by a long company name it was broken over two lines at
    80 columns (a pipe, a log), and the line a script or a person copied was not the cursor."""
    fair.ok("bulk", "set", "company", "International Business Machines Corporation Deutschland GmbH", "--where",
            "country in ES, DE")  # fmt: skip
    both = ("--where", "country in ES, DE", "--sort", "company")
    [line] = fair.run("search", *both, "--limit", "1").stderr.splitlines()
    assert line.startswith("more: --after ") and len(line) > 80
    cursor = line.split()[-1]
    pages = _emails(fair, *both, "--limit", "1") + _emails(fair, *both, "--limit", "1", "--after", cursor)
    assert pages == _emails(fair, *both) and len(pages) == 2


def test_a_day_in_a_date_filter_is_the_whole_day(fair: Leads, database_url: str) -> None:
    """``created_at = DAY`` finds the leads created that day (it compared with that day's midnight and found
    none), ``<= DAY`` includes them and ``> DAY`` does not; a time of day still compares exactly."""
    with connect(database_url) as conn:
        row = conn.execute(  # the day the leads were created (not today's date: a run may cross midnight)
            "SELECT min(created_at)::date AS today, min(created_at)::date - 1 AS yesterday FROM leads"
        ).fetchone()
        assert row is not None
    today, yesterday = row["today"].isoformat(), row["yesterday"].isoformat()
    every = len(_emails(fair))
    assert every > 0
    for where, found in [
        (f"created_at = {today}", every),
        (f"created_at <= {today}", every),
        (f"created_at >= {today}", every),
        (f"created_at in {yesterday}, {today}", every),
        (f"created_at > {today}", 0),
        (f"created_at < {today}", 0),
        (f"created_at != {today}", 0),
        (f"created_at not in {today}", 0),
        (f"created_at = {yesterday}", 0),
        (f"created_at > {yesterday}T00:00", every),
    ]:
        assert len(_emails(fair, "--where", where)) == found, where


def test_a_phone_filter_without_country_code_reads_it_in_each_leads_country(fair: Leads) -> None:
    """Ana (Spain) has +34 912 345 678: written as her Spanish colleagues write it, the number finds her (it was
    read as a US number only and found nobody); "!=" and "not in" leave her out; a number the import read as a US
    one is still found so."""
    ana = ["ana.garcia@acme.es"]
    assert _emails(fair, "--where", "phone = 912 345 678") == ana
    assert _emails(fair, "--where", "phone in 912 345 678, +1 000") == ana
    every = len(_emails(fair))
    assert len(_emails(fair, "--where", "phone != 912 345 678")) == every - 1
    assert ana[0] not in _emails(fair, "--where", "phone not in 912 345 678")
    assert _emails(fair, "--where", "phone = 229.077.5154") == ["zunigavanessa@smith.info"]  # Chile's, read as US


def test_a_phone_filter_finds_a_number_read_in_its_imports_default_region(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """Claire (France) has "020 7946 0958", a London number and none in France: the import with
    ``--default-region GB`` stored it as +442079460958, and the filter, which read the number in the US and in
    France only, found nobody. Zoé's file (``--default-region DE``) had the same digits, stored as the German
    reading: both are found, whatever region their import used. A number that is one in the lead's country is
    read there only: Uwe (Germany) has the French +33 30 1234567, and "030 1234567" is Hans's Berlin number."""
    leads.ok("lists", "create", "uk")
    leads.ok("lists", "create", "de")
    uk = "email,phone,country\nclaire@x.fr,020 7946 0958,FR\nhans@x.de,030 1234567,DE\nuwe@x.de,+33 30 1234567,DE\n"
    import_text(database_url, tmp_path / "uk.csv", uk, "uk", default_region="GB")
    import_text(
        database_url, tmp_path / "de.csv", "email,phone,country\nzoe@x.fr,020 7946 0958,FR\n", "de", default_region="DE"
    )
    assert _emails(leads, "--list", "uk", "--where", "phone = 020 7946 0958") == ["claire@x.fr"]
    assert _emails(leads, "--where", "phone = 020 7946 0958") == ["claire@x.fr", "zoe@x.fr"]
    assert _emails(leads, "--where", "phone = +49 20 79460958") == ["zoe@x.fr"]
    assert _emails(leads, "--list", "uk", "--where", "phone in 020 7946 0958, 030 1234567") == [
        "claire@x.fr",
        "hans@x.de",
    ]
    assert _emails(leads, "--list", "uk", "--where", "phone != 020 7946 0958") == ["hans@x.de", "uwe@x.de"]
    assert _emails(leads, "--where", "phone = 030 1234567") == ["hans@x.de"]
    assert _emails(leads, "--where", "phone = +33 30 1234567") == ["uwe@x.de"]


def test_a_custom_code_with_a_leading_zero_is_compared_as_text(fair: Leads) -> None:
    """Postal codes and ids kept in custom: "01234" is a code, not the number 1234 (a bulk action on
    custom.Zip = 01234 also took zip 1234); numbers without a leading zero still compare as numbers."""
    fair.ok("bulk", "set", "custom.Zip", "01234", "--where", "country = ES")
    fair.ok("bulk", "set", "custom.Zip", "1234", "--where", "country = IN")
    fair.ok("bulk", "set", "custom.Zip", "1234.0", "--where", "country = DE")
    spain, india, germany = ["ana.garcia@acme.es"], ["priya.sharma@infosys.example"], ["juergen@beispiel.de"]
    assert _emails(fair, "--where", "custom.Zip = 01234") == spain
    assert sorted(_emails(fair, "--where", "custom.Zip = 1234")) == sorted(india + germany)
    assert _emails(fair, "--where", "custom.Zip in 01234, 99999") == spain
    assert sorted(_emails(fair, "--where", "custom.Zip > 1000")) == sorted(india + germany)


def test_a_custom_number_written_with_an_exponent_compares_as_a_number(fair: Leads) -> None:
    """``custom.Revenue > 1e5`` compared as text: it took 90000 ("9" sorts after "1") and ``= 2.5e5`` missed
    250000. An exponent, in the filter or in the stored value, in either case, is a number like any other."""
    fair.ok("bulk", "set", "custom.Revenue", "250000", "--where", "country = ES")
    fair.ok("bulk", "set", "custom.Revenue", "90000", "--where", "country = IN")
    fair.ok("bulk", "set", "custom.Revenue", "2.5E5", "--where", "country = DE")
    spain, india, germany = ["ana.garcia@acme.es"], ["priya.sharma@infosys.example"], ["juergen@beispiel.de"]
    assert sorted(_emails(fair, "--where", "custom.Revenue > 1e5")) == sorted(spain + germany)
    assert sorted(_emails(fair, "--where", "custom.Revenue = 2.5e5")) == sorted(spain + germany)
    assert _emails(fair, "--where", "custom.Revenue < 1E5") == india
    assert sorted(_emails(fair, "--where", "custom.Revenue in 9e4, 250000")) == sorted(spain + india + germany)


def test_filters_on_canonical_and_custom_fields(fair: Leads) -> None:
    assert _emails(fair, "--where", "country = es") == ["ana.garcia@acme.es"]
    assert _emails(fair, "--where", "country in ES, IN") == ["ana.garcia@acme.es", "priya.sharma@infosys.example"]
    # country names are read as an import reads them: the ISO code the lead has
    assert _emails(fair, "--where", "country in Spain, india") == _emails(fair, "--where", "country in ES, IN")
    assert _emails(fair, "--where", "country = Chile") == _emails(fair, "--where", "country = CL") != []
    assert "'Narnia' is not a country" in fair.fails("search", "--where", "country = Narnia")
    assert _emails(fair, "--where", "email = Ana.Garcia@ACME.es") == ["ana.garcia@acme.es"]
    assert _emails(fair, "--where", "phone = +34 912 345 678") == ["ana.garcia@acme.es"]
    assert _emails(fair, "--where", "company ~ llc", "--where", "last_name = mata") == ["jaredjuarez@carroll.org"]
    assert len(_emails(fair, "--where", "phone is empty")) == 1  # Jürgen's "not a phone"
    assert _emails(fair, "--where", "custom.Index > 34") == ["priya.sharma@infosys.example"]
    assert _emails(fair, "--where", 'custom."Customer Id" = x5') == ["priya.sharma@infosys.example"]
    assert _emails(fair, "--where", "custom.Index >= 33", "--where", "custom.Index <= 33") == ["ana.garcia@acme.es"]
    assert len(_emails(fair, "--where", "first_name != sheryl")) == 31
    assert len(_emails(fair, "--stage", "new")) == 33
    assert _emails(fair, "--stage", "sql") == []
    assert _emails(fair, "--score-min", "1") == [], "no lead is scored yet"


def test_a_linkedin_filter_reads_the_url_as_the_import_does(fair: Leads, database_url: str) -> None:
    """A member id keeps its case (it was lower-cased and found nobody); a vanity name is found in any case."""
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET linkedin_url = 'https://www.linkedin.com/in/ACoAAB12345' WHERE country = 'ES'")
        conn.execute("UPDATE leads SET linkedin_url = 'https://www.linkedin.com/in/priya-s' WHERE country = 'IN'")
    assert _emails(fair, "--where", "linkedin_url = linkedin.com/in/ACoAAB12345/") == ["ana.garcia@acme.es"]
    assert _emails(fair, "--where", "linkedin_url = https://www.linkedin.com/in/acoaab12345") == []
    assert _emails(fair, "--where", "linkedin_url = HTTPS://WWW.LINKEDIN.COM/IN/PRIYA-S") == [
        "priya.sharma@infosys.example"
    ]


def test_keyset_pagination_walks_every_lead_once_in_sort_order(fair: Leads, database_url: str) -> None:
    with connect(database_url) as conn:  # some scores, some NULL, with ties: the hard case for keyset paging
        conn.execute("UPDATE leads SET score = (id % 4) * 10 WHERE id % 3 <> 0")
    for sort in ("id", "-id", "score", "-score", "last_name", "-created_at", "country"):
        seen: list[dict[str, object]] = []
        cursor: str | None = None
        while True:
            extra = ["--after", cursor] if cursor else []
            page = fair.json("search", "--sort", sort, "--limit", "4", "--json", *extra)
            seen.extend(page["leads"])
            cursor = page["nextCursor"]
            if cursor is None:
                break
        everything = fair.json("search", "--sort", sort, "--limit", "100", "--json")["leads"]
        assert [lead["id"] for lead in seen] == [lead["id"] for lead in everything], sort
        assert len(seen) == 33
        field = sort.lstrip("-")
        values = [int(lead[field]) if field == "id" else lead[field] for lead in everything]
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=sort.startswith("-")), sort  # type: ignore[type-var]
        assert values[len(present) :] == [None] * (len(values) - len(present)), "empty values last"
    assert "belongs to a search sorted by score" in fair.fails("search", "--sort", "id", "--after", _cursor(fair))
    assert "is not a cursor" in fair.fails("search", "--after", "garbage")


def _cursor(leads: Leads) -> str:
    cursor = leads.json("search", "--sort", "score", "--limit", "2", "--json")["nextCursor"]
    assert isinstance(cursor, str)
    return cursor


def test_bad_filters_and_options_are_one_line(fair: Leads) -> None:
    error = fair.fails("search", "--where", "employee_count ~ big")
    assert "operator ~ does not apply to employee_count" in error and ">=" in error
    assert "unknown field 'colour'" in fair.fails("search", "--where", "colour = red")
    assert "sort on one of" in fair.fails("search", "--sort", "colour")
    assert "--limit must be between 1 and 10000" in fair.fails("search", "--limit", "0")
    assert "list 'nope': not found or not shared with you" in fair.fails("search", "--list", "nope")
    # compared as text, "1e400" matched every custom value sorting after it (21 leads of the real sample)
    assert "'1e400' is not a finite number" in fair.fails("search", "--where", "custom.Visits > 1e400")
    # --json with --csv printed JSON, yet audited the page as a CSV export
    assert fair.fails("search", "--json", "--csv") == "error: --json and --csv: give one of them"


def test_a_whole_number_beyond_postgresqls_is_refused_by_the_filter(fair: Leads) -> None:
    """A whole-number field compared with a number past bigint's (a typo's extra digits) ended the command with a
    traceback (NumericValueOutOfRange: bigint out of range); the filter now says which numbers it takes."""
    for where in ("score > 99999999999999999999999", "id = 9223372036854775808", "employee_count < -1" + "0" * 19):
        error = fair.fails("search", "--where", where)
        assert "is a whole number between -9223372036854775808 and 9223372036854775807" in error, where
    assert len(fair.json("search", "--where", "id < 9223372036854775807", "--json")["leads"]) > 0


def test_csv_output_is_formula_safe(fair: Leads, database_url: str) -> None:
    """Also in a spreadsheet splitting at ";" (most of Europe): a formula after a separator in a cell does not
    run (``a;=1+1`` was written unquoted and ran ``=1+1``), and every cell is quoted."""
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE leads SET title = '=HYPERLINK(\"http://evil\")', notes = '@SUM(A1)', city = 'a;=1+1' WHERE id = 1"
        )
    out = fair.ok("search", "--id", "1", "--id", "2", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["title"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["notes"] == "'@SUM(A1)"
    assert rows[0]["city"] == "a;'=1+1" and '"a;\'=1+1"' in out
    assert out.startswith('"id","'), "every cell quoted"
    assert rows[0]["phone"].startswith("'+")
    assert rows[0]["list"] == "fair" and rows[0]["custom.Customer Id"] == "DD37Cf93aecA6Dc"


def test_csv_and_json_pages_carry_the_leads_tags_which_an_import_of_the_csv_leaves_out(
    fair: Leads, database_url: str, tmp_path: Path
) -> None:
    """A segment exported with --csv lost its tags (``leads show`` and ``bulk export`` have them): the CSV has a
    tags column as ``bulk export`` writes it, --json the list ``show --json`` gives. Imported back, the column is
    left out with the export's other bookkeeping columns, not kept as a custom field "tags"."""
    fair.ok("bulk", "tag", "hot", "--id", "1")
    fair.ok("bulk", "tag", "EMEA", "--id", "1")
    out = fair.ok("search", "--id", "1", "--id", "2", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["id"], r["tags"]) for r in rows] == [("1", "EMEA, hot"), ("2", "")]
    assert [lead["tags"] for lead in fair.json("search", "--id", "1", "--id", "2", "--json")["leads"]] == [
        ["EMEA", "hot"],
        [],
    ]
    fair.ok("lists", "create", "shared")
    import_text(database_url, tmp_path / "segment.csv", out, "shared")
    [lead] = fair.json("search", "--list", "shared", "--where", f"email = {rows[0]['email']}", "--json")["leads"]
    assert "tags" not in lead["custom"] and lead["tags"] == []


def test_csv_pages_of_one_selection_have_the_same_columns(fair: Leads, database_url: str) -> None:
    """A CSV export paged with --after: each page chose the custom columns of its own leads, so the pages of one
    export did not line up (custom.Alpha on the first, custom.Beta on the second); now every page has the
    custom fields of the whole selection, sorted."""
    with connect(database_url) as conn:
        conn.execute("""UPDATE leads SET custom = '{"Beta": "b", "Alpha": "a"}' WHERE id = 1""")
        conn.execute("""UPDATE leads SET custom = '{"Gamma": "g"}' WHERE id = 2""")
    first = fair.run("search", "--id", "1", "--id", "2", "--limit", "1", "--csv")
    assert first.exit_code == 0, first.stderr
    cursor = first.stderr.split("--after", 1)[1].split()[0]
    second = fair.ok("search", "--id", "1", "--id", "2", "--limit", "1", "--after", cursor, "--csv")
    [header_1, *rows_1] = list(csv.reader(io.StringIO(first.stdout)))
    [header_2, *rows_2] = list(csv.reader(io.StringIO(second)))
    assert header_1 == header_2
    assert header_1[-3:] == ["custom.Alpha", "custom.Beta", "custom.Gamma"]
    assert [row[-3:] for row in (*rows_1, *rows_2)] == [["a", "b", ""], ["", "", "g"]]


def test_json_outputs_print_amounts_as_numbers(fair: Leads, database_url: str) -> None:
    """``annual_revenue`` (numeric) came as a string ("2000000.50") next to ``employee_count`` as a number."""
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET annual_revenue = 2000000.50, employee_count = 1200 WHERE id = 1")
        conn.execute("UPDATE leads SET annual_revenue = 3000000 WHERE id = 2")
    found = fair.json("search", "--id", "1", "--id", "2", "--json")["leads"]
    assert (found[0]["annual_revenue"], found[0]["employee_count"]) == (2000000.5, 1200)
    assert found[1]["annual_revenue"] == 3000000 and isinstance(found[1]["annual_revenue"], int)
    shown = fair.json("show", "1", "--json")["fields"]
    assert (shown["annual_revenue"], shown["employee_count"]) == (2000000.5, 1200)


def test_a_number_filter_reads_numbers_as_the_import_does(fair: Leads, database_url: str) -> None:
    """``employee_count >= 1,000`` was refused ("is a whole number") although the import reads "1,000"."""
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET employee_count = 1200, annual_revenue = 2500000 WHERE id = 1")
        conn.execute("UPDATE leads SET employee_count = 999, annual_revenue = 2000000 WHERE id = 2")
    two = ("--id", "1", "--id", "2")
    for where in ("employee_count >= 1,000", "employee_count >= 1.000", "employee_count > 1k", "annual_revenue > $2M"):
        assert [r["id"] for r in fair.json("search", *two, "--where", where, "--json")["leads"]] == ["1"], where


def test_search_only_sees_lists_the_user_can_read(fair: Leads, database_url: str) -> None:
    fair.ok("lists", "create", "private", user="mallory")
    assert _emails(fair, "sheryl", user="mallory") == []
    refusal = fair.fails("search", "--list", "fair", user="mallory")  # named the owner, who could share it
    assert "list 'fair': not found or not shared with you" in refusal and "tester" not in refusal
    fair.ok("lists", "share", "fair", "mallory", "--role", "viewer")
    assert len(_emails(fair, "sheryl", user="mallory")) == 2
    fair.ok("lists", "archive", "fair")
    assert _emails(fair, "sheryl") == [], "archived lists are hidden unless named"
    assert len(_emails(fair, "sheryl", "--list", "fair")) == 2


def test_selection_batch_records_the_matching_leads(fair: Leads, database_url: str) -> None:
    selection = Selection.build(lists=["fair"], where=["country in ES, IN"])
    with connect(database_url) as conn:
        expected = select_lead_ids(conn, selection, "tester")
        batch_id, count = create_selection_batch(conn, selection, "tester")
        conn.commit()
        batch = conn.execute("SELECT * FROM batches WHERE id = %s", (batch_id,)).fetchone()
        members = [
            r["lead_id"]
            for r in conn.execute("SELECT lead_id FROM batch_members WHERE batch_id = %s ORDER BY lead_id", (batch_id,))
        ]
    assert count == 2 and members == expected
    assert batch is not None and batch["kind"] == "selection"
    assert batch["description"] == "lists fair; country in ES, IN"


def test_a_selection_batch_describes_no_address_or_number(fair: Leads, database_url: str) -> None:
    """A batch selected by a person's address or number (`leads score --where "email = x"`) is kept after the
    person is erased: its description masks them, as the audit log does (before: the address in clear)."""
    where = ["email = ana.garcia@acme.es", "phone = +34 912 345 678"]
    with connect(database_url) as conn:
        batch_id, _ = create_selection_batch(conn, Selection.build(lists=["fair"], where=where), "tester")
        batch = conn.execute("SELECT description FROM batches WHERE id = %s", (batch_id,)).fetchone()
    assert batch == {"description": "lists fair; email = <value>; phone = <value>"}
    fair.ok("lists", "create", "0612345678")  # a list's name is no person's number: it is kept
    selection = Selection.build(lists=["0612345678"], where=["company = 0612345679"])
    with connect(database_url) as conn:
        batch_id, _ = create_selection_batch(conn, selection, "tester")
        batch = conn.execute("SELECT description FROM batches WHERE id = %s", (batch_id,)).fetchone()
    assert batch == {"description": "lists 0612345678; company = <phone>"}


def test_csv_output_is_an_export_leaving_out_opted_out_leads_and_audited(fair: Leads) -> None:
    """A page written as CSV is an export as `leads bulk export` is: a lead who opted out of selling is left out,
    and both are audited naming the leads, so the list's owner sees who exported them. Before, the CSV page held
    every lead and wrote no entry, and bulk export's entry named no lead: only its author saw it."""
    fair.ok("lists", "create", "elsewhere", user="bob")  # tester no longer owns every list
    fair.ok("lists", "share", "fair", "vic", "--role", "viewer")
    fair.ok("privacy", "opt-out", "ana.garcia@acme.es")
    out = fair.ok("search", "--list", "fair", "--csv", "--limit", "100", user="vic")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) > 20 and "ana.garcia@acme.es" not in out
    fair.ok("bulk", "export", "--list", "fair", user="vic")
    exports = [e for e in fair.json("audit", "--action", "leads.export", "--json") if e["actor"] == "vic"]
    assert len(exports) == 2, "the owner of 'fair' sees both exports of its leads"
    assert (
        exports[0]["details"]["leadIds"]
        == exports[1]["details"]["leadIds"]
        == [str(i) for i in sorted(int(r["id"]) for r in rows)]
    )


def test_dates_are_utc_whatever_zone_the_server_defaults_to(fair: Leads, database_url: str) -> None:
    """An embedded server takes its default time zone from the TZ of the shell that created it (initdb), a
    server of one's own from its configuration: under Asia/Kolkata a lead created at 20:00 UTC on Nov 3 was
    shown as Nov 4, 01:30+05:30 and ``created_at = 2026-11-03`` did not find it (the day was Kolkata's), while
    ``leads audit --since 2026-11-03`` reads a day as UTC. Every connection now works in UTC."""
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET created_at = '2026-11-03 20:00:00+00' WHERE id = (SELECT min(id) FROM leads)")
        # as a server created under TZ=Asia/Kolkata (this test's own database: it is dropped after the test)
        kolkata = sql.SQL("ALTER DATABASE {} SET TimeZone = 'Asia/Kolkata'")
        conn.execute(kolkata.format(sql.Identifier(conn.info.dbname)))
        conn.commit()
    found = fair.json("search", "--where", "created_at = 2026-11-03", "--json")["leads"]
    assert [lead["created_at"] for lead in found] == ["2026-11-03T20:00:00+00:00"]
    assert fair.json("search", "--where", "created_at = 2026-11-04", "--json")["leads"] == []
    assert len(fair.json("search", "--where", "created_at < 2026-11-03T21:00", "--json")["leads"]) == 1


def test_output_under_a_locale_that_cannot_write_every_name(database_url: str, leads: Leads, tmp_path: Path) -> None:
    """Under a Latin-1 (or ASCII) locale a name outside it (İlker, 日本) stopped ``--csv`` to standard output
    with a UnicodeEncodeError half-way and the table with a traceback. A CSV is written in UTF-8, as ``--out``
    writes it and as ``leads import`` reads it back; the table shows what the terminal cannot as "?"."""
    leads.ok("lists", "create", "tr")
    import_text(
        database_url,
        tmp_path / "tr.csv",
        "First Name,Last Name,Email,Company,Phone\nİlker,Kaya,ilker@acme.com.tr,日本 KK,不明\n",
        "tr",
    )
    latin = Leads(CliRunner(charset="latin-1"))
    for command in (["search", "--csv"], ["bulk", "export", "--list", "tr"], ["imports", "errors", "1", "--csv"]):
        result = latin.run(*command)
        assert result.exit_code == 0, (command, result.stderr)
        written = result.stdout_bytes.decode("utf-8")
        assert ("不明" if command[1] == "errors" else "日本 KK") in written, (command, written)
    table = latin.run("search", "ilker")
    assert table.exit_code == 0, table.stderr
    assert "?lker" in table.stdout and "?? KK" in table.stdout
    escaped = latin.run("search", "ilker", "--json")  # JSON escapes what the locale cannot write, not "?"
    assert escaped.exit_code == 0 and "\\u0130lker" in escaped.stdout, escaped.stderr
    written = leads.run("search", "ilker", "--json").stdout
    assert "İlker" in written and "日本 KK" in written, "to a UTF-8 stdout as written: it read \\u0130lker"


def test_a_filter_finds_a_turkish_name_in_either_case(fair: Leads, database_url: str) -> None:
    """Turkish upper-cases the dotless i (U+0131) as I: the light, written in lower case in a filter, finds the
    company and the name written IŞIK in capitals, as the text search does (the filters found nobody: lower()
    makes IŞIK "işik")."""
    light = "\u0131\u015f\u0131k"
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET company = 'IŞIK YAPI A.Ş.', last_name = 'IŞIK' WHERE country = 'ES'")
    ana = ["ana.garcia@acme.es"]
    assert _emails(fair, light) == ana
    assert _emails(fair, "--where", f"company ~ {light}") == ana
    assert _emails(fair, "--where", f"company ~ {light} yap\u0131") == ana
    assert (
        _emails(fair, "--where", f"last_name = {light}") == _emails(fair, "--where", f"last_name = I{light[1:]}") == ana
    )
    assert _emails(fair, "--where", f"last_name in nobody, {light}") == ana
    assert ana[0] not in _emails(fair, "--where", f"last_name != {light}")
    assert ana[0] not in _emails(fair, "--where", f"company !~ {light}")
    assert _emails(fair, "--where", "company ~ İŞ") == ana, "a capital dotted İ is an i"


def test_a_filter_finds_a_greek_name_written_in_capitals(fair: Leads, database_url: str) -> None:
    """Greek capitals drop the tonos: ΠΑΠΑΔΟΠΟΥΛΟΣ is Παπαδόπουλος in capitals, and a filter written so found nobody
    (lower() kept the accent, and the final sigma), where the text search found the lead."""
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET last_name = 'Παπαδόπουλος', company = 'ωμέγα σύμβουλοι' WHERE country = 'ES'")
    capitals = "παπαδοπουλος".upper()  # as Greek writes it: no tonos
    ana = ["ana.garcia@acme.es"]
    assert _emails(fair, capitals) == ana
    assert _emails(fair, "--where", f"last_name = {capitals}") == ana
    assert _emails(fair, "--where", f"last_name in nobody, {'Παπαδόπουλος'.upper()}") == ana
    assert _emails(fair, "--where", f"company ~ {'ωμεγα'.upper()}") == ana
    assert ana[0] not in _emails(fair, "--where", f"last_name != {capitals}")


def test_a_name_written_decomposed_is_found_as_typed(database_url: str, leads: Leads, tmp_path: Path) -> None:
    """A file with its Vietnamese names decomposed (NFD: "Hương" as u, horn, o, hook...), as macOS and some input
    methods write them, stored them so: a filter on the name typed composed, as every keyboard types it, found
    nobody (the text search, which folds accents away, did). They are stored composed, from a file and from
    ``bulk set`` alike."""
    decomposed = unicodedata.normalize("NFD", "Nguyễn,Hương,Tập đoàn Vingroup")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    leads.ok("lists", "create", "vn")
    import_text(database_url, tmp_path / "vn.csv", f"Last Name,First Name,Company,Email\n{decomposed},h@vin.vn\n", "vn")
    found = ["h@vin.vn"]
    assert _emails(leads, "--where", "first_name = Hương") == found
    assert _emails(leads, "--where", "last_name in Nguyễn, Trần") == found
    assert _emails(leads, "--where", "company ~ tập đoàn") == found
    leads.ok("bulk", "set", "title", unicodedata.normalize("NFD", "Giám đốc"), "--where", "email = h@vin.vn")
    assert _emails(leads, "--where", "title = giám đốc") == found
    # and a filter or a search pasted decomposed (a macOS file name; Korean as its jamo) finds what is stored
    assert _emails(leads, "--where", unicodedata.normalize("NFD", "first_name = Hương")) == found
    import_text(database_url, tmp_path / "kr.csv", "Name,Company,Email\n김민준,Samsung,m@samsung.kr\n", "vn")
    assert _emails(leads, unicodedata.normalize("NFD", "김민준")) == ["m@samsung.kr"]


def test_a_chinese_japanese_or_korean_name_is_family_name_first(
    database_url: str, leads: Leads, tmp_path: Path
) -> None:
    """王 (family) and 伟 (given) in their two columns were joined as a Western name: the full name "伟 王" in
    show, exports and the table, and a search for 王伟, as the name is written, found nobody."""
    leads.ok("lists", "create", "asia")
    text = "First Name,Last Name,Email\n伟,王,w@ali.cn\n花子,山田,h@toyota.jp\n민준,김,m@samsung.kr\n"
    text += "Wei,Wang,x@ali.cn\n"
    import_text(database_url, tmp_path / "asia.csv", text, "asia")
    found = {lead["email"]: lead for lead in leads.json("search", "--list", "asia", "--json")["leads"]}
    assert {email: lead["full_name"] for email, lead in found.items()} == {
        "w@ali.cn": "王伟",
        "h@toyota.jp": "山田花子",
        "m@samsung.kr": "김민준",
        "x@ali.cn": "Wei Wang",
    }
    assert _emails(leads, "王伟") == ["w@ali.cn"]
    assert _emails(leads, "山田花子") == ["h@toyota.jp"]
    assert _emails(leads, "김민준") == ["m@samsung.kr"]
    assert _emails(leads, "伟") == _emails(leads, "王") == ["w@ali.cn"], "each name alone still finds it"
    assert _emails(leads, "wei wang") == ["x@ali.cn"]
    table = leads.ok("search", "--list", "asia")
    assert "王伟" in table and "伟 王" not in table
    assert "full_name: 山田花子" in leads.ok("show", found["h@toyota.jp"]["id"])


def test_a_chinese_or_korean_name_in_one_column_is_split_family_name_first(
    database_url: str, leads: Leads, tmp_path: Path
) -> None:
    """王伟 in a file's one name column was stored whole as the last name, with no first name, where 伟 and 王 in two
    columns are first and last name; it is split so, its full name and search text those of the two columns. A
    Japanese name cannot be split without a dictionary: it stays whole in the last name and is found as typed."""
    leads.ok("lists", "create", "one")
    leads.ok("lists", "create", "two")
    one = "Name,Email\n王伟,w@ali.cn\n欧阳娜娜,n@ali.cn\n김민준,m@samsung.kr\n山田花子,h@toyota.jp\n"
    import_text(database_url, tmp_path / "one.csv", one, "one")
    two = "First Name,Last Name,Email\n伟,王,w2@ali.cn\n娜娜,欧阳,n2@ali.cn\n민준,김,m2@samsung.kr\n"
    import_text(database_url, tmp_path / "two.csv", two, "two")
    stored = {
        lead["email"]: (lead["first_name"], lead["last_name"], lead["full_name"])
        for lead in leads.json("search", "--json")["leads"]
    }
    assert stored == {
        "w@ali.cn": ("伟", "王", "王伟"),
        "w2@ali.cn": ("伟", "王", "王伟"),
        "n@ali.cn": ("娜娜", "欧阳", "欧阳娜娜"),
        "n2@ali.cn": ("娜娜", "欧阳", "欧阳娜娜"),
        "m@samsung.kr": ("민준", "김", "김민준"),
        "m2@samsung.kr": ("민준", "김", "김민준"),
        "h@toyota.jp": (None, "山田花子", "山田花子"),
    }
    assert _emails(leads, "王伟") == ["w@ali.cn", "w2@ali.cn"]
    assert _emails(leads, "欧阳娜娜") == ["n@ali.cn", "n2@ali.cn"]
    assert _emails(leads, "김민준") == ["m@samsung.kr", "m2@samsung.kr"]
    assert _emails(leads, "山田花子") == ["h@toyota.jp"]
    with connect(database_url) as conn:
        texts = conn.execute(
            "SELECT count(DISTINCT x.search_text) AS texts, count(*) AS leads FROM lead_search x"
            " JOIN leads l ON l.id = x.lead_id WHERE l.full_name IN ('王伟', '欧阳娜娜', '김민준')"
        ).fetchone()
    assert texts == {"texts": 3, "leads": 6}, "one column's search text is the two columns'"


def test_a_stage_no_lead_has_and_none_known_is_noted(fair: Leads, database_url: str) -> None:
    """``--stage nostage`` (a typo, or ``MQL``: stages are stored lower-case) found 0 leads with exit code 0 and
    nothing more. A CRM sets stages of its own, so it is still searched as typed, with a note on stderr when no
    lead of the selected lists has it and it is none a person may set; a CRM's stage that leads have is not."""

    def note(*args: str) -> str:
        result = fair.run("search", *args)
        assert result.exit_code == 0 and "0 leads" in result.stdout, result.output
        return " ".join(result.stderr.split())  # as one line, however wide the terminal

    for stage in ("nostage", "MQL"):
        assert note("--stage", stage, "--stage", "sql") == (
            f"note: no lead of the selected lists has stage {stage!r}, and it is none of new, mql, sql, customer,"
            " disqualified, nurture (a stage a CRM set is searched as stored)"
        )
    assert note("--stage", "sql") == ""  # a known stage no lead has yet
    with connect(database_url) as conn:
        conn.execute("UPDATE leads SET stage = 'Closed Won' WHERE id = (SELECT min(id) FROM leads)")
    assert note("--stage", "Closed Won", "--where", "country = ZZ") == ""  # held, left out by another filter
    fair.ok("lists", "create", "empty")
    assert "no lead of the selected lists has stage 'Closed Won'" in note("--stage", "Closed Won", "--list", "empty")
    assert len(_emails(fair, "--stage", "Closed Won")) == 1


def test_control_characters_of_lead_values_do_not_reach_the_terminal(
    leads: Leads, database_url: str, tmp_path: Path
) -> None:
    """A file's (or a scraped profile's) escape sequences were printed as they are by `leads search` and `leads
    show`: the terminal of whoever listed the lead cleared its screen (``ESC[2J``) or showed a link whose text
    hides where it points (OSC 8). They show as ``?``; JSON and CSV keep the value as stored."""
    leads.ok("lists", "create", "fair")
    text = (
        "email,first_name,Company\nq@acme.example,Bob,\x1b[2JAcme\nr@acme.example,\x1b]8;;http://x/\x1b\\Rob,Acme\n"
        "s@acme.example,[reverse]Sam,[link=http://x/]Acme[/link]\n"
    )
    import_text(database_url, tmp_path / "escapes.csv", text, "fair")
    shown = leads.ok("search", "--list", "fair")
    assert "\x1b" not in shown and "?[2JAcme" in shown and "?]8;;" in shown
    # nor is a value read as rich markup: the link showed as a plain "Acme", "[reverse]" restyled the row
    assert "  [reverse]Sam in fair" in shown and ", [link=http://x/]Acme[/link], " in shown  # (80 columns: lines)
    found = {lead["first_name"]: lead for lead in leads.json("search", "--list", "fair", "--json")["leads"]}
    assert found["Bob"]["company"] == "\x1b[2JAcme"
    shown = leads.ok("show", found["Bob"]["id"])
    assert "\x1b" not in shown and "?[2JAcme" in shown
    assert "company: [link=http://x/]Acme[/link]" in leads.ok("show", found["[reverse]Sam"]["id"])
    refused = leads.fails("search", "--list", "[link=http://x/]fair[/link]")
    assert refused.startswith("error: list '[link=http://x/]fair[/link]': not found")


def test_a_date_stamped_list_name_is_recorded_whole(leads: Leads, database_url: str) -> None:
    """`search --csv` on list demo-20261130-101032 was audited as on `lists demo-<phone>`: a list name is not
    personal data, and the entry names the list as it is."""
    leads.ok("lists", "create", "demo-20261130-101032")
    import_file(database_url, DEMO_FILE, "demo-20261130-101032")
    leads.ok("search", "--list", "demo-20261130-101032", "--csv", "--limit", "5")
    [export] = leads.json("audit", "--action", "leads.export", "--json")
    assert export["details"]["selection"] == "lists demo-20261130-101032"


def test_the_count_under_the_table_says_1_lead_not_1_leads(fair: Leads) -> None:
    assert fair.ok("search", "infosys").rstrip().endswith("\n1 lead")
    assert fair.ok("search", "sheryl").rstrip().endswith("\n2 leads")
