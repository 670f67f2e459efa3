"""Publish a finished run to the Hugging Face Hub: the model, its processor and its card, nothing else.

An output dir holds much more than the model: optimizer states, pickled training arguments, predictions
that quote the data's labels, TensorBoard logs, sometimes the training data itself. So the upload is an
allowlist of exact file names, computed here and passed to ``upload_folder``:

* ``README.md``: the model card, rewritten by :mod:`htr.hub.card` before every upload.
* ``model.safetensors``, or its shards plus ``model.safetensors.index.json``. Never ``pytorch_model.bin``:
  it is a pickle, and loading a pickle can run code on the downloader's machine.
* ``config.json``, ``generation_config.json`` and the processor's files: what ``from_pretrained`` and
  ``generate`` need; ``calibration.json`` when ``htr.inference.predict --calibrate`` wrote one (a temperature and the
  fit's scores, no paths), so the Hub model's pipeline gives the same calibrated confidence.
* ``pipeline.py`` (and ``reading.py``, which it imports): the image-to-text pipeline that ``config.json``'s ``custom_pipelines`` names, so that
  ``pipeline("image-to-text", model=REPO, trust_remote_code=True)`` works (see :mod:`htr.core.pipeline`). It is code
  the downloader runs, so it is always this repository's own ``htr/core/pipeline.py``: like the card, it is attached
  afresh before every upload (which also fixes output dirs from before run_trocr.py attached it).
* ``processing.py`` (with the same ``reading.py``): the processor that ``processor_config.json``'s ``auto_map``
  names, so that ``AutoProcessor.from_pretrained(REPO, trust_remote_code=True)`` reads lines the model's way (see
  :mod:`htr.core.processing`); attached afresh before every upload, like the pipeline.

Left out on purpose: ``optimizer.pt``, ``scheduler.pt``, ``scaler.pt``, ``rng_state*.pth`` (pickles, twice the
model's size, only useful to resume this run here); ``training_args.bin`` (pickle); ``trainer_state.json`` (log
history plus local paths such as ``best_model_checkpoint``; the card already reports the final scores);
``run_config.json`` (local data and output paths and every TrainingArguments field; the card reports the
hyperparameters that matter); ``predictions_*.csv``, ``invalid_rows_*.csv`` and data CSVs (they contain the
data's labels); ``runs/`` (TensorBoard). ``checkpoint-*/`` only with ``include_checkpoints``, and then through
the same model allowlist, so no optimizer or RNG states.

The token is never passed around: ``HfApi`` finds it in ``HF_TOKEN`` or the login cache by itself.

``--to_folder`` writes the same files to a local folder instead (replacing it), the card naming that folder:
this is how ``htr.training.lineage`` ships ``models/trocr-tiny-synthetic`` from its last stage's run, so the shipped
folder is exactly what an upload would send and its card is always the run's own, never hand-edited.

    python -m htr.hub.publish OUTPUT_DIR --hub_model_id USER/NAME [--private] [--revision BRANCH] [--dry_run]
        [--include_checkpoints]
    python -m htr.hub.publish OUTPUT_DIR --to_folder FOLDER [--dry_run]
"""

import argparse
import glob
import json
import logging
import mmap
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, HTTPError, LocalTokenNotFoundError
from huggingface_hub.utils import validate_repo_id

from htr.core.errors import HTRError
from htr.core.pipeline import CALIBRATION_FILE, attach_pipeline
from htr.core.pipeline import MODULE_FILES as PIPELINE_FILES
from htr.core.processing import MODULE_FILES as PROCESSING_FILES
from htr.core.processing import attach_processor
from htr.hub.card import CardError, write_model_card

logger = logging.getLogger(__name__)

CARD = "README.md"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
CONFIG_FILES = ("config.json", "generation_config.json")
# Every file TrOCRProcessor.save_pretrained may write (RoBERTa BPE for trocr-base/large, sentencepiece for small).
PROCESSOR_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
)
# The code files that travel with the weights (reading.py is in both lists).
CODE_FILES = tuple(dict.fromkeys((*PIPELINE_FILES, *PROCESSING_FILES)))
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
SHARD = re.compile(r"model-\d+-of-\d+\.safetensors")  # what save_pretrained names the shards
# What an unreachable Hub raises: the HTTP client's transport errors (HfHubHTTPError, a subclass, is caught
# before), plus ConnectionError for HF_HUB_OFFLINE=1.
NETWORK_ERRORS = (HTTPError, ConnectionError, TimeoutError)
LOGIN_HINT = "run `hf auth login` with a write token, or set HF_TOKEN"
DEFAULT_COMMIT_MESSAGE = "Upload fine-tuned TrOCR model, processor and model card"


