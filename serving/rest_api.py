"""TF Serving's REST API as a Starlette application (`model_servers/http_rest_api_handler.cc`).

Routes (case-insensitive, like TF Serving's RE2 patterns):

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]

Any other request under `/v1/` answers `400 {"error": "Malformed request: <METHOD> <path>"}`,
anything outside `/v1/` a plain 404; the metrics page lives on its own path. Request handling
(parsing, running the model, writing JSON) happens in worker threads, so the event loop only moves
bytes. Bodies larger than `max_body_bytes` (after gzip decoding, which TF Serving also accepts)
are refused with RESOURCE_EXHAUSTED (HTTP 429 in TF Serving's status table), before the whole
body is read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import zlib
from urllib.parse import unquote

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving import json_tensor, service
from serving.errors import Code, ServingError, http_status, invalid_argument
from serving.metrics import Metrics
from serving.models import ModelManager

log = logging.getLogger("serving")

PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE)
API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
INT64_MAX = 2**63 - 1
_NOT_FOUND_PAGE = (b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n"
                   b"<H1>Not Found</H1>\n</BODY></HTML>\n")


@dataclasses.dataclass
class RestOptions:
    max_body_bytes: int = 64 << 20
    enable_cors: bool = False
    num_threads: int = 0  # 0: anyio's default (40)
    metrics_path: str | None = None


@dataclasses.dataclass
class _Result:
    status: int
    body: bytes
    model: str = ""
    api: str = ""
    signature: str = ""
    code: Code = Code.OK


def _json_indent1(value) -> str:
    """protobuf's JSON printer with `add_whitespace` (1-space indent), as TF Serving uses it."""
    return json.dumps(value, indent=1, ensure_ascii=False)


