"""`keras-meta serve` / `python -m serving`: options, TF Serving's flag names, errors."""

import argparse
import os
import shutil

import pytest

from serving import cli

from .conftest import MODEL


def options(*argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.options_from_args(parser.parse_args(list(argv)))


def test_defaults_follow_tf_serving_on_loopback(exports):
    opts = options(exports.root)
    assert (opts.host, opts.grpc_port, opts.rest_port) == ("127.0.0.1", 8500, 8501)
    assert opts.poll_seconds == 1.0 and opts.enable_warmup and opts.metrics_path is None
    assert [m.name for m in opts.models] == [MODEL, "latest"]  # from <base>/models.config
    assert opts.max_body_bytes == 64 << 20


def test_models_from_each_kind_of_path(exports, tmp_path):
    single = options(f"--model_base_path={exports.root}/{MODEL}", "--model_name=m")
    assert [(m.name, m.base_path) for m in single.models] == [("m", f"{exports.root}/{MODEL}")]
    folder = options(os.path.join(exports.root, MODEL))
    assert [m.name for m in folder.models] == [MODEL]
    config = options(f"--model_config_file={exports.root}/models.config", "ignored/path")
    assert config.models[0].policy == "all" and config.models[0].labels == {"stable": 1,
                                                                          "canary": 2}
    parent = tmp_path / "exports"
    parent.mkdir()
    os.symlink(os.path.join(exports.root, MODEL), parent / "a")
    os.symlink(os.path.join(exports.root, MODEL), parent / "b")
    assert [m.name for m in options(str(parent)).models] == ["a", "b"]


def test_backends_globally_and_per_model(exports):
    opts = options(exports.root, "--backend=tf", "--backend=latest=onnx")
    assert opts.backend == "tensorflow" and opts.model_backends == {"latest": "onnx"}
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        options(exports.root, "--backend=torch")


def test_tf_serving_style_flags(exports, tmp_path):
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/metrics" }')
    opts = options(exports.root, "--port=9000", "--rest_api_port=0", "--host=0.0.0.0",
                   "--enable_model_warmup=false", "--file_system_poll_wait_seconds=5",
                   f"--monitoring_config_file={monitoring}", "--max_body_bytes=1000",
                   "--enable_serialization_as_tensor_content", "--onnx_variant=int8")
    assert (opts.grpc_port, opts.rest_port, opts.host) == (9000, None, "0.0.0.0")
    assert not opts.enable_warmup and opts.poll_seconds == 5 and opts.metrics_path == "/metrics"
    assert opts.max_body_bytes == 1000 and opts.tensor_content and opts.onnx_variant == "int8"
    assert options(exports.root, "--enable_metrics").metrics_path == (
        "/monitoring/prometheus/metrics")


@pytest.mark.parametrize("argv, message", [
    ([], "nothing to serve"),
    (["--port=0", "--rest_api_port=0", "."], "both APIs disabled"),
    (["--port=8501", "."], "--port and --rest_api_port must differ"),
])
def test_inconsistent_options_are_refused(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        options(*[str(tmp_path) if a == "." else a for a in argv])


def test_paths_without_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no models under"):
        options(str(tmp_path))
    bad = tmp_path / "models.config"
    bad.write_text("model_config_list { config { name: 1 }")
    with pytest.raises(ValueError, match="cannot read model config file"):
        options(f"--model_config_file={bad}")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--model_config_file", "--model_name", "--model_base_path", "--port",
                 "--rest_api_port", "--host", "--backend", "--file_system_poll_wait_seconds",
                 "--max_body_bytes", "--enable_metrics", "--monitoring_config_file",
                 "--enable_model_warmup", "BASE_PATH", "MODEL=BACKEND", "127.0.0.1"):
        assert flag in text, flag


def test_run_reports_startup_errors(capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--log_level=ERROR"])) == 2
    assert "serve: error: nothing to serve" in capsys.readouterr().err


def test_a_copied_export_tree_serves_from_its_new_place(exports, tmp_path):
    copy = tmp_path / "copied"
    shutil.copytree(exports.root, copy)
    config = copy / "models.config"
    config.write_text(config.read_text().replace('base_path: "fewshot"',
                                                 'base_path: "/nowhere/fewshot"'))
    assert {m.base_path for m in options(str(copy)).models} == {str(copy / MODEL)}
