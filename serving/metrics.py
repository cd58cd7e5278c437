"""Prometheus metrics on TF Serving's metrics path (default `/monitoring/prometheus/metrics`).

Two families:

- TF Serving's own request metrics, with its names, labels and units, printed the way its
  `PrometheusExporter` prints them, so dashboards built for TF Serving work unchanged:
  `:tensorflow:serving:request_count{model_name, status}` (every request),
  `:tensorflow:serving:request_latency{model_name, API, entrypoint}` (successful requests, in
  microseconds), `:tensorflow:serving:runtime_latency{model_name, API, runtime}` and
  `:tensorflow:serving:model_warmup_records_read{model_path, status}`.
- keras-meta's, through `prometheus_client`, labelled by model, signature and status code:
  `keras_meta_serving_requests_total` and `keras_meta_serving_request_latency_seconds`.
"""

from __future__ import annotations

import bisect
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

DEFAULT_PATH = "/monitoring/prometheus/metrics"
LABELS = ("model", "signature", "api", "entrypoint", "code")
# Buckets::Exponential(10, 1.8, 33) in microseconds; the exporter adds +Inf.
_TFS_BUCKETS = [10 * 1.8**i for i in range(33)]


def _label_value(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _labels(names, values) -> str:
    return ",".join(f'{n}="{_label_value(v)}"' for n, v in zip(names, values))


class _Counter:
    def __init__(self, name: str, labels: tuple[str, ...]):
        self.name, self.labels = name, labels
        self.values: dict[tuple, int] = {}

    def inc(self, *labels, by: int = 1):
        self.values[labels] = self.values.get(labels, 0) + by

    def lines(self) -> list[str]:
        return [f"# TYPE {self.name} counter"] + [
            f"{self.name}{{{_labels(self.labels, k)}}} {v}" for k, v in self.values.items()]


class _Sampler:
    def __init__(self, name: str, labels: tuple[str, ...]):
        self.name, self.labels = name, labels
        self.values: dict[tuple, list] = {}  # labels -> [bucket counts, sum]

    def add(self, value: float, *labels):
        counts, _ = entry = self.values.setdefault(labels, [[0] * (len(_TFS_BUCKETS) + 1), 0.0])
        counts[bisect.bisect_left(_TFS_BUCKETS, value)] += 1
        entry[1] += value

    def lines(self) -> list[str]:
        out = [f"# TYPE {self.name} histogram"]
        for key, (counts, total) in self.values.items():
            labels = _labels(self.labels, key)
            prefix = f"{self.name}_bucket{{{labels}{',' if labels else ''}"
            cumulative = 0
            for limit, count in zip([f"{b:.6g}" for b in _TFS_BUCKETS] + ["+Inf"], counts):
                cumulative += count
                out.append(f'{prefix}le="{limit}"}} {cumulative}')
            out.append(f"{self.name}_sum{{{labels}}} {total:.6g}")
            out.append(f"{self.name}_count{{{labels}}} {cumulative}")
        return out


class Metrics:
    """The metrics of one server (its own registry, so servers in a process never collide)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._request_count = _Counter(":tensorflow:serving:request_count",
                                       ("model_name", "status"))
        self._request_latency = _Sampler(":tensorflow:serving:request_latency",
                                         ("model_name", "API", "entrypoint"))
        self._runtime_latency = _Sampler(":tensorflow:serving:runtime_latency",
                                         ("model_name", "API", "runtime"))
        self._warmup_records = _Counter(":tensorflow:serving:model_warmup_records_read",
                                        ("model_path", "status"))
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            "keras_meta_serving_requests", "Requests by model, signature, API, entry point and "
            "status code.", LABELS, registry=self.registry)
        self._latency = Histogram(
            "keras_meta_serving_request_latency_seconds", "Request latency in seconds by model, "
            "signature, API, entry point and status code.", LABELS, registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0, 10.0))

    def record_request(self, *, model: str, signature: str, api: str, entrypoint: str,
                       code, seconds: float, tfs_api: str | None = None,
                       tfs_count: bool = True) -> None:
        """One finished request. `tfs_api`: TF Serving's API label (None: not in its latency)."""
        code_name = code.name
        with self._lock:
            if tfs_count:
                self._request_count.inc(model, code_name)
            if tfs_api is not None and code_name == "OK":
                self._request_latency.add(seconds * 1e6, model, tfs_api, entrypoint)
        labels = (model, signature, api, entrypoint, code_name)
        self._requests.labels(*labels).inc()
        self._latency.labels(*labels).observe(seconds)

    def record_runtime(self, model: str, api: str, runtime: str, seconds: float) -> None:
        with self._lock:
            self._runtime_latency.add(seconds * 1e6, model, api, runtime)

    def record_warmup(self, model_path: str, status: str, records: int) -> None:
        with self._lock:
            self._warmup_records.inc(model_path, status, by=records)

    def exposition(self) -> bytes:
        """The metrics page: TF Serving's metrics, then keras-meta's."""
        with self._lock:
            lines = []
            for metric in (self._warmup_records, self._request_count, self._request_latency,
                           self._runtime_latency):
                if metric.values:
                    lines += metric.lines()
        text = "\n".join(lines) + ("\n" if lines else "")
        return text.encode() + generate_latest(self.registry)