class PublishError(HTRError, RuntimeError):
    """Why nothing (more) was published, and what to do about it."""


def weight_files(folder: Path) -> list[str]:
    """The safetensors weights in ``folder``: one file, or the shards its index names plus the index."""
    if (folder / SAFETENSORS).is_file():
        return [SAFETENSORS]
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            raise PublishError(
                f"{index} names shards that are not there ({', '.join(missing)}): re-save the model."
            )
        return [*shards, SAFETENSORS_INDEX]
    if any(folder.glob("pytorch_model*.bin")):
        raise PublishError(
            f"{folder} holds pickle weights (pytorch_model.bin) only, and only safetensors are published "
            "(loading a pickle can run code on the downloader's machine). Re-save them as safetensors: "
            f'python -c "from transformers import VisionEncoderDecoderModel as M; '
            f"M.from_pretrained('{folder}').save_pretrained('{folder}')\""
        )
    raise PublishError(
        f"{folder} has no model weights (model.safetensors): point at a finished run's output dir."
    )


def model_files(folder: Path) -> list[str]:
    """Weights, configs, processor files and the code modules in ``folder``, relative to it."""
    if not (folder / "config.json").is_file():
        raise PublishError(f"{folder} has no config.json: point at a finished run's output dir.")
    names = (*CONFIG_FILES, *PROCESSOR_FILES, *CODE_FILES, CALIBRATION_FILE)
    configs = [name for name in names if (folder / name).is_file()]
    return [*weight_files(folder), *configs]


def files_to_upload(output_dir: str | Path, include_checkpoints: bool = False) -> list[str]:
    """The exact paths (relative to ``output_dir``) to publish; everything else stays local."""
    output_dir = Path(output_dir)
    files = [CARD, *model_files(output_dir)]
    if not any(name in files for name in PROCESSOR_FILES):
        raise PublishError(
            f"{output_dir} has no processor files (tokenizer, image processor config), so the published model "
            f"could not be used: save them with processor.save_pretrained('{output_dir}')."
        )
    if include_checkpoints:
        checkpoints = [
            path for path in output_dir.iterdir() if path.is_dir() and CHECKPOINT.fullmatch(path.name)
        ]
        for checkpoint in sorted(checkpoints, key=lambda path: int(CHECKPOINT.fullmatch(path.name)[1])):
            files += [f"{checkpoint.name}/{name}" for name in model_files(checkpoint)]
    refuse_outside_links(output_dir, files)
    return files


def refuse_outside_links(output_dir: Path, files: list[str]) -> None:
    """Refuse a listed file that resolves outside ``output_dir``: the allowlist names files, a symlink
    (``preprocessor_config.json -> /etc/passwd``) would upload whatever it points at."""
    root = output_dir.resolve()
    for name in files:
        target = (output_dir / name).resolve()
        if not target.is_relative_to(root):
            raise PublishError(
                f"{output_dir / name} is a link to {target}, outside the output dir, so nothing was uploaded: "
                "replace the link with a copy of the file it should be (or delete it) and rerun."
            )


def refuse_token_leak(output_dir: Path, files: list[str]) -> None:
    """Refuse to publish a file containing the user's token: a public write token gives the account away."""
    token = get_token()
    if not token:
        return
    needle = token.encode()
    for name in files:
        path = output_dir / name
        if path.stat().st_size == 0:
            continue
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(needle) != -1:
                raise PublishError(
                    f"{path} contains your Hugging Face token, so nothing was uploaded. Remove the token from "
                    "it (the card is written from run_config.json) and rerun."
                )


def describe_upload(output_dir: Path, files: list[str], target: str) -> str:
    """The dry run's report: every file that would be sent to ``target``, with its size in bytes."""
    sizes = {name: (output_dir / name).stat().st_size for name in files}
    lines = [
        f"Dry run, nothing sent. Would upload {len(files)} files ({sum(sizes.values()):,} bytes) to {target}:"
    ]
    lines += [f"{size:>15,}  {name}" for name, size in sizes.items()]
    return "\n".join(lines)


