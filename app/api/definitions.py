"""Process definitions: deploy, list, read the XML."""

from __future__ import annotations

from flask import Response

from app.services import deploy as service

from . import schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("definitions", __name__, description="Deploy and read process definitions")


@blp.route("/definitions", methods=["POST"])
@blp.arguments(schemas.Upload, location="files")
@blp.response(201, schemas.DeployResult)
@blp.alt_response(422, description="The models are invalid: file, line, element id, message")
def deploy(upload):
    """Deploy .bpmn/.dmn files (and .json forms); unchanged processes keep their version."""
    files = {f.filename or "upload.bpmn": f.read() for f in upload["files"]}
    return {"definitions": service.deploy(context(), actor(), files)}


@blp.route("/definitions", methods=["GET"])
@blp.arguments(schemas.DefinitionQuery, location="query")
@blp.response(200, schemas.DefinitionList)
def list_definitions(query):
    """Latest version of every process, or all versions of `process_key`."""
    actor()
    return service.list_definitions(context(), query.get("process_key"))


@blp.route("/definitions/<int:definition_id>/xml", methods=["GET"])
@blp.response(200, content_type="application/xml")
def definition_xml(definition_id):
    """The BPMN XML of a definition version."""
    actor()
    return Response(service.definition_xml(context(), definition_id),
                    mimetype="application/xml")
