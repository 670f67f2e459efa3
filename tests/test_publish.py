"""Publishing uploads the allowlist and nothing else, never the token, and fails with what to do.

The Hub client is replaced at its boundary by ``FakeHub``, which records every call and reads the bytes
that ``upload_folder`` would send, selecting them with huggingface_hub's own pattern filter.
"""

import json
import socket
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import HfApi, constants, metadata_load
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects
from test_card import DEBRIS, METRICS, RUN_CONFIG, save_tiny_model, write_run
from transformers import VisionEncoderDecoderModel

from htr.core import pipeline as pipeline_module
from htr.core.pipeline import attach_pipeline, custom_pipelines
from htr.core.processing import attach_processor, auto_map, processor_attached
from htr.hub import publish as publish_module
from htr.hub.card import build_model_card
from htr.hub.publish import PublishError, files_to_upload, main, publish, publish_to_folder

TOKEN = "hf_TestTokenThatMustNeverLeak0123456789"
MODEL = {
    "README.md",
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "pipeline.py",
    "processing.py",
    "reading.py",
}
CHECKPOINT = {
    "checkpoint-2/model.safetensors",
    "checkpoint-2/config.json",
    "checkpoint-2/generation_config.json",
}


class FakeHub:
    """Records the HfApi calls publish makes; ``errors`` maps a method name to the exception it raises."""

    def __init__(
        self, user: str = "alice", orgs: tuple[str, ...] = (), role: str = "write", **errors: Exception
    ):
        self.user, self.orgs, self.role, self.errors = user, orgs, role, errors
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploaded: dict[str, bytes] = {}

    def _record(self, method: str, **kwargs: Any) -> None:
        self.calls.append((method, kwargs))
        if method in self.errors:
            raise self.errors[method]

    def whoami(self) -> dict[str, Any]:
        self._record("whoami")
        orgs = [{"name": org} for org in self.orgs]
        return {"name": self.user, "orgs": orgs, "auth": {"accessToken": {"role": self.role}}}

    def create_repo(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_repo", repo_id=repo_id, **kwargs)

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_branch", repo_id=repo_id, **kwargs)

    def upload_folder(self, *, folder_path: Path, allow_patterns: list[str], **kwargs: Any) -> None:
        self._record("upload_folder", allow_patterns=allow_patterns, **kwargs)
        root = Path(folder_path)
        local = sorted(path.relative_to(root).as_posix() for path in root.glob("**/*") if path.is_file())
        for name in filter_repo_objects(
            local, allow_patterns=allow_patterns, ignore_patterns=DEFAULT_IGNORE_PATTERNS
        ):
            self.uploaded[name] = (root / name).read_bytes()

    def upload_file(self, *, path_or_fileobj: str | Path, path_in_repo: str, **kwargs: Any) -> None:
        self._record("upload_file", path_in_repo=path_in_repo, **kwargs)
        self.uploaded[path_in_repo] = Path(path_or_fileobj).read_bytes()


def http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} Client Error", response=httpx2.Response(status, request=request))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture
def output_dir(tmp_path: Path, model_dir: Path) -> Path:
    return write_run(tmp_path / "out", model_dir, metrics=METRICS)


@pytest.fixture
def logged_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No token anywhere huggingface_hub looks: environment and login cache."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))


def test_uploads_exactly_the_allowlist(output_dir: Path) -> None:
    hub = FakeHub()

    returned = publish(output_dir, "alice/trocr-iam", private=True, api=hub)

    assert set(hub.uploaded) == MODEL == set(returned)
    assert [method for method, _ in hub.calls] == ["whoami", "create_repo", "upload_folder"]
    assert hub.calls[1][1] == {"repo_id": "alice/trocr-iam", "private": True, "exist_ok": True}
    assert hub.uploaded["model.safetensors"] == (output_dir / "model.safetensors").read_bytes()
    card = hub.uploaded["README.md"].decode()
    assert 'from_pretrained("alice/trocr-iam")' in card  # the card was rewritten for this repo
    # The output dir had no pipeline (written before run_trocr.py attached it): publishing attached it.
    for name in ("pipeline.py", "reading.py"):
        assert hub.uploaded[name] == Path(pipeline_module.__file__).with_name(name).read_bytes()
    assert json.loads(hub.uploaded["config.json"])["custom_pipelines"] == custom_pipelines()
    assert 'pipeline("image-to-text", model="alice/trocr-iam", trust_remote_code=True)' in card
    # and the processor that reads lines the model's way: AutoProcessor(..., trust_remote_code=True)
    assert (
        hub.uploaded["processing.py"]
        == Path(pipeline_module.__file__).with_name("processing.py").read_bytes()
    )
    assert json.loads(hub.uploaded["processor_config.json"])["auto_map"] == auto_map()
    assert 'AutoProcessor.from_pretrained("alice/trocr-iam", trust_remote_code=True)' in card


