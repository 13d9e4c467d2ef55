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
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


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
        with _located(name, roots):
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
    with _located(source, roots):
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
         (codecs.BOM_UTF16_BE, "utf-16"),
         (b"<\0?\0", "utf-16-le"), (b"\0<\0?", "utf-16-be"))  # UTF-16 without a BOM
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
    return _DECLARED_ENCODING.sub(r"\1\2UTF-8\2", text.removeprefix("\ufeff"), count=1)


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
    """Context manager turning SpiffWorkflow parse errors into ModelInvalid with file and line.

    SpiffWorkflow names the offending element for most errors; for the others (a data store
    without implementation, a message without id...) the element is looked up in the parsed
    tree from what the message says, so every issue names an element and its line.
    """

    def __init__(self, filename: str | None, roots: dict[str, etree._Element]):
        self.filename, self.roots = filename, roots

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, _tb):
        if exc is None or not isinstance(exc, (SpiffWorkflowException, KeyError, ValueError,
                                               TypeError, AttributeError, IndexError)):
            return False
        raise ModelInvalid([self._issue(exc)]) from exc

    def _issue(self, exc) -> Issue:
        filename = getattr(exc, "file_name", None) or self.filename
        root = self.roots.get(filename) if filename else None
        raw = _raw_message(exc)
        element_id = getattr(exc, "id", None) or None
        element = _element_for(root, element_id, raw)
        if element is not None:
            element_id = element_id or element.get("id")
        message = _readable(raw, element)
        return Issue(filename, _line(exc, element), element_id, message)


def _line(exc, element) -> int | None:
    line = getattr(exc, "line_number", None)
    if isinstance(line, int) and line > 0:
        return line
    return element.sourceline if element is not None else None


_NS = {"bpmn": BPMN_NS}
_PREFIXES = {BPMN_NS: "bpmn", SPIFF_NS: "spiffworkflow"}
_NAMED_IN_MESSAGE = (
    # (what SpiffWorkflow says without naming the element, where that element is)
    (r"Data Store with name (?P<v>.+) has no implementation", "//bpmn:dataStore[@name=$v]"),
    (r"Data Store identifier is missing", "//bpmn:dataStore[not(@id)]"),
    (r"Data Store name is missing", "//bpmn:dataStore[not(@name)]"),
    (r"Message identifier is missing from bpmn xml", "//bpmn:message[not(@id)]"),
    (r"Signal identifier is missing", "//bpmn:signal[not(@id)]"),
    (r"Error identifier is missing", "//bpmn:error[not(@id)]"),
    (r"Escalation identifier is missing", "//bpmn:escalation[not(@id)]"),
    (r"Correlation identifier is missing", "//bpmn:correlationProperty[not(@id)]"),
    (r"(?:Correlation is missing correlation property retrieval expressions|Message identifier "
     r"is missing from correlation property): (?P<v>.+)", "//bpmn:correlationProperty[@id=$v]"),
    (r"The process '(?P<v>[^']+)' was not found", "//bpmn:callActivity[@calledElement=$v]"),
)
_QUOTED = re.compile(r"'([^'<>]{1,200})'|\"([^\"<>]{1,200})\"")
_ELEMENT_REPR = re.compile(
    r"<Element (?:\{(?P<ns>[^}]*)\})?(?P<tag>[\w.-]+) at 0x[0-9a-fA-F]+>")
_OBJECT_REPR = re.compile(r"<(?:[\w.]+\.)?(?P<cls>\w+) object at 0x[0-9a-fA-F]+>")
_OTHER_REPR = re.compile(r"<(?P<what>[^<>]*?) at 0x[0-9a-fA-F]+>")  # functions, methods...


def _element_for(root, element_id: str | None, message: str):
    """The element an error is about: by its id, else by what the message names."""
    if root is None:
        return None
    if element_id:
        return _first(root.xpath("//*[@id=$id]", id=element_id))
    for pattern, path in _NAMED_IN_MESSAGE:
        match = re.search(pattern, message, re.DOTALL)
        if match:
            found = _first(root.xpath(path, namespaces=_NS, **match.groupdict()))
            if found is not None:
                return found
    for match in _QUOTED.finditer(message):  # any quoted id the message mentions
        found = _first(root.xpath("//*[@id=$id]", id=match.group(1) or match.group(2)))
        if found is not None:
            return found
    return None


def _first(found: list):
    return found[0] if found else None


def _readable(message: str, element) -> str:
    """The message without Python object reprs: an lxml element is named by its tag and,
    when it can be told among the located element's children, its text and line."""

    def element_repr(match: re.Match) -> str:
        tag = f"{{{match['ns']}}}{match['tag']}" if match["ns"] else match["tag"]
        name = f"{_PREFIXES.get(match['ns'], '')}:{match['tag']}".lstrip(":")
        candidates = [] if element is None else [
            e for e in element.iter(tag) if e is not element and (e.text or "").strip()]
        mentioned = [e for e in candidates if etree.QName(e.getparent()).localname in message]
        candidates = mentioned or candidates
        if not candidates or len(candidates) > 5:
            return name
        described = ", ".join(f'"{e.text.strip()}" (line {e.sourceline})' for e in candidates)
        return f"{name} {described}" if len(candidates) == 1 else f"{name} (one of {described})"

    message = _ELEMENT_REPR.sub(element_repr, message)
    message = _OBJECT_REPR.sub(lambda m: m["cls"], message)
    return _OTHER_REPR.sub(lambda m: m["what"], message)


def _raw_message(exc) -> str:
    if isinstance(exc, ValidationException):
        return str(exc.args[0]) if exc.args else str(exc)
    return f"{exc.__class__.__name__}: {exc}"
