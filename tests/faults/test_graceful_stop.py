"""A graceful stop: the first SIGTERM or SIGINT saves at the next batch boundary, prints one
line saying how to resume and exits 128 + the signal's number; the resumed run's metrics
equal an uninterrupted run's; a second signal stops at once."""

import os
import signal

import pytest

from mtd_tf.errors import RunStopped
from mtd_tf.training import loop
from mtd_tf.training import stop_signals
from tests import helpers
from tests.faults import runs


@pytest.fixture(name="tiny_data", scope="module")
def fixture_tiny_data(tmp_path_factory):
    return helpers.write_tiny_dataset(tmp_path_factory.mktemp("data"))


def _config(data_dir, model_dir):
    return helpers.tiny_config(data_dir, model_dir, frequency=2, max_train_batches=6)


@pytest.fixture(name="reference", scope="module")
def fixture_reference(tiny_data, tmp_path_factory):
    """The report of the same run, uninterrupted, and its step count."""
    trainer = loop.Trainer(_config(tiny_data, tmp_path_factory.mktemp("reference") / "run"))
    trainer.train()
    return helpers.train_and_evaluate(trainer.config), int(trainer.state.step)


def _signal_at(monkeypatch, method_name, moment, signum=signal.SIGTERM):
    """Sends `signum` to this process when `Trainer.<method_name>` is called with `moment`
    (the call itself goes on: the signal is taken at the next check)."""
    original = getattr(loop.Trainer, method_name)

    def signalling(self, *args):
        if args == moment:
            os.kill(os.getpid(), signum)
        return original(self, *args)

    monkeypatch.setattr(loop.Trainer, method_name, signalling)


def _train_step_signalling_at(trainer, step_number, signum=signal.SIGTERM):
    real_step = trainer.train_step

    def step(batch):
        if int(trainer.state.step) + 1 == step_number:
            os.kill(os.getpid(), signum)
        return real_step(batch)

    trainer.train_step = step


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_pass_saves_the_batches_done_and_the_resume_equals_the_uninterrupted_run(
        tiny_data, reference, tmp_path, monkeypatch, signum):
    model_dir = tmp_path / "run"
    config = _config(tiny_data, model_dir)
    # Step 9 is epoch 1, pass 2, batch 3: the stop comes before batch 4.
    original_init = loop.Trainer.__init__

    def init_with_signal(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        _train_step_signalling_at(self, 9, signum)

    with monkeypatch.context() as patch:
        patch.setattr(loop.Trainer, "__init__", init_with_signal)
        with pytest.raises(RunStopped) as raised:
            helpers.train_and_evaluate(config)
    name = signal.Signals(signum).name
    assert raised.value.exit_code == 128 + signum
    assert str(raised.value) == (
        f"{name} received in epoch 1; its state is saved in {model_dir}/mid_epoch/ckpt-1 "
        "(epoch 1 after 1 of 2 passes and 3 batches of the next): run the same command to "
        "resume")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the job's handlers are gone

    steps = []
    helpers.spy(monkeypatch, "session_pass", steps)
    resumed = helpers.train_and_evaluate(config)

    expected, expected_steps = reference
    assert steps[0] == ("session_pass", (0, 1))  # the stopped pass, from its 4th batch
    runs.assert_same_report(resumed, expected)
    trainer = loop.Trainer(config)
    trainer.restore()
    assert int(trainer.state.step) == expected_steps  # no batch trained twice, none skipped


def test_a_signal_during_validation_saves_the_passes_and_trains_none_again(
        tiny_data, reference, tmp_path, monkeypatch):
    config = _config(tiny_data, tmp_path / "run")
    with monkeypatch.context() as patch:
        original = loop.Trainer.evaluate

        def evaluate(self, samples, description):
            if description == "epoch 2 validation":
                os.kill(os.getpid(), signal.SIGTERM)
            return original(self, samples, description)

        patch.setattr(loop.Trainer, "evaluate", evaluate)
        with pytest.raises(RunStopped, match="epoch 2 after 2 of 2 passes\\)"):
            helpers.train_and_evaluate(config)
    events = []
    helpers.spy(monkeypatch, "session_pass", events)
    helpers.spy(monkeypatch, "graph_phase", events)
    resumed = helpers.train_and_evaluate(config)
    assert events == []  # epoch 2's graph step and passes were saved; only validation ran
    assert resumed["test"] == reference[0]["test"]


def test_a_signal_in_the_graph_phase_keeps_the_last_checkpoint(tiny_data, reference, tmp_path,
                                                               monkeypatch):
    model_dir = tmp_path / "run"
    config = _config(tiny_data, model_dir)
    with monkeypatch.context() as patch:
        _signal_at(patch, "graph_phase", (1,))
        with pytest.raises(RunStopped) as raised:
            helpers.train_and_evaluate(config)
    assert f"its state is saved in {model_dir}/checkpoints/ckpt-1 (epoch 1)" in str(raised.value)
    assert helpers.train_and_evaluate(config)["test"] == reference[0]["test"]


def test_a_second_signal_stops_at_once(monkeypatch):
    exits = []
    monkeypatch.setattr(stop_signals.os, "_exit", exits.append)
    with stop_signals.GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(stop_signals.StopRequested):
            stop.check()
        assert exits == []
        os.kill(os.getpid(), signal.SIGTERM)
    assert exits == [128 + signal.SIGTERM]


@pytest.mark.slow
def test_sigterm_to_the_cli_saves_and_prints_how_to_resume(data_dir, tmp_path):
    # That the resumed run equals an uninterrupted one is proved in-process above.
    model_dir = tmp_path / "run"
    returncode, stderr = runs.signal_when(
        runs.command(data_dir, model_dir),
        lambda: (model_dir / "checkpoints" / "checkpoint").exists(), signal.SIGTERM)

    assert returncode == 128 + signal.SIGTERM and "Traceback" not in stderr
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1 and stopped[0].startswith("stopped: SIGTERM received in epoch")
    assert stopped[0].endswith("run the same command to resume")
    assert not (model_dir / "metrics.json").exists()
