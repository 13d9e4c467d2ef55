"""Deploying process models: lint, compile, version by checksum."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.domain.access import Actor, can_deploy, require
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.engine import CompiledProcess, ModelInvalid, compile_files
from app.engine.lint import lint_files
from app.engine.xmlsafe import MAX_XML_BYTES
from app.persistence.models import ProcessDefinition
from workers.connectors import connector_names

from .forms import check_schema

MODEL_SUFFIXES = (".bpmn", ".dmn")
ALLOWED_SUFFIXES = (*MODEL_SUFFIXES, ".json")


def deploy(ctx, actor: Actor, files: dict[str, bytes]) -> list[dict]:
    """Deploy the processes in `files`; an unchanged process keeps its current version."""
    require(can_deploy(actor), "deploy process definitions")
    compiled, forms = check(ctx, files)
    try:
        with ctx.unit() as session:
            return [_store(session, proc, _forms_for(proc, forms), actor) for proc in compiled]
    except IntegrityError as exc:
        raise Conflict("another deploy of the same process ran at the same time; retry") from exc


def check(ctx, files: dict[str, bytes]) -> tuple[list[CompiledProcess], dict[str, dict]]:
    """Lint and compile without storing anything; raise ValidationFailed with located issues."""
    _check_names(files)
    uploaded_forms = _read_forms({n: c for n, c in files.items() if n.endswith(".json")})
    models = {n: c for n, c in files.items() if n.endswith(MODEL_SUFFIXES)}
    forms = _FormSource(ctx.settings.forms_dir, uploaded_forms)
    issues = lint_files(models, form_exists=forms.exists, connectors=connector_names())
    if issues:
        raise _invalid(issues)
    try:
        compiled = compile_files(models, lambda missing: _deployed_sources(ctx, missing))
    except ModelInvalid as exc:
        raise _invalid(exc.issues) from None
    needed = {name for proc in compiled for name in proc.form_files}
    return compiled, {name: forms.load(name) for name in sorted(needed)}


def _invalid(issues) -> ValidationFailed:
    return ValidationFailed("the process model is not valid", [i.as_dict() for i in issues])


def _file_error(name: str, message: str) -> dict:
    return {"file": name, "line": None, "element_id": None, "message": message}


def _check_names(files: dict[str, bytes]) -> None:
    errors = []
    if not any(n.endswith(".bpmn") for n in files):
        errors.append(_file_error(None, "upload at least one .bpmn file"))
    for name, content in files.items():
        if not name.endswith(ALLOWED_SUFFIXES):
            errors.append(_file_error(name, "only .bpmn, .dmn and .json files can be deployed"))
        elif len(content) > MAX_XML_BYTES:
            errors.append(_file_error(name, f"file is larger than {_megabytes(MAX_XML_BYTES)}"))
    if errors:
        raise ValidationFailed("the upload is not valid", errors)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _read_forms(files: dict[str, bytes]) -> dict[str, dict]:
    forms, errors = {}, []
    for name, content in files.items():
        schema, error = _parse_form(content)
        if error:
            errors.append(_file_error(name, error))
        forms[PurePosixPath(name).name] = schema
    if errors:
        raise ValidationFailed("a form file is not valid", errors)
    return forms


def _parse_form(content: bytes) -> tuple[dict | None, str | None]:
    try:
        schema = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(schema, dict):
        return None, "a form schema must be a JSON object"
    return schema, check_schema(schema)


class _FormSource:
    """Form files: the uploaded ones first, then the forms/ folder."""

    def __init__(self, forms_dir, uploaded: dict[str, dict]):
        self.forms_dir, self.uploaded = forms_dir, uploaded

    def exists(self, name: str) -> bool:
        return name in self.uploaded or self._path(name) is not None

    def _path(self, name: str):
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        path = self.forms_dir / name
        return path if path.is_file() else None

    def load(self, name: str) -> dict:
        if name in self.uploaded:
            return self.uploaded[name]
        schema, error = _parse_form(self._path(name).read_bytes())
        if error:
            raise ValidationFailed("a form file is not valid", [_file_error(name, error)])
        return schema


def _deployed_sources(ctx, process_keys: set[str]) -> dict[str, bytes]:
    with ctx.unit() as session:
        return {f"deployed/{d.process_key}/{d.source_file}": d.bpmn_xml.encode()
                for d in (_latest(session, key) for key in sorted(process_keys)) if d}


def _forms_for(proc: CompiledProcess, forms: dict[str, dict]) -> dict[str, dict]:
    return {name: forms[name] for name in proc.form_files}


def _checksum(proc: CompiledProcess, forms: dict[str, dict]) -> str:
    text = proc.source_digest + json.dumps(forms, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _store(session, proc: CompiledProcess, forms: dict, actor: Actor) -> dict:
    checksum = _checksum(proc, forms)
    latest = _latest(session, proc.process_key)
    if latest is not None and latest.checksum == checksum:
        return _deployed(latest, created=False)
    definition = ProcessDefinition(
        process_key=proc.process_key, name=proc.name, version=(latest.version + 1) if latest else 1,
        source_file=PurePosixPath(proc.source_file).name, bpmn_xml=proc.bpmn_xml,
        spec_json=proc.spec_json, forms=forms, start_messages=list(proc.start_messages),
        checksum=checksum, deployed_by=actor.username,
    )
    session.add(definition)
    session.flush()
    return _deployed(definition, created=True)


def _deployed(definition: ProcessDefinition, created: bool) -> dict:
    return {"id": definition.id, "process_key": definition.process_key,
            "version": definition.version, "checksum": definition.checksum, "created": created}


def _latest(session, process_key: str) -> ProcessDefinition | None:
    return session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.process_key == process_key)
        .order_by(ProcessDefinition.version.desc()).limit(1)).first()


def list_definitions(ctx, process_key: str | None = None) -> dict:
    with ctx.unit() as session:
        query = select(ProcessDefinition)
        if process_key:
            query = query.where(ProcessDefinition.process_key == process_key)
        else:
            latest = select(ProcessDefinition.process_key,
                            func.max(ProcessDefinition.version).label("v")) \
                .group_by(ProcessDefinition.process_key).subquery()
            query = query.join(latest, (latest.c.process_key == ProcessDefinition.process_key)
                               & (latest.c.v == ProcessDefinition.version))
        rows = session.scalars(query.order_by(ProcessDefinition.process_key,
                                              ProcessDefinition.version.desc()))
        return {"items": [definition_item(d) for d in rows]}


def definition_item(d: ProcessDefinition) -> dict:
    return {"id": d.id, "process_key": d.process_key, "name": d.name, "version": d.version,
            "checksum": d.checksum, "source_file": d.source_file, "deployed_at": d.deployed_at,
            "deployed_by": d.deployed_by, "start_messages": d.start_messages}


def definition_xml(ctx, definition_id: int) -> str:
    with ctx.unit() as session:
        definition = session.get(ProcessDefinition, definition_id)
        if definition is None:
            raise NotFound(f"definition {definition_id} not found")
        return definition.bpmn_xml
