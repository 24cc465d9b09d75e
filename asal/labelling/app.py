"""The labelling page and its JSON API, a Flask app over one :class:`~asal.labelling.session.LabellingSession`.

Routes (every ``/api`` answer is JSON; a refused request gets a 4xx and ``{"error": message}``, and nothing is
written):

- ``GET /``: the page (plain HTML, CSS and JavaScript from ``static/``, no build step).
- ``GET /api/state``: experiment, strategy, cycle, n_labelled, budget, classes, class counts, status
  (``labelling``, ``training``, ``done``, or ``failed`` with ``error``), the last test accuracy (scored while
  the batch is answered; null before, or without a test set: ``has_test_set``).
- ``GET /api/batch``: the batch's cycle and items (``pool_index``, ``source``, ``image`` and ``synthetic``
  URLs, ``suggestion``, ``answered``, ``label``).
- ``POST /api/label`` ``{"pool_index": i, "label": "<class>"}`` (``null``: skip); ``POST /api/undo``.
- ``GET /api/export?format=csv|labelstudio``; ``POST /api/import?format=labelstudio``.
- ``GET /api/image/<pool_index>``, ``GET /api/synthetic/<cycle>/<k>``, ``GET /api/gan-samples``: PNGs, by
  number only, never by a path from the request.

Off localhost every request must carry the session's token, as the header ``X-Asal-Token`` or the query
parameter ``token`` (the page's URL has it and sends it on); only the page's script and style sheet, the same
for everyone, are served without it.
"""

from __future__ import annotations

import hmac
from importlib import resources

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from .session import LabelError, LabellingSession

#: Requests larger than this are refused (413): a Label Studio export of a batch of a few hundred items is far
#: smaller.
MAX_BODY_BYTES = 1 << 20
TOKEN_HEADER = "X-Asal-Token"
STATIC = resources.files("asal.labelling") / "static"


def create_app(session: LabellingSession, *, token: str | None = None) -> Flask:
    """The app of ``session``; with ``token``, every request must carry it."""
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    def with_token(url: str) -> str:
        return f"{url}?token={token}" if token else url

    @app.before_request
    def check_token():
        if token is None or request.path.startswith("/static/"):  # the page's code: the same for everyone
            return None
        given = request.headers.get(TOKEN_HEADER) or request.args.get("token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return jsonify(error=f"this session needs its token (the {TOKEN_HEADER} header or ?token=)"), 401
        return None

    @app.errorhandler(LabelError)
    def refused(exc: LabelError):
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=f"{exc.name}: {exc.description}"), exc.code

    def body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise LabelError(400, "the body must be a JSON object (Content-Type: application/json)")
        return data

    @app.get("/")
    def page():
        return Response((STATIC / "index.html").read_text(encoding="utf-8"), mimetype="text/html")

    @app.get("/static/<any('app.js', 'style.css'):name>")
    def static_file(name: str):
        mimetype = "text/javascript" if name.endswith(".js") else "text/css"
        return Response((STATIC / name).read_text(encoding="utf-8"), mimetype=mimetype)

    @app.get("/api/state")
    def state():
        return jsonify(session.state())

    @app.get("/api/batch")
    def batch():
        return jsonify(session.current_batch(image_url=lambda i: with_token(f"/api/image/{i}"),
                                             synthetic_url=lambda b, k: with_token(f"/api/synthetic/{b}/{k}")))

    @app.post("/api/label")
    def label():
        data = body()
        if "pool_index" not in data or "label" not in data:
            raise LabelError(400, 'give {"pool_index": i, "label": "<class>"} (or "label": null to skip)')
        return jsonify(session.label(data["pool_index"], data["label"]))

    @app.post("/api/undo")
    def undo():
        return jsonify(session.undo())

    @app.get("/api/export")
    def export():
        kind = request.args.get("format", "csv")
        if kind == "csv":
            return Response(session.export_csv(), mimetype="text/csv",
                            headers={"Content-Disposition": "attachment; filename=labels.csv"})
        if kind == "labelstudio":
            root = request.host_url.rstrip("/")
            return jsonify(session.export_labelstudio(lambda i: with_token(f"{root}/api/image/{i}")))
        raise LabelError(400, f"unknown export format {kind!r}: csv or labelstudio")

    @app.post("/api/import")
    def import_answers():
        kind = request.args.get("format")
        if kind != "labelstudio":
            raise LabelError(400, f"unknown import format {kind!r}: labelstudio")
        return jsonify(session.import_labelstudio(request.get_json(silent=True)))

    @app.get("/api/image/<int:pool_index>")
    def image(pool_index: int):
        return Response(session.image(pool_index), mimetype="image/png")

    @app.get("/api/synthetic/<int:cycle>/<int:k>")
    def synthetic(cycle: int, k: int):
        return Response(session.synthetic_image(cycle, k), mimetype="image/png")

    @app.get("/api/gan-samples")
    def gan_samples():
        if session.gan_samples is None:
            raise LabelError(404, "this experiment has no GAN sample grid")
        return send_file(session.gan_samples, mimetype="image/png")

    return app
