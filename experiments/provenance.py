"""Provenance stamps: which command, commit, machine and libraries produced a result."""

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_stamp():
    """Provenance of this invocation: command, date, commit, machine, library versions."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import keras  # pylint: disable=import-outside-toplevel

    return {
        "command": "python " + shlex.join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted changes mean the commit alone does not reproduce the numbers.
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine_description(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


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
