"""Provenance stamps: which command, commit, machine and libraries produced a result."""

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Flags that say only where outputs go: they change no number, and their values name one
# machine's folders, so a recorded command leaves them out.
OUTPUT_FLAGS = ("--runs_dir", "--results_dir")


def make_stamp():
    """Provenance of this invocation: command, date, commit, machine, library versions."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import keras  # pylint: disable=import-outside-toplevel

    return {
        "command": recorded_command(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted changes mean the commit alone does not reproduce the numbers.
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine_description(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def recorded_command(argv):
    """`argv` as results show it, so that it reads the same on every machine: output
    folders left out (`OUTPUT_FLAGS`), and paths into the checkout or beside it written
    relative to the checkout, from which the experiments run."""
    words, skip_value = [], False
    for word in argv:
        if skip_value:
            skip_value = False
            continue
        flag, has_value, value = word.partition("=")
        if flag in OUTPUT_FLAGS:
            skip_value = not has_value
            continue
        if has_value and flag.startswith("--"):
            words.append(f"{flag}={_relative_to_checkout(value)}")
        else:
            words.append(_relative_to_checkout(word))
    return "python " + shlex.join(words)


def _relative_to_checkout(path):
    """`path` relative to the checkout if it is an absolute path beside it (its parent's
    tree), else unchanged."""
    if os.path.isabs(path) and path.startswith(os.path.dirname(REPO_ROOT) + os.sep):
        return os.path.relpath(path, REPO_ROOT)
    return path


def _git(*args):
    try:
        result = subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def machine_description():
    """{"platform", "processor" (architecture), "cpu_count" (usable cores), "gpus": [names]}."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(details.get("device_name", device.name))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": cores, "gpus": gpus}


def device_key(machine):
    """A short label for timing columns: the GPU's name, else the CPU core count."""
    if machine["gpus"]:
        return "gpu:" + machine["gpus"][0]
    return f"cpu:{machine['cpu_count']} cores {machine['processor']}"


def device_slug(device):
    """A `device_key` as a folder name (Table 4's timing runs are kept per device)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", device).strip("-")