def check_write_access(api: HfApi, repo_id: str) -> None:
    """Fail before creating anything when the logged-in account cannot write to ``repo_id``'s namespace."""
    me: dict[str, Any] = api.whoami()
    user = me["name"]
    namespaces = [user, *(org["name"] for org in me.get("orgs") or [])]
    namespace, name = repo_id.split("/")
    if namespace not in namespaces:
        raise PublishError(
            f"'{repo_id}' belongs to '{namespace}', which is neither you ('{user}') nor one of your "
            f"organizations ({', '.join(namespaces[1:]) or 'none'}). Publish under your own namespace "
            f"(--hub_model_id {user}/{name}) or log in as an account that can write to '{namespace}'."
        )
    if ((me.get("auth") or {}).get("accessToken") or {}).get("role") == "read":
        raise PublishError(
            f"Your token is read-only: create a write token at https://huggingface.co/settings/tokens, then "
            f"{LOGIN_HINT}."
        )


def _explain(error: HfHubHTTPError, repo_id: str, retry: str) -> str:
    """A Hub HTTP error as what happened and what to do, instead of a status line and a traceback."""
    status = error.response.status_code
    if status == 401:
        return f"The Hub rejected your token (401 Unauthorized): {LOGIN_HINT}."
    if status == 403:
        return (
            f"You may not write to '{repo_id}' (403 Forbidden): it belongs to someone else, or your token has no "
            "write access there. Publish under your own namespace (--hub_model_id YOUR_NAME/...) or ask the "
            "owner for write access."
        )
    return f"The Hub refused the upload ({status}: {error.server_message or error}). Fix that, then rerun `{retry}`."


def _retry_command(
    output_dir: Path, repo_id: str, private: bool, revision: str | None, include_checkpoints: bool
) -> str:
    """The CLI line that repeats this upload, for error messages after a failure half-way."""
    command = ["python", "-m", "htr.hub.publish", str(output_dir), "--hub_model_id", repo_id]
    if private:
        command.append("--private")
    if revision:
        command += ["--revision", revision]
    if include_checkpoints:
        command.append("--include_checkpoints")
    return shlex.join(command)


def prepare_files(output_dir: Path, model_id: str, include_checkpoints: bool = False) -> list[str]:
    """The local half of every publication, shared by the Hub upload and ``--to_folder``: attach the pipeline
    and the processor, write the card naming ``model_id``, list the allowlisted files and check them for the token."""
    if (output_dir / "config.json").is_file():  # else files_to_upload says what is wrong
        attach_pipeline(output_dir)  # before the card, whose usage snippets depend on both
    if (output_dir / "processor_config.json").is_file():
        attach_processor(output_dir)
    try:
        write_model_card(output_dir, model_id)
    except CardError as error:
        raise PublishError(str(error)) from error
    files = files_to_upload(output_dir, include_checkpoints)
    refuse_token_leak(output_dir, files)
    return files


def published_name(name: str) -> bool:
    """Whether a file called ``name`` can be one the allowlist publishes (checkpoints aside)."""
    names = (CARD, SAFETENSORS, SAFETENSORS_INDEX, *CONFIG_FILES, *PROCESSOR_FILES, *CODE_FILES)
    return name in (*names, CALIBRATION_FILE) or bool(SHARD.fullmatch(name))


def publish_to_folder(output_dir: str | Path, folder: str | Path, dry_run: bool = False) -> list[str]:
    """Replace ``folder`` with exactly the files ``publish`` would upload from ``output_dir``; return them.

    The card names ``folder`` as given (``models/trocr-tiny-synthetic``), so its usage snippet loads the
    folder. An existing ``folder`` is replaced only if it holds nothing but published model files, so a
    mistyped path (``.``, an output dir, a data folder) is refused instead of deleted.
    """
    output_dir, folder = Path(output_dir), Path(folder)
    root, target = output_dir.resolve(), folder.resolve()
    if target.is_relative_to(root) or root.is_relative_to(target):
        raise PublishError(
            f"--to_folder {folder} is, holds or lies inside the output dir {output_dir}: it is replaced "
            "by the published files, so it must be a folder of its own (such as models/NAME)."
        )
    if folder.exists():
        others = [path for path in folder.rglob("*") if not (path.is_file() and published_name(path.name))]
        if others or not folder.is_dir():
            raise PublishError(
                f"{others[0] if others else folder} is no published model file, so {folder} was not replaced: "
                "move that away (or point --to_folder at a model folder) and rerun."
            )
    files = prepare_files(output_dir, folder.as_posix())
    if dry_run:
        print(describe_upload(output_dir, files, f"the folder {folder} (replacing it)"))
        return files
    staging, old = folder.with_name(f".{folder.name}.new"), folder.with_name(f".{folder.name}.old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in files:
        shutil.copyfile(output_dir / name, staging / name)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)  # the folder is never half-written: the old one, or the new one
    shutil.rmtree(old, ignore_errors=True)
    logger.info("Wrote %d files to %s", len(files), folder)
    return files


