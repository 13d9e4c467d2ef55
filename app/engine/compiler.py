"""Turn uploaded BPMN/DMN files into deployable process specs (the parse half of deploy)."""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException

from .parser import FlowParser
from .serializer import dump_spec
from .xmlsafe import XmlRejected, parse_xml

FORM_PROPERTIES = ("formJsonSchemaFilename", "formUiSchemaFilename")


@dataclass(frozen=True)
class Issue:
    """One problem in a process model, located for the designer."""

    file: str | None
    line: int | None
    element_id: str | None
    message: str

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "element_id": self.element_id,
                "message": self.message}


class ModelInvalid(Exception):
    """The uploaded models cannot be deployed; `issues` says where and why."""

    def __init__(self, issues: list[Issue]):
        super().__init__("; ".join(i.message for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class CompiledProcess:
    process_key: str
    name: str | None
    source_file: str
    bpmn_xml: str
    spec_json: str
    form_files: tuple[str, ...]
    start_messages: tuple[str, ...]
    source_digest: str


SourceLookup = Callable[[set[str]], dict[str, bytes]]


def compile_files(
    files: dict[str, bytes], lookup: SourceLookup | None = None
) -> list[CompiledProcess]:
    """Parse every executable process of the .bpmn files in `files` (with the .dmn files).

    `lookup` supplies source files for called processes that are not among `files`
    (the latest deployed versions); those are used but not deployed themselves.
    """
    roots = _parse_all(files)
    parser = FlowParser()
    _add_roots(parser, roots)
    _add_missing_dependencies(parser, roots, lookup)
    own = [pid for pid in parser.get_process_ids() if _file_of(parser, pid) in files]
    if not own:
        raise ModelInvalid([
            Issue(name, 1, None, "no executable process (set isExecutable=\"true\")")
            for name in files if name.endswith(".bpmn")])
    return [_compile_one(parser, pid, files, roots) for pid in own]


def _parse_all(files: dict[str, bytes]) -> dict[str, etree._Element]:
    roots, issues = {}, []
    for name, content in files.items():
        try:
            roots[name] = parse_xml(content, name)
        except XmlRejected as exc:
            issues.append(Issue(name, exc.line, None, exc.message))
    if issues:
        raise ModelInvalid(issues)
    return roots


def _add_roots(parser: FlowParser, roots: dict[str, etree._Element]) -> None:
    for name, root in roots.items():
        with _located(name, root):
            if name.endswith(".dmn"):
                parser.add_dmn_xml(root, filename=name)
            else:
                parser.add_bpmn_xml(root, filename=name)


def _add_missing_dependencies(parser, roots, lookup) -> None:
    for _ in range(20):
        missing = {dep for dep in parser.get_process_dependencies()
                   if dep not in parser.process_parsers}
        extra = lookup(missing) if (missing and lookup) else {}
        extra = {name: content for name, content in extra.items() if name not in roots}
        if not extra:
            return
        new_roots = _parse_all(extra)
        roots.update(new_roots)
        _add_roots(parser, new_roots)


def _file_of(parser: FlowParser, process_id: str) -> str | None:
    process_parser = parser.get_process_parser(process_id)
    return process_parser.filename if process_parser else None


def _compile_one(parser, pid, files, roots) -> CompiledProcess:
    source = _file_of(parser, pid)
    with _located(source, roots.get(source)):
        spec = parser.get_spec(pid)
        subprocess_specs = parser.get_subprocess_specs(pid)
    all_specs = [spec, *subprocess_specs.values()]
    used_files = sorted({source, *(_file_of(parser, n) for n in subprocess_specs)} - {None})
    used_files += sorted(n for n in roots if n.endswith(".dmn"))
    return CompiledProcess(
        process_key=pid,
        name=getattr(spec, "description", None) or pid,
        source_file=source,
        bpmn_xml=xml_text(files[source], roots[source]),
        spec_json=dump_spec(spec, subprocess_specs),
        form_files=_form_files(all_specs),
        start_messages=_start_messages(spec),
        source_digest=_digest(_content(files, roots, n) for n in used_files),
    )


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_DECLARED_ENCODING = re.compile(r"""\A(<\?xml[^>]*?\sencoding\s*=\s*)(["'])[^"']*\2""")


def xml_text(content: bytes, root: etree._Element) -> str:
    """The text of an XML file as stored and served: decoded by its byte-order mark or
    declared encoding (the one the parser used), its declaration saying UTF-8 (the text is
    stored and served as UTF-8 from then on)."""
    encoding = next((name for bom, name in _BOMS if content.startswith(bom)), None) \
        or root.getroottree().docinfo.encoding or "utf-8"
    try:
        text = content.decode(encoding)
    except (LookupError, UnicodeDecodeError):  # an encoding libxml2 knows and Python not
        return etree.tostring(root.getroottree(), encoding="unicode")
    return _DECLARED_ENCODING.sub(r"\1\2UTF-8\2", text.lstrip("\ufeff"), count=1)


def _content(files: dict[str, bytes], roots: dict[str, etree._Element], name: str) -> bytes:
    return files.get(name) or etree.tostring(roots[name])


def _digest(chunks) -> str:
    sha = hashlib.sha256()
    for chunk in chunks:
        sha.update(hashlib.sha256(chunk).digest())
    return sha.hexdigest()


def _form_files(specs) -> tuple[str, ...]:
    names = set()
    for spec in specs:
        for task_spec in spec.task_specs.values():
            props = (getattr(task_spec, "extensions", None) or {}).get("properties", {})
            names.update(props[key] for key in FORM_PROPERTIES if props.get(key))
    return tuple(sorted(names))


def _start_messages(spec) -> tuple[str, ...]:
    return tuple(sorted(
        ts.event_definition.name for ts in spec.task_specs.values()
        if isinstance(ts, StartEvent) and isinstance(ts.event_definition, MessageEventDefinition)
    ))


class _located:
    """Context manager turning SpiffWorkflow parse errors into ModelInvalid with file and line."""

    def __init__(self, filename: str | None, root):
        self.filename, self.root = filename, root

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc is None or not isinstance(exc, (SpiffWorkflowException, KeyError, ValueError,
                                               TypeError, AttributeError, IndexError)):
            return False
        raise ModelInvalid([self._issue(exc)]) from exc

    def _issue(self, exc) -> Issue:
        element_id = getattr(exc, "id", None) or None
        filename = getattr(exc, "file_name", None) or self.filename
        return Issue(filename, self._line(element_id, exc), element_id, _message(exc))

    def _line(self, element_id, exc) -> int | None:
        line = getattr(exc, "line_number", None)
        if isinstance(line, int) and line > 0:
            return line
        if element_id and self.root is not None:
            found = self.root.xpath("//*[@id=$id]", id=element_id)
            if found:
                return found[0].sourceline
        return None


def _message(exc) -> str:
    if isinstance(exc, ValidationException):
        return str(exc.args[0]) if exc.args else str(exc)
    return f"{exc.__class__.__name__}: {exc}"
