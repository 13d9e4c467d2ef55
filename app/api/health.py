"""Liveness of the parts the service needs."""

from __future__ import annotations

from flask import Blueprint, jsonify

from app.services import health as service

from .auth import context

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    report = service.check(context())
    ok = all(v in ("ok", "embedded") for v in report.values())
    return jsonify(report), 200 if ok else 503
