"""Every benchmark script still starts: its imports and flag definitions run, as `--help`
shows. The benchmarks print figures and are not run here; without this, a renamed name
they import breaks them unseen until someone needs a figure."""

import pathlib
import subprocess

from tests import helpers

SCRIPTS = sorted(path.name for path in
                 (pathlib.Path(helpers.REPO_ROOT) / "benchmarks").glob("*.py"))


def test_every_benchmark_prints_its_help():
    assert len(SCRIPTS) >= 8, SCRIPTS
    # All at once: most of each one's time is importing TensorFlow.
    processes = {name: subprocess.Popen(
        [helpers.PYTHON, f"benchmarks/{name}", "--help"], cwd=helpers.REPO_ROOT,
        env=helpers.USER_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in SCRIPTS}
    for name, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert "Traceback" not in err, (name, err[-3000:])
        assert f"benchmarks/{name}:" in out, (name, out[-500:], err[-3000:])
