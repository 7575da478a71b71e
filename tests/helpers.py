"""Shared test helpers: a tiny dataset folder, small, fast training configurations, and a
spy on the training loop's steps.

The tiny dataset is the synthetic generator's process at 150 items and 1,500 sessions
(M = 150, 1,350 training sessions, about 730 test pairs): building it takes milliseconds
and a two-epoch run on it a few seconds.
"""

import json
import os
import subprocess
import sys
import textwrap

from mtd_tf import job
from mtd_tf.data import formats
from mtd_tf.data import synthetic
from mtd_tf.training import loop
from mtd_tf.training.config import TrainConfig
from mtd_tf.training.timing import RunTimer

TINY = "tiny"
TINY_NUM_ITEMS = 150
TINY_NUM_SESSIONS = 1500
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
# No GPU probing and no C++ info lines in subprocesses: their stderr is asserted on.
SUBPROCESS_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
                      PYTHONPATH=REPO_ROOT)
# A user's shell for the CLIs: TensorFlow's logging and device probing left to the CLI's own
# quiet start (`mtd_tf.cli`), which is then what the tests see.
USER_ENV = {key: value for key, value in SUBPROCESS_ENV.items()
            if key not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}


def write_tiny_dataset(data_dir, name=TINY, seed=0, num_items=TINY_NUM_ITEMS,
                       num_sessions=TINY_NUM_SESSIONS):
    """Writes a synthetic split as text files into `data_dir/name`; returns `data_dir`."""
    train, test_prefixes, test_targets = synthetic.generate_synthetic_split(
        seed=seed, num_items=num_items, num_sessions=num_sessions)
    formats.write_text_split(os.path.join(str(data_dir), name), train, test_prefixes,
                             test_targets)
    return str(data_dir)


def tiny_config(data_dir, model_dir, **overrides):
    """A `TrainConfig` for the tiny dataset that trains in seconds."""
    settings = dict(dataset=TINY, data_dir=str(data_dir), model_dir=str(model_dir), epochs=2,
                    frequency=1, graph_steps=3, batch_size=128, embedding_dim=16,
                    max_train_batches=4, patience=3, seed=0)
    settings.update(overrides)
    return TrainConfig.from_settings(**settings)


def train_and_evaluate(config, **kwargs):
    """The job as `main.py` runs it: with the run timer attached."""
    return job.train_and_evaluate(config, observers=[RunTimer()], **kwargs)


def run_python(args, timeout=120, cwd=REPO_ROOT, env=SUBPROCESS_ENV):
    """Runs `python ARGS` in a fresh process; returns the CompletedProcess (text mode)."""
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env, check=False)


def serve_in_fresh_process(export_dir, item_ids):
    """Serves int64 rows `item_ids` from the SavedModel in `export_dir` in a fresh process
    that loads TensorFlow alone (any import of mtd_tf fails there, and it runs outside the
    repository); returns {"top_items", "scores", "dtypes", "mtd_tf_imported"}."""
    program = textwrap.dedent(f"""
        import json, sys
        sys.modules["mtd_tf"] = None  # any import of mtd_tf now fails
        import tensorflow as tf
        serve = tf.saved_model.load({export_dir!r}).signatures["serving_default"]
        out = serve(item_ids=tf.constant({item_ids!r}, tf.int64))
        print(json.dumps({{"top_items": out["top_items"].numpy().tolist(),
                          "scores": out["scores"].numpy().tolist(),
                          "dtypes": [out["top_items"].dtype.name, out["scores"].dtype.name],
                          "mtd_tf_imported": any(name.startswith("mtd_tf") and module
                                                 for name, module in sys.modules.items())}}))
    """)
    # An editable install puts mtd_tf on the path: PYTHONPATH is emptied and mtd_tf blocked.
    result = subprocess.run(
        [PYTHON, "-c", program], capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(export_dir), env=dict(SUBPROCESS_ENV, PYTHONPATH=""), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def spy(monkeypatch, method_name, events):
    """Wraps `Trainer.<method_name>`; appends (method_name, args) to `events` on each call."""
    original = getattr(loop.Trainer, method_name)

    def wrapper(self, *args, **kwargs):
        events.append((method_name, args))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(loop.Trainer, method_name, wrapper)