class RestApi:
    """The request handler; `app` is the ASGI application serving it."""

    def __init__(self, manager: ModelManager, metrics: Metrics | None = None,
                 options: RestOptions | None = None):
        self.manager = manager
        self.metrics = metrics
        self.options = options or RestOptions()
        self._limiter = None
        routes = []
        if self.options.metrics_path and metrics is not None:
            routes.append(Route(self.options.metrics_path, self._metrics_page,
                                methods=ALL_METHODS))
        routes.append(Route("/{path:path}", self._endpoint, methods=ALL_METHODS))
        self.app = Starlette(routes=routes)

    # -- ASGI side ---------------------------------------------------------------------------
    async def _metrics_page(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type="text/plain")

    async def _read_body(self, request: Request) -> bytes:
        limit = self.options.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
        body = b"".join(chunks)
        if "gzip" in request.headers.get("content-encoding", ""):
            body = _gunzip(body, limit)
        return body

    async def _endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw_path.decode("latin-1")
        if not API_PATH.fullmatch(path):
            return Response(_NOT_FOUND_PAGE, status_code=404, media_type="text/html")
        method = request.method
        headers = {}
        if self.options.enable_cors:
            headers = {"Access-Control-Allow-Origin": "*",
                       "Access-Control-Allow-Methods": "POST, GET",
                       "Access-Control-Allow-Headers": "Content-Type"}
        if method == "OPTIONS":  # a CORS preflight
            ok = re.search(r"https?://", request.headers.get("origin", "")) is not None
            return Response(b"", status_code=200 if ok else 400, headers=headers)
        try:
            body = await self._read_body(request)
        except ServingError as e:
            result = _Result(http_status(e.code), json_tensor.error_body(e.message), code=e.code)
        else:
            if self._limiter is None and self.options.num_threads > 0:
                self._limiter = anyio.CapacityLimiter(self.options.num_threads)
            result = await anyio.to_thread.run_sync(self.process, method, path, body,
                                                    limiter=self._limiter)
        self._record(result, time.perf_counter() - started)
        return Response(result.body, status_code=result.status, headers=headers,
                        media_type="application/json")

    def _record(self, result: _Result, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.record_request(
            model=result.model, signature=result.signature, api=result.api or "unknown",
            entrypoint="REST", code=result.code, seconds=seconds,
            tfs_api=result.api if result.api in ("predict", "classify", "regress") else "")

    # -- TF Serving's handler (runs in a worker thread) ----------------------------------------
    def process(self, method: str, path: str, body: bytes) -> _Result:
        """`HttpRestApiHandler::ProcessRequest`: one request to (status, JSON body)."""
        result = _Result(200, b"")
        try:
            result.body = self._dispatch(method, path, body, result).encode(
                "utf-8", "surrogateescape")
        except ServingError as e:
            result.status, result.code = http_status(e.code), e.code
            result.body = json_tensor.error_body(e.message)
        except Exception as e:  # a bug must not take the server down; report it as TF does
            log.exception("error processing %s %s", method, path)
            result.status, result.code = 500, Code.INTERNAL
            result.body = json_tensor.error_body(f"{type(e).__name__}: {e}")
        return result

    def _dispatch(self, method: str, path: str, body: bytes, result: _Result) -> str:
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        match = None
        if method == "POST":
            match = PREDICTION_PATH.fullmatch(path)
        elif method == "GET":
            match = STATUS_PATH.fullmatch(path)
        name, version, label = "", None, None
        if match:
            name = unquote(match.group(1) or "")
            if match.group(2):
                version = int(match.group(2))
                if version > INT64_MAX:
                    raise invalid_argument(
                        f"Failed to convert version: {match.group(2)} to numeric.")
            if match.group(3):
                label = unquote(match.group(3))
        result.model = name
        spec = service.ModelSpec(name, version, label)
        if method == "POST" and match:
            api = match.group(4)
            if api in ("predict", "classify", "regress"):
                result.api = api
                if api == "predict":
                    return self._predict(spec, body, result)
                return self._classify_or_regress(api, spec, body, result)
        elif method == "GET" and match:
            if not name:
                raise invalid_argument("Missing model name in request.")
            if match.group(4) == "metadata":
                result.api = "metadata"
                return self._metadata(spec)
            result.api = "status"
            return self._status(spec)
        raise malformed

    def _predict(self, spec: service.ModelSpec, body: bytes, result: _Result) -> str:
        doc = json_tensor.parse_body(body)
        signature_name = json_tensor.signature_name(doc)
        result.signature = signature_name or "serving_default"
        with self.manager.handle(spec.name, spec.version, spec.label) as loaded:
            dtypes = service.input_dtypes(loaded.signatures, signature_name)
            if not dtypes:
                raise invalid_argument("Failed to get input map for signature: "
                                       + (signature_name or "DEFAULT"))
            inputs, fmt = json_tensor.predict_inputs(doc, dtypes)
            _, outputs = service.run_predict(
                loaded.model, spec.name, signature_name, inputs,
                record_runtime=self._record_runtime)
        return json_tensor.predict_response(outputs, fmt)

    def _record_runtime(self, model: str, runtime: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.record_runtime(model, "Predict", runtime, seconds)

    def _classify_or_regress(self, api: str, spec: service.ModelSpec, body: bytes,
                             result: _Result) -> str:
        doc = json_tensor.parse_body(body)
        signature_name = json_tensor.signature_name(doc)
        result.signature = signature_name or "serving_default"
        json_tensor.check_classify_regress_request(doc)
        with self.manager.handle(spec.name, spec.version, spec.label) as loaded:
            service.classify_or_regress(loaded.model, api, signature_name)
        raise AssertionError("unreachable")  # classify_or_regress always raises

    def _status(self, spec: service.ModelSpec) -> str:
        states = service.model_status(self.manager, spec.name, spec.version)
        return _json_indent1({"model_version_status": [
            {"version": str(s.version), "state": s.state,
             "status": {"error_code": s.error_code.name, "error_message": s.error_message}}
            for s in states]})

    def _metadata(self, spec: service.ModelSpec) -> str:
        with self.manager.handle(spec.name, spec.version, spec.label) as loaded:
            model_spec = {"name": loaded.name, "signature_name": "",
                          "version": str(loaded.version)}
            signatures = {k: loaded.signatures[k].proto_json() for k in sorted(loaded.signatures)}
        # TF Serving prints the two parts separately and joins them by hand.
        return ("{\n" + '"model_spec":' + _json_indent1(model_spec) + ",\n"
                + '"metadata": {' + '"signature_def": '
                + _json_indent1({"signature_def": signatures}) + "}\n" + "}\n")


def _too_large(size: int, limit: int) -> ServingError:
    return ServingError(Code.RESOURCE_EXHAUSTED,
                        f"Request body of {size} bytes is larger than the limit of {limit} bytes "
                        "(--max_body_bytes)")


def _gunzip(body: bytes, limit: int) -> bytes:
    """TF Serving decodes gzip bodies and treats undecodable ones as empty."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        return b""
    if len(out) > limit:
        raise _too_large(len(out), limit)
    return out
