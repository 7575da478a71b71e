"""Figure 5 of the paper (case studies) on sampled Diginetica test sessions.

    python experiments/figure5.py --data_dir=../shared/data

(a-c) Heatmaps of the self-attention weights (eq. 1) and of the attentive-aggregation (eq. 3)
and positional-decay (eq. 4) weights of the trained MTD model, for three sampled test
sessions, read from `MTDModel.encode_session(..., return_attention_scores=True)`.
(d) A 2-D t-SNE of 180 test-session vectors q (30 for each of the 6 most frequent next
items), MTD beside `lo` (no graph module) and, as in the paper, SR-GNN and STAMP
(--tsne_models), with the leave-one-out 5-NN accuracy of the next-item labels in the
session space and in the map, to say in numbers what the picture shows. The models are the
shared `main` runs of Table 2 (trained here if missing), loaded at their best validation
epoch; --mtd_settings, --lo_settings and --model_settings pick other runs, e.g. Table 2's
chosen candidates, whose finished runs are then reused rather than trained again.

Writes `figure5.json`, `figure5.md`, `figure5_<dataset>_attention.png`,
`figure5_<dataset>_tsne.png` and a TensorBoard projector folder
`figure5_<dataset>_projector/` (item embeddings of the most popular items, and the session
vectors of the models; kept out of git, as model data):
`tensorboard --logdir experiments/results/figure5_diginetica_projector`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtd_tf import cli  # noqa: E402  (first: it quiets TensorFlow's start-up)

cli.import_tensorflow_quietly()

from absl import flags  # noqa: E402
import numpy as np  # noqa: E402

from experiments import common  # noqa: E402
from experiments import provenance  # noqa: E402
from experiments import reporting  # noqa: E402
from experiments import tsne  # noqa: E402
from mtd_tf.errors import ConfigError  # noqa: E402
from mtd_tf.io_utils import atomic_output_dir  # noqa: E402
from mtd_tf.io_utils import atomic_write_text  # noqa: E402

common.define_flags(default_datasets=("diginetica",))
flags.DEFINE_integer("heatmap_sessions", 3, "Sessions drawn for the heatmaps (a-c).")
flags.DEFINE_integer("heatmap_min_len", 4, "Shortest prefix drawn for a heatmap.")
flags.DEFINE_integer("heatmap_max_len", 10, "Longest prefix drawn for a heatmap.")
flags.DEFINE_integer("tsne_classes", 6, "Next-item classes in the t-SNE (d).")
flags.DEFINE_integer("tsne_per_class", 30, "Test sessions per class in the t-SNE.")
flags.DEFINE_float("tsne_perplexity", 30.0, "t-SNE perplexity (capped below N/3).")
flags.DEFINE_integer("projector_items", 2000, "Most popular items in the projector files.")
flags.DEFINE_integer("sample_seed", 0, "Seed of the session draws and of t-SNE.")
flags.DEFINE_string("mtd_settings", "", "Settings of the MTD model as key=value[,key=value], "
                    "e.g. Table 2's chosen candidate; empty for the defaults.")
flags.DEFINE_string("lo_settings", "", "Settings of the `lo` model, as --mtd_settings.")
flags.DEFINE_list("tsne_models", ["mtd", "lo", "srgnn", "stamp"],
                  "Models whose session vectors the t-SNE (d) maps; mtd is always one (its "
                  "attention weights are (a-c)).")
flags.DEFINE_multi_string("model_settings", [],
                          "Settings of a comparison model of --tsne_models as "
                          "MODEL:key=value[,key=value] (repeatable).")
FLAGS = flags.FLAGS
PANELS = "abcdefghijklmnopqrstuvwxyz"


def load_best(runner, cell):
    """A Trainer of a finished cell holding the weights of its best validation epoch."""
    from mtd_tf.training import loop  # pylint: disable=import-outside-toplevel

    trainer = loop.Trainer(runner.config(cell))
    trainer.restore()
    trainer.restore_best()
    return trainer


def heatmap_sessions(trainer, rng):
    """Attention weights of the MTD model for a few sampled test prefixes."""
    test = trainer.inputs.test
    lengths = test.lengths
    pool = np.flatnonzero((lengths >= FLAGS.heatmap_min_len) & (lengths <= FLAGS.heatmap_max_len))
    if len(pool) < FLAGS.heatmap_sessions:  # small data: take the longest prefixes there are
        pool = np.argsort(-lengths, kind="stable")[:max(FLAGS.heatmap_sessions, 1)]
    chosen = np.sort(rng.choice(pool, size=min(FLAGS.heatmap_sessions, len(pool)), replace=False))
    sessions = []
    for panel, index in zip(PANELS, chosen):
        length = int(lengths[index])
        item_ids = test.item_ids[index:index + 1, :length]  # [1, L]
        _, weights = trainer.model.encode_session(item_ids, training=False,
                                                  return_attention_scores=True)
        scores = np.asarray(trainer.model(item_ids, training=False))[0]  # [M]
        target = int(test.targets[index])
        entry = {"panel": panel, "test_index": int(index), "items": item_ids[0].tolist(),
                 "target": target,
                 "target_rank": int(1 + np.sum(scores > scores[target - 1]))
                 if 1 <= target <= len(scores) else None}
        for name, value in weights.items():
            value = np.asarray(value)[0]
            if name.startswith("self_attention"):
                value = value.mean(axis=0)  # [L, L], averaged over heads
            entry[name] = np.round(value, 5).tolist()
        sessions.append(entry)
    return sessions


def tsne_sample(test, rng):
    """Indices of test pairs: `tsne_per_class` for each of the most frequent targets."""
    usable = test.lengths > 0
    targets, counts = np.unique(test.targets[usable], return_counts=True)
    order = np.lexsort((targets, -counts))[:FLAGS.tsne_classes]  # most frequent, then by id
    classes = targets[order]
    per_class = int(min(FLAGS.tsne_per_class, counts[order].min()))
    indices = np.concatenate([
        np.sort(rng.choice(np.flatnonzero(usable & (test.targets == item)), per_class,
                           replace=False)) for item in classes])
    return classes, per_class, indices


def tsne_view(trainers, test, classes, indices):
    labels = _class_index(classes, test.targets[indices])  # [N], position in `classes`
    perplexity = min(FLAGS.tsne_perplexity, (len(indices) - 1) / 3.0)
    view = {"classes": classes.tolist(), "test_indices": indices.tolist(),
            "labels": labels.tolist(), "perplexity": perplexity, "models": {}}
    vectors = {}
    for name, trainer in trainers.items():
        vectors[name] = np.asarray(trainer.model.encode_session(test.item_ids[indices],
                                                                training=False))
        layout, divergence = tsne.tsne(vectors[name], perplexity=perplexity,
                                       seed=FLAGS.sample_seed)
        view["models"][name] = {
            "kl_divergence": divergence,
            "knn5_accuracy_session_space": tsne.knn_label_accuracy(vectors[name], labels),
            "knn5_accuracy_tsne": tsne.knn_label_accuracy(layout, labels),
            "points": np.round(layout, 4).tolist()}
    return view, vectors


def _class_index(classes, targets):
    lookup = {int(item): position for position, item in enumerate(classes)}
    return np.array([lookup[int(target)] for target in targets])


def write_projector(folder, trainer, vectors, test, view):
    """tensors/metadata TSVs and projector_config.pbtxt for TensorBoard's projector, in a
    folder written whole in place of the last one (no files of models drawn before)."""
    popularity = trainer.inputs.item_popularity  # [M], item m at m - 1
    top = np.argsort(-popularity, kind="stable")[:FLAGS.projector_items]
    table = np.asarray(trainer.model.item_embeddings)[top]
    files = {"items_mtd": (table, ["item\tpopularity"] + [
        f"{row + 1}\t{popularity[row]}" for row in top])}
    session_metadata = ["class\ttarget\tprefix_length\ttest_index"] + [
        f"{label}\t{test.targets[index]}\t{test.lengths[index]}\t{index}"
        for label, index in zip(view["labels"], view["test_indices"])]
    for name, matrix in vectors.items():
        files[f"sessions_{name}"] = (matrix, session_metadata)
    config = []
    with atomic_output_dir(folder) as staging:
        for name, (matrix, metadata) in files.items():
            atomic_write_text(os.path.join(staging, f"{name}_tensors.tsv"), "\n".join(
                "\t".join(f"{value:.6g}" for value in row) for row in matrix) + "\n")
            atomic_write_text(os.path.join(staging, f"{name}_metadata.tsv"),
                              "\n".join(metadata) + "\n")
            config.append(f'embeddings {{\n  tensor_name: "{name}"\n  tensor_path: '
                          f'"{name}_tensors.tsv"\n  metadata_path: "{name}_metadata.tsv"\n}}')
        atomic_write_text(os.path.join(staging, "projector_config.pbtxt"),
                          "\n".join(config) + "\n")
    return {name: len(matrix) for name, (matrix, _) in files.items()}


def plot_heatmaps(sessions, dataset, path):
    plt = reporting.pyplot()
    figure, axes = plt.subplots(2, len(sessions), figsize=(4.8 * len(sessions), 5.8),
                                squeeze=False, gridspec_kw={"height_ratios": [4, 1]})
    for column, entry in enumerate(sessions):
        labels = [str(item) for item in entry["items"]]
        top, bottom = axes[0][column], axes[1][column]
        attention = np.array(entry.get("self_attention_0", np.zeros((len(labels),) * 2)))
        image = top.imshow(attention, cmap="viridis", vmin=0.0, vmax=1.0)
        top.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        top.set_yticks(range(len(labels)), labels, fontsize=7)
        top.set_xlabel("key item")
        top.set_ylabel("query item")
        top.set_title(f"({entry['panel']}) test pair {entry['test_index']}: next {entry['target']}"
                      f" (rank {entry['target_rank']})", fontsize=8)
        pooled = np.array([entry["aggregation"], entry.get("decay_pooling",
                                                           np.zeros(len(labels)))])
        bottom.imshow(pooled, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        bottom.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        bottom.set_yticks([0, 1], ["alpha (eq. 3)", "omega (eq. 4)"], fontsize=7)
    figure.subplots_adjust(wspace=0.5, hspace=0.35)
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.6)
    figure.suptitle(f"Figure 5 (a-c): MTD attention weights, {dataset} test sessions")
    reporting.save_figure(figure, path)


def plot_tsne(view, dataset, path):
    plt = reporting.pyplot()
    figure, axes = plt.subplots(1, len(view["models"]), figsize=(5 * len(view["models"]), 4.6),
                                squeeze=False)
    labels = np.array(view["labels"])
    for axis, (name, model_view) in zip(axes[0], view["models"].items()):
        points = np.array(model_view["points"])
        for position, item in enumerate(view["classes"]):
            chosen = labels == position
            axis.scatter(points[chosen, 0], points[chosen, 1], s=12, label=f"next item {item}")
        axis.set_title(f"{reporting.METHOD_LABELS[name]}: 5-NN label accuracy "
                       f"{model_view['knn5_accuracy_tsne']:.2f}", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][-1].legend(fontsize="x-small", loc="best")
    figure.suptitle(f"Figure 5 (d): t-SNE of {len(labels)} {dataset} test-session vectors")
    reporting.save_figure(figure, path)


def render_markdown(data, results_dir):
    lines = ["# Figure 5: case studies", ""]
    lines += reporting.stamp_lines(data["stamp"], (
        "Every number below is computed by this script from the listed runs' saved models "
        "and the test sessions; none is typed in."))
    lines += reporting.smoke_warning(reporting.run_records(data))
    for dataset in reporting.dataset_keys(data, common.PAPER_DATASETS):
        view = data[dataset]
        lines += ["", f"## {dataset}"]
        if not view:
            lines += ["", "Pending: the models' runs have not finished."]
            continue
        runs = ", ".join(f"{reporting.METHOD_LABELS[name]} `{run}`"
                         for name, run in view["runs"].items())
        lines += ["", reporting.stamp_lines(view["stamp"])[0],
                  "", f"Models: {runs}, each at its best validation epoch (a refit run, "
                  "`refit_epochs` in its name, trained on the validation sessions too, at its "
                  "last)."]
        rows = [[entry["panel"], entry["test_index"], " ".join(map(str, entry["items"])),
                 entry["target"], entry["target_rank"],
                 entry["items"][int(np.argmax(entry["aggregation"]))]]
                for entry in view["heatmaps"]]
        lines += ["", reporting.markdown_table(
            ["panel", "test pair", "prefix", "next item", "MTD rank", "max-alpha item"], rows),
            "", f"![attention](figure5_{dataset}_attention.png)"]
        tsne_view = view["tsne"]
        rows = [[reporting.METHOD_LABELS[name]] + [
            reporting.fmt(tsne_view["models"][name][key], 3)
            for key in ("knn5_accuracy_session_space", "knn5_accuracy_tsne", "kl_divergence")]
            for name in tsne_view["models"]]
        projector = os.path.join(os.path.relpath(results_dir, common.REPO_ROOT),
                                 view["projector"]["dir"])
        sizes = ", ".join(f"{name}: {count} rows"
                          for name, count in sorted(view["projector"]["embeddings"].items()))
        lines += ["", f"t-SNE of {len(tsne_view['labels'])} sessions, next items "
                  f"{tsne_view['classes']}, perplexity {tsne_view['perplexity']:.1f}:", "",
                  reporting.markdown_table(["model", "5-NN accuracy (q space)",
                                            "5-NN accuracy (t-SNE)", "t-SNE KL"], rows),
                  "", f"![t-SNE](figure5_{dataset}_tsne.png)", "",
                  f"Projector: `tensorboard --logdir {projector}` ({sizes}; the script "
                  "writes it beside this file, and it stays out of git: it holds the models' "
                  "vectors)."]
    return "\n".join(lines)


def analyse(runner, cells, results, dataset):
    trainers = {name: load_best(runner, cell) for name, cell in cells.items()}
    test = trainers["mtd"].inputs.test
    rng = np.random.default_rng(FLAGS.sample_seed)
    heatmaps = heatmap_sessions(trainers["mtd"], rng)
    classes, per_class, indices = tsne_sample(test, rng)
    view, vectors = tsne_view(trainers, test, classes, indices)
    view["per_class"] = per_class
    folder = os.path.join(results.results_dir, f"figure5_{dataset}_projector")
    embeddings = write_projector(folder, trainers["mtd"], vectors, test, view)
    plot_heatmaps(heatmaps, dataset, results.png_path(f"_{dataset}_attention"))
    plot_tsne(view, dataset, results.png_path(f"_{dataset}_tsne"))
    return {"runs": {name: cell.name for name, cell in cells.items()}, "heatmaps": heatmaps,
            "tsne": view,
            "projector": {"dir": os.path.basename(folder), "embeddings": embeddings}}


def model_settings():
    """{model: settings} of the runs to load, from the flags."""
    settings = {"mtd": common.parse_overrides([FLAGS.mtd_settings]),
                "lo": common.parse_overrides([FLAGS.lo_settings])}
    for spec in FLAGS.model_settings:
        name, sep, text = spec.partition(":")
        if not sep or name not in common.MODELS:
            raise ConfigError(f"bad --model_settings {spec!r}: expected MODEL:key=value,... "
                              f"with MODEL one of {', '.join(common.MODELS)}")
        settings[name] = common.parse_overrides([text])
    return settings


def main(argv):
    del argv
    stamp = provenance.make_stamp()
    runner = common.runner_from_flags(stamp, use_published=False)  # needs the checkpoints
    results = reporting.ResultsFile(FLAGS.results_dir, "figure5")
    names = ["mtd"] + [name for name in FLAGS.tsne_models if name != "mtd"]
    settings = model_settings()
    cells = {dataset: {name: runner.cell(dataset, name, **settings.get(name, {}))
                       for name in names}
             for dataset in FLAGS.datasets}
    all_cells = [cell for by_name in cells.values() for cell in by_name.values()]
    records = common.resolve_cells(runner, all_cells, lambda records: None, FLAGS.report_only)
    data = results.load()
    data["stamp"] = stamp
    for dataset in FLAGS.datasets:
        if not all(records[cell] for cell in cells[dataset].values()):
            # The analysis needs the models: without them, keep what an earlier run drew.
            data.setdefault(dataset, {})
            continue
        # Each dataset keeps the command that drew it: datasets may use different runs.
        data[dataset] = {**analyse(runner, cells[dataset], results, dataset), "stamp": stamp}
        reporting.update_runs(data, dataset, {cell.name: records[cell]
                                              for cell in cells[dataset].values()})
    results.write(data, render_markdown(data, results.results_dir))
    print(f"wrote {results.json_path}, {results.md_path} and the figure5_* plots and projector "
          f"folders in {results.results_dir}")
    return runner.exit_code()


if __name__ == "__main__":
    cli.run_app(main)