def publish(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    include_checkpoints: bool = False,
    api: HfApi | None = None,
    commit_message: str | None = None,
) -> list[str]:
    """Upload the model, processor and card in ``output_dir`` to ``repo_id``; return the uploaded paths.

    Everything local (card, allowlist, token scan) is done before the first request, so a bad output dir
    fails fast and offline. ``dry_run`` prints the card and the file list and sends nothing. Raises
    :class:`PublishError` with a message that says what to do; the model always stays in ``output_dir``.
    """
    output_dir = Path(output_dir)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PublishError(f"Invalid --hub_model_id '{repo_id}': {error}") from error
    if "/" not in repo_id:
        raise PublishError(
            f"--hub_model_id must be NAMESPACE/NAME (such as your-name/{repo_id}), not '{repo_id}'."
        )
    files = prepare_files(output_dir, repo_id, include_checkpoints)
    if dry_run:
        print((output_dir / CARD).read_text(encoding="utf-8"))
        print(describe_upload(output_dir, files, repo_id + (f" (branch {revision})" if revision else "")))
        return files

    retry = _retry_command(output_dir, repo_id, private, revision, include_checkpoints)
    api = api or HfApi()
    try:
        check_write_access(api, repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        logger.info("Uploading %d files to %s", len(files), repo_id)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=output_dir,
            # Patterns are fnmatch globs; escaped, each one matches exactly its own file.
            allow_patterns=[glob.escape(name) for name in files],
            revision=revision,
            commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
        )
    except LocalTokenNotFoundError as error:
        raise PublishError(f"You are not logged in to the Hugging Face Hub: {LOGIN_HINT}.") from error
    except HfHubHTTPError as error:
        raise PublishError(_explain(error, repo_id, retry)) from error
    except ValueError as error:  # upload_folder's check of the card's YAML against the Hub's rules
        raise PublishError(
            f"The Hub refused the model card: {error}\nThe card is written from run_config.json (base model, "
            f"dataset_ids, language, license): fix the value named above, then rerun `{retry}`."
        ) from error
    except NETWORK_ERRORS as error:
        raise PublishError(
            f"Could not reach the Hugging Face Hub ({type(error).__name__}: {error}). Nothing is lost: the model "
            f"stays at {output_dir}; rerun `{retry}` to retry."
        ) from error
    logger.info("Published to https://huggingface.co/%s%s", repo_id, f"/tree/{revision}" if revision else "")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Upload a finished run's model, processor and model card (nothing else) to the Hub."
    )
    parser.add_argument("output_dir", type=Path, help="Output dir of run_trocr.py.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--hub_model_id", help="NAMESPACE/NAME of the model repo (created if missing).")
    target.add_argument(
        "--to_folder",
        type=Path,
        help="Write the same files to this local folder instead, replacing it (the shipped model's folder).",
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="Create the repo private (an existing repo keeps its visibility).",
    )
    parser.add_argument(
        "--revision", help="Branch to upload to, created from main if missing (default: main)."
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="Print the card and the file list; send nothing."
    )
    parser.add_argument(
        "--include_checkpoints",
        action="store_true",
        help="Also upload checkpoint-*/ weights, configs and processor files (never optimizer or RNG states).",
    )
    parser.add_argument("--commit_message", help=f"Default: '{DEFAULT_COMMIT_MESSAGE}'.")
    args = parser.parse_args(argv)
    hub_only = ("private", "revision", "include_checkpoints", "commit_message")
    if args.to_folder and (given := [f"--{name}" for name in hub_only if getattr(args, name)]):
        parser.error(f"{', '.join(given)} only apply to --hub_model_id, not to --to_folder")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.to_folder:
            publish_to_folder(args.output_dir, args.to_folder, args.dry_run)
            return 0
        publish(
            args.output_dir,
            args.hub_model_id,
            private=args.private,
            revision=args.revision,
            dry_run=args.dry_run,
            include_checkpoints=args.include_checkpoints,
            commit_message=args.commit_message,
        )
    except PublishError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
