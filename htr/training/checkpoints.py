"""Finding the checkpoint to resume from, skipping any that a crash left half-written.

The Trainer writes a checkpoint folder file by file and `trainer_state.json` last, with no atomic
rename: after a `kill -9` during a save the newest folder can lack files or hold a truncated state.
Resuming from it fails (or silently restarts the schedule), so only folders whose trainer state
parses count as complete.
"""

import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest-step ``checkpoint-N`` folder whose ``trainer_state.json`` is complete, or None."""
    folders = [p for p in Path(output_dir).iterdir() if p.is_dir() and _CHECKPOINT.match(p.name)]
    for folder in sorted(folders, key=lambda p: int(_CHECKPOINT.match(p.name).group(1)), reverse=True):
        try:
            state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            logger.warning("Skipping %s: it was not completely written (interrupted save).", folder)
            continue
        if "global_step" in state:
            return folder
        logger.warning("Skipping %s: its trainer_state.json has no global_step.", folder)
    return None
