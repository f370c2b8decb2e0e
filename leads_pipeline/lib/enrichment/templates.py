"""Enrichment templates: YAML files that say, per company field, which providers to ask in order and when to stop.

A waterfall asks the first provider in a field's list; the field is done at the first validated value (or the
first with at least ``min_confidence``). A provider is called at most once per company and only while it can
still supply a field that is not done. ``max_credits_per_lead`` caps what one lead may cost a job over all its
stages (email, phone, LinkedIn, company): a paid call that would take its lead past the cap is not made
(``lib/credits.Budget``). Templates ship in ``leads_pipeline/data/enrichment_templates``; a user's file can be
passed by path and shared as a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from leads_pipeline.lib.enrichment.providers import COMPANY_FIELDS, COMPANY_PROVIDERS, SOURCE_ASSETS
from leads_pipeline.lib.errors import ConfigurationError

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "data" / "enrichment_templates"
FIRST_VALIDATED = "first_validated"


@dataclass(frozen=True)
class FieldRule:
    sources: tuple[str, ...]
    min_confidence: int  # 0 = the first validated value ends the waterfall

    def satisfied_by(self, confidence: int) -> bool:
        return confidence >= self.min_confidence


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    sources: tuple[str, ...]
    max_credits_per_lead: float | None
    company: dict[str, FieldRule]
    path: Path

    def providers(self) -> list[str]:
        """Every company provider the template may call, in the order fields first name them."""
        return list(dict.fromkeys(p for rule in self.company.values() for p in rule.sources))

    def affordable(self, provider: str) -> bool:
        """Whether one call of the company ``provider`` can ever fit ``max_credits_per_lead``: a provider dearer
        than the whole cap is left out of the waterfall (whether a call fits what a lead has left is the job's
        budget's to say)."""
        ceiling = self.max_credits_per_lead
        return ceiling is None or COMPANY_PROVIDERS[provider].credits <= ceiling

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "sources": list(self.sources),
            "maxCreditsPerLead": self.max_credits_per_lead,
            "company": {
                f: {"sources": list(r.sources), "minConfidence": r.min_confidence} for f, r in self.company.items()
            },
            "path": str(self.path),
        }


def _fail(where: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{where}: {message}")


def _rule(where: str, value: Any, default: FieldRule | None) -> FieldRule:
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping with sources and stop, found {value!r}")
    unknown = set(value) - {"sources", "stop"}
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}; expected sources, stop")
    sources = value.get("sources", list(default.sources) if default else None)
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
        raise _fail(f"{where}.sources", f"expected a non-empty list of providers, found {sources!r}")
    for i, name in enumerate(sources):
        if name not in COMPANY_PROVIDERS:
            raise _fail(f"{where}.sources[{i}]", f"unknown provider {name!r}; expected {', '.join(COMPANY_PROVIDERS)}")
    if len(set(sources)) != len(sources):
        raise _fail(f"{where}.sources", f"a provider is listed twice in {sources!r}")
    stop = value.get("stop", FIRST_VALIDATED if default is None else None)
    if stop is None and default is not None:
        min_confidence = default.min_confidence
    elif stop == FIRST_VALIDATED:
        min_confidence = 0
    elif isinstance(stop, dict) and set(stop) == {"min_confidence"}:
        level = stop["min_confidence"]
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
            raise _fail(f"{where}.stop.min_confidence", f"expected an integer from 0 to 100, found {level!r}")
        min_confidence = level
    else:
        raise _fail(f"{where}.stop", f"expected {FIRST_VALIDATED!r} or {{min_confidence: N}}, found {stop!r}")
    return FieldRule(tuple(sources), min_confidence)


def parse_template(document: Any, path: Path) -> Template:
    """A validated template; every problem names the file, the key path, what was found and what is expected."""
    where = str(path)
    if not isinstance(document, dict):
        raise _fail(where, f"expected a YAML mapping at the top, found {type(document).__name__}")
    unknown = set(document) - {"name", "description", "sources", "max_credits_per_lead", "company"}
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"{where}: name", f"expected a non-empty string, found {name!r}")
    sources = document.get("sources", ["company"])
    if not isinstance(sources, list) or not sources or any(s not in SOURCE_ASSETS for s in sources):
        raise _fail(f"{where}: sources", f"expected a list of {', '.join(SOURCE_ASSETS)}, found {sources!r}")
    ceiling = document.get("max_credits_per_lead")
    if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, int | float) or ceiling < 0):
        raise _fail(f"{where}: max_credits_per_lead", f"expected a number >= 0, found {ceiling!r}")
    company = document.get("company") or {}
    if not isinstance(company, dict) or set(company) - {"default", "fields"}:
        raise _fail(f"{where}: company", "expected a mapping with default and/or fields")
    default = _rule(f"{where}: company.default", company["default"], None) if "default" in company else None
    fields_doc = company.get("fields") or {}
    if not isinstance(fields_doc, dict):
        raise _fail(f"{where}: company.fields", f"expected a mapping of field to rule, found {fields_doc!r}")
    rules: dict[str, FieldRule] = {}
    for field in COMPANY_FIELDS:
        if field in fields_doc:
            rules[field] = _rule(f"{where}: company.fields.{field}", fields_doc[field] or {}, default)
        elif default is not None:
            rules[field] = default
    extra = set(fields_doc) - set(COMPANY_FIELDS)
    if extra:
        raise _fail(
            f"{where}: company.fields",
            f"unknown field(s) {', '.join(sorted(extra))}; expected {', '.join(COMPANY_FIELDS)}",
        )
    for field, rule in list(rules.items()):
        usable = tuple(p for p in rule.sources if field in COMPANY_PROVIDERS[p].supplies)
        if field in fields_doc and len(usable) != len(rule.sources):
            bad = next(p for p in rule.sources if p not in usable)
            supplies = ", ".join(sorted(COMPANY_PROVIDERS[bad].supplies))
            raise _fail(
                f"{where}: company.fields.{field}.sources", f"{bad} cannot supply {field} (it supplies {supplies})"
            )
        if usable:
            rules[field] = FieldRule(usable, rule.min_confidence)
        else:
            del rules[field]  # a default list none of whose providers can supply this field
    if "company" in sources and not rules:
        raise _fail(f"{where}: company", "the company source is selected but no field has a provider")
    return Template(name.strip(), str(document.get("description") or ""), tuple(sources), ceiling, rules, path)


def load_template_file(path: Path) -> Template:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the template ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:  # a binary file given by mistake was a traceback
        raise ConfigurationError(f"{path}: the template is not UTF-8 text (byte {exc.start + 1})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigurationError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    return parse_template(document, path)


def builtin_templates() -> dict[str, Template]:
    return {t.name: t for t in (load_template_file(p) for p in sorted(BUILTIN_DIR.glob("*.yaml")))}


def load_template(name_or_path: str) -> Template:
    """A shipped template by name (basic, standard, premium) or a template file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_template_file(path)
    templates = builtin_templates()
    if name_or_path not in templates:
        raise ConfigurationError(
            f"no template named {name_or_path!r}; shipped templates: {', '.join(templates)} (or pass a YAML file path)"
        )
    return templates[name_or_path]