def test_uploaded_card_carries_the_metrics(output_dir: Path, tmp_path: Path) -> None:
    hub = FakeHub()
    publish(output_dir, "alice/trocr-iam", api=hub)
    (tmp_path / "uploaded.md").write_bytes(hub.uploaded["README.md"])

    results = metadata_load(tmp_path / "uploaded.md")["model-index"][0]["results"]

    scores = {(r["dataset"]["split"], m["type"]): m["value"] for r in results for m in r["metrics"]}
    assert scores == {
        ("validation", "cer"): 6.32,
        ("validation", "wer"): 17.5,
        ("test", "cer"): 7.05,
        ("test", "wer"): 19.81,
    }


def test_checkpoints_bring_weights_but_no_training_state(output_dir: Path) -> None:
    hub = FakeHub()

    publish(output_dir, "alice/trocr-iam", include_checkpoints=True, revision="v1", api=hub)

    assert set(hub.uploaded) == MODEL | CHECKPOINT
    assert not set(hub.uploaded) & set(DEBRIS)
    assert ("create_branch", {"repo_id": "alice/trocr-iam", "branch": "v1", "exist_ok": True}) in hub.calls
    assert hub.calls[-1][1]["revision"] == "v1"


def test_sharded_weights_upload_the_shards_and_index(output_dir: Path) -> None:
    (output_dir / "model.safetensors").unlink()
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for shard in shards:
        (output_dir / shard).write_bytes(b"weights")
    weight_map = {"encoder.weight": shards[0], "decoder.weight": shards[1]}
    (output_dir / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (output_dir / "README.md").write_text("card")
    attach_pipeline(output_dir)
    attach_processor(output_dir)

    files = set(files_to_upload(output_dir))

    assert files == MODEL - {"model.safetensors"} | {*shards, "model.safetensors.index.json"}


def test_pickle_weights_are_refused(output_dir: Path) -> None:
    (output_dir / "model.safetensors").rename(output_dir / "pytorch_model.bin")
    hub = FakeHub()

    with pytest.raises(PublishError, match=r"pytorch_model\.bin.*only safetensors are published"):
        publish(output_dir, "alice/trocr-iam", api=hub)
    assert hub.calls == []


def test_missing_processor_is_refused(output_dir: Path) -> None:
    for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json"):
        (output_dir / name).unlink()

    with pytest.raises(PublishError, match=r"no processor files.*processor\.save_pretrained"):
        publish(output_dir, "alice/trocr-iam", api=FakeHub())


def test_token_is_in_no_uploaded_byte_log_or_output(
    output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = json.loads((output_dir / "run_config.json").read_text())
    run["training_args"]["hub_token"] = TOKEN  # as if masking had failed: run_config.json is never uploaded
    (output_dir / "run_config.json").write_text(json.dumps(run))
    hub = FakeHub()
    caplog.set_level("DEBUG")

    publish(output_dir, "alice/trocr-iam", dry_run=True)
    publish(output_dir, "alice/trocr-iam", include_checkpoints=True, api=hub)

    assert set(hub.uploaded) == MODEL | CHECKPOINT
    assert not any(TOKEN.encode() in data for data in hub.uploaded.values())
    output = capsys.readouterr()
    assert "Dry run" in output.out
    assert TOKEN not in output.out + output.err + caplog.text
    assert TOKEN not in repr(hub.calls)


def test_a_file_holding_the_token_stops_the_upload(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = json.loads(json.dumps(RUN_CONFIG))
    run["data_args"]["dataset_name"] = f"IAM {TOKEN}"  # rendered into the card
    output_dir = write_run(tmp_path / "out", model_dir, run, METRICS)
    hub = FakeHub()

    with pytest.raises(PublishError, match=r"README\.md contains your Hugging Face token") as caught:
        publish(output_dir, "alice/trocr-iam", api=hub)
    assert TOKEN not in str(caught.value)
    assert hub.calls == []


def test_dry_run_sends_nothing(
    output_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_client() -> None:
        raise AssertionError("a dry run must not create a Hub client")

    monkeypatch.setattr(publish_module, "HfApi", no_client)
    hub = FakeHub()

    files = publish(output_dir, "alice/trocr-iam", dry_run=True)
    publish(output_dir, "alice/trocr-iam", dry_run=True, api=hub)

    assert hub.calls == []
    assert set(files) == MODEL
    printed = capsys.readouterr().out
    assert "model-index:" in printed and "# trocr-iam" in printed  # the card
    assert "  pipeline.py\n" in printed and "  reading.py\n" in printed and "  processing.py\n" in printed
    for name in files:
        assert f"{(output_dir / name).stat().st_size:,}  {name}\n" in printed + "\n"
    assert "optimizer.pt" not in printed


@pytest.mark.parametrize(
    ("hub", "expected"),
    [
        (FakeHub(whoami=http_error(401)), "rejected your token.*`hf auth login`.*HF_TOKEN"),
        (
            FakeHub(user="alice", orgs=("htr-lab",)),
            r"belongs to 'bob'.*you \('alice'\).*htr-lab.*--hub_model_id alice/trocr-iam",
        ),
        (
            FakeHub(user="bob", create_repo=http_error(403)),
            "may not write to 'bob/trocr-iam'.*belongs to someone else",
        ),
        (FakeHub(user="bob", role="read"), "read-only.*settings/tokens"),
        (
            FakeHub(user="bob", upload_folder=http_error(500)),
            r"refused the upload \(500.*rerun `python -m htr.hub.publish",
        ),
        (
            FakeHub(user="bob", upload_folder=ValueError("Invalid metadata in README.md.\n- bad dataset id")),
            "(?s)refused the model card: Invalid metadata.*bad dataset id.*run_config.json",
        ),
        (
            FakeHub(user="bob", upload_folder=httpx2.ConnectError("connection reset")),
            "Could not reach.*stays at .*out; rerun `python -m htr.hub.publish .*out --hub_model_id bob/trocr-iam`",
        ),
    ],
    ids=[
        "token-rejected",
        "foreign-namespace",
        "forbidden",
        "read-only-token",
        "server-error",
        "bad-card",
        "network",
    ],
)
def test_hub_failures_say_what_to_do(output_dir: Path, hub: FakeHub, expected: str) -> None:
    with pytest.raises(PublishError, match=expected):
        publish(output_dir, "bob/trocr-iam", api=hub)
    assert not hub.uploaded


def test_organization_namespace_is_allowed(output_dir: Path) -> None:
    hub = FakeHub(user="alice", orgs=("htr-lab",))

    publish(output_dir, "htr-lab/trocr-iam", api=hub)

    assert set(hub.uploaded) == MODEL


@pytest.mark.usefixtures("logged_out")
def test_cli_not_logged_in(output_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(output_dir), "--hub_model_id", "alice/trocr-iam"]) == 1

    err = capsys.readouterr().err
    assert "not logged in" in err and "`hf auth login`" in err and "HF_TOKEN" in err
    assert "Traceback" not in err


def test_unreachable_hub_keeps_the_model_and_gives_the_retry_line(
    output_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with socket.socket() as probe:  # a port nothing listens on: the real client gets a refused connection
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(PublishError) as caught:
        publish(output_dir, "alice/trocr-iam", private=True, api=HfApi(endpoint=f"http://127.0.0.1:{port}"))

    message = str(caught.value)
    assert f"the model stays at {output_dir}" in message
    assert (
        f"rerun `python -m htr.hub.publish {output_dir} --hub_model_id alice/trocr-iam --private`" in message
    )
    assert TOKEN not in message


def test_cli_dry_run_exits_zero(output_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main([str(output_dir), "--hub_model_id", "alice/trocr-iam", "--dry_run", "--include_checkpoints"])
        == 0
    )
    assert "checkpoint-2/model.safetensors" in capsys.readouterr().out


def test_repo_id_needs_a_namespace(output_dir: Path) -> None:
    with pytest.raises(PublishError, match="NAMESPACE/NAME"):
        publish(output_dir, "trocr-iam", api=FakeHub())


def test_a_symlink_out_of_the_output_dir_is_refused_even_in_a_dry_run(
    output_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (output_dir / "preprocessor_config.json").symlink_to(secret)
    hub = FakeHub()

    with pytest.raises(PublishError, match=r"preprocessor_config\.json is a link to .*secret\.txt, outside"):
        publish(output_dir, "alice/trocr-iam", dry_run=True, api=hub)
    assert hub.calls == [] and "root:x" not in capsys.readouterr().out


def test_a_symlink_inside_the_output_dir_is_published(output_dir: Path) -> None:
    (output_dir / "tokenizer.json").rename(output_dir / "tokenizer.real.json")
    (output_dir / "tokenizer.json").symlink_to("tokenizer.real.json")
    hub = FakeHub()

    publish(output_dir, "alice/trocr-iam", api=hub)
    assert hub.uploaded["tokenizer.json"] == (output_dir / "tokenizer.real.json").read_bytes()


def test_a_fitted_calibration_is_published_with_the_model(output_dir: Path) -> None:
    (output_dir / "calibration.json").write_text(json.dumps({"temperature": 1.5}))
    hub = FakeHub()
    publish(output_dir, "alice/trocr-iam", api=hub)
    assert set(hub.uploaded) == MODEL | {"calibration.json"}
    assert json.loads(hub.uploaded["calibration.json"]) == {"temperature": 1.5}


def _files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def test_to_folder_writes_the_allowlist_only_with_the_runs_own_card(
    output_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run = json.loads((output_dir / "run_config.json").read_text())
    run["training_args"]["hub_token"] = TOKEN  # as if masking had failed: run_config.json stays behind
    (output_dir / "run_config.json").write_text(json.dumps(run))
    folder = tmp_path / "models" / "tiny"

    returned = publish_to_folder(output_dir, folder)

    assert _files(folder) == MODEL == set(returned)  # no run_config.json, checkpoint, predictions or data
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card == str(build_model_card(output_dir, folder.as_posix()))  # what `htr.hub.card` writes
    assert f'from_pretrained("{folder.as_posix()}")' in card and "6.32" in card  # loads the folder; metrics
    assert (folder / "model.safetensors").read_bytes() == (output_dir / "model.safetensors").read_bytes()
    assert not any(TOKEN.encode() in (folder / name).read_bytes() for name in MODEL)
    VisionEncoderDecoderModel.from_pretrained(folder)
    assert processor_attached(folder)  # the shipped folder gets its processor this way


def test_to_folder_replaces_an_old_model_folder_whole(output_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "README.md").write_text("a hand-written card")
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"an old shard")

    publish_to_folder(output_dir, folder)

    assert _files(folder) == MODEL
    assert (folder / "README.md").read_text() != "a hand-written card"
    assert not list(tmp_path.glob(".tiny.*"))  # no staging or old copy left behind


@pytest.mark.parametrize("name", ["run_config.json", "notes/todo.txt"])
def test_to_folder_refuses_to_replace_a_folder_holding_anything_else(
    output_dir: Path, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "not-a-model"
    (folder / name).parent.mkdir(parents=True)
    (folder / name).write_text("keep me")

    with pytest.raises(PublishError, match=r"is no published model file, so .* was not replaced"):
        publish_to_folder(output_dir, folder)
    assert (folder / name).read_text() == "keep me"


def test_to_folder_refuses_the_output_dir_and_what_holds_it(output_dir: Path) -> None:
    for folder in (output_dir, output_dir / "model", output_dir.parent):
        with pytest.raises(PublishError, match="must be a folder of its own"):
            publish_to_folder(output_dir, folder)
    assert (output_dir / "run_config.json").is_file()


def test_cli_to_folder_refuses_hub_only_flags(output_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(output_dir), "--to_folder", str(tmp_path / "m"), "--private"])
    assert not (tmp_path / "m").exists()
    assert main([str(output_dir), "--to_folder", str(tmp_path / "m")]) == 0
    assert _files(tmp_path / "m") == MODEL
