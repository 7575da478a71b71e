"""Choosing a finished run's ranking-time prior on its validation pairs, and serving a
run's weights with it (`python -m mtd_tf.serving.tune_repeat_prior`).

The prior is chosen where the model did not train (a run with a validation split, never a
refit) and never on the test split; the refit of the same settings, trained on every
session, is then exported with it.
"""

from absl import logging

from mtd_tf.errors import MTDError
from mtd_tf.models import model_settings
from mtd_tf.serving import export
from mtd_tf.serving import repeat_prior_search
from mtd_tf.serving import trained_run
from mtd_tf.serving.retrieval import TopKRetrieval
from mtd_tf.training import inputs as training_inputs


def check_tunable(model_dir, config):
    """One line for a run whose validation pairs or scores cannot choose a prior."""
    if config.trainer.refit_epochs:
        raise MTDError(f"{model_dir}: a refit has no validation split to choose the prior "
                       "on: pass its selection run as --model_dir and the refit as "
                       "--export_from")
    if model_settings.prior_is_on(config.model):
        raise MTDError(f"{model_dir}: the run already has a prior; choose one for a run "
                       "trained without it")


def check_same_model(export_from, config, tuned_config):
    """One line unless `export_from` is a model of the settings and the dataset the prior
    was chosen for."""
    if (config.trainer.model, config.model) != (tuned_config.trainer.model, tuned_config.model):
        raise MTDError(f"{export_from}: its model settings differ from --model_dir's; the "
                       "prior was chosen for those")
    if config.trainer.dataset != tuned_config.trainer.dataset:
        raise MTDError(f"{export_from}: trained on {config.trainer.dataset}, but --model_dir "
                       f"on {tuned_config.trainer.dataset}")


def tune(model_dir, objective="MRR@20", export_dir=None, export_from=None, data_dir=None,
         batch_size=512, no_loss_on=()):
    """Chooses `model_dir`'s prior on its validation pairs (the best `objective` among the
    priors that lose nothing on `no_loss_on` there) and, with `export_dir`, exports
    `export_from` (default `model_dir`) with it; returns the report the CLI prints."""
    config = trained_run.read_config(model_dir, data_dir)
    check_tunable(model_dir, config)
    export_from = export_from or model_dir
    export_config = trained_run.read_config(export_from, data_dir)
    check_same_model(export_from, export_config, config)
    data = training_inputs.build_inputs(config)
    model = trained_run.load_model(model_dir, config, data.num_items)
    logging.info("scoring %d validation pairs of %s", len(data.valid.targets), model_dir)
    pairs = repeat_prior_search.score_pairs(
        TopKRetrieval(model, data.item_popularity), data.valid.item_ids, data.valid.targets,
        batch_size)
    prior, report = repeat_prior_search.choose(pairs, objective, no_loss_on)
    report = {"model_dir": model_dir, "dataset": data.dataset_name,
              "valid_pairs": len(data.valid.targets), **report}
    if export_dir:
        served = trained_run.load_model(export_from, export_config, data.num_items,
                                        **prior.as_settings())
        export.export_saved_model(served, export_dir,
                                  top_k=export_config.trainer.export_top_k,
                                  item_popularity=data.item_popularity,
                                  raw_item_ids=data.raw_item_ids)
        report.update(export_dir=export_dir, export_from=export_from)
    return report
