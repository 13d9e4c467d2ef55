"""Messages from the outside world."""

from __future__ import annotations

from app.services import messages as service

from . import schemas
from .auth import actor, context
from .base import Blueprint

blp = Blueprint("messages", __name__, description="Correlate messages to instances")


@blp.route("/messages/<string:name>", methods=["POST"])
@blp.arguments(schemas.Message)
@blp.response(202, schemas.Delivered)
def send(body, name):
    """Deliver to the instances waiting with these correlation values, or start the processes
    whose start event listens; a repeated idempotency key returns the first answer."""
    return service.send(context(), actor(), name, body["correlation"], body["payload"],
                        body["idempotency_key"])
