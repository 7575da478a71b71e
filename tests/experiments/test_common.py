"""Cells and run folders of the experiment scripts, without training anything."""

import json

import pytest

from experiments import common
from experiments import published
from mtd_tf.errors import ConfigError
from tests.experiments.records import metrics
from tests.experiments.records import published_record


def runner(tmp_path, **base):
    settings = dict(epochs=1, embedding_dim=16)
    settings.update(base)
    return common.CellRunner(tmp_path / "runs", str(tmp_path / "data"), settings,
                             stamp={"machine": {}})


def test_overrides_are_typed_by_the_config_field():
    assert common.parse_overrides(["lr=0.0005,gcn_layers=2", "frequency=none"]) == {
        "lr": 0.0005, "gcn_layers": 2, "frequency": None}
    assert common.parse_overrides(["graph_writeback=replace"]) == {"graph_writeback": "replace"}
    for bad in ("nonsense=1", "lr", "model_dir=/tmp", "gcn_layers=two"):
        with pytest.raises(ConfigError):
            common.parse_overrides([bad])


def test_cells_equal_to_the_base_share_one_folder(tmp_path):
    cells = runner(tmp_path)
    # d = 16 and f = 4 (diginetica's default) are the base: the plain `mtd` cell.
    assert cells.cell("diginetica", "mtd", embedding_dim=16, frequency=4).name == "mtd"
    assert cells.cell("diginetica", "mtd", frequency=1).name == "mtd-frequency=1"
    assert cells.cell("yoochoose", "mtd", frequency=1).name == "mtd"
    assert cells.cell("yoochoose", "lo", lr=0.01, gcn_layers=2).name == "lo-gcn_layers=2-lr=0.01"
    assert cells.cell("yoochoose", "pop", lr=0.01).name == "pop"
    config = cells.config(cells.cell("yoochoose", "mtd", gcn_layers=3))
    assert (config.trainer.dataset, config.model.gcn_layers, config.trainer.frequency,
            config.trainer.epochs) == ("yoochoose1_64", 3, 1, 1)
    assert config.trainer.model_dir == str(tmp_path / "runs" / "main" / "yoochoose" / "mtd-gcn_layers=3")
    with pytest.raises(ConfigError):
        cells.cell("yoochoose", "gru5rec")


@pytest.mark.parametrize("model", common.MODELS)
def test_a_comparison_model_cell_takes_the_shared_settings_and_its_own(tmp_path, model):
    cells = runner(tmp_path, graph_mix=0.2)  # an MTD-only base setting skips the model
    cell = cells.cell("diginetica", model, lr=0.01)
    assert cell.name == f"{model}-lr=0.01"
    config = cells.config(cell)
    assert (config.trainer.model, config.model.embedding_dim, config.trainer.lr,
            config.trainer.frequency) == (model, 16, 0.01, 1)  # one pass per epoch
    assert config.trainer.model_dir.endswith(f"diginetica/{model}-lr=0.01")
    assert cells.cell("diginetica", model, embedding_dim=16).name == model
    with pytest.raises(ConfigError, match="not a setting a"):
        cells.cell("diginetica", model, gcn_layers=2)


def test_a_dataset_typo_is_refused_before_anything_trains(tmp_path):
    cells = runner(tmp_path)
    (tmp_path / "data" / "shop_clicks").mkdir(parents=True)
    assert cells.cell("shop_clicks", "mtd").dataset == "shop_clicks"  # a folder is a dataset
    assert cells.cell("retailrocket", "mtd").dataset == "retailrocket"  # known, not downloaded
    with pytest.raises(ConfigError, match=(
            r"^unknown dataset 'diginetca' in --datasets: not a published dataset, 'synthetic', or "
            rf"a folder in {tmp_path / 'data'}; did you mean diginetica\?$")):
        cells.cell("diginetca", "mtd")
    with pytest.raises(ConfigError, match=r"did you mean shop_clicks\?$"):
        cells.cell("shop_click", "pop")
    with pytest.raises(ConfigError, match=r"a folder in .*data$"):
        cells.cell("zzzzzz", "mtd")


def test_a_folder_started_with_other_settings_is_refused(tmp_path):
    first = runner(tmp_path)
    cell = first.cell("yoochoose", "mtd")
    run_dir = tmp_path / "runs" / "main" / "yoochoose" / "mtd"
    run_dir.mkdir(parents=True)
    started = {key: value for key, value in first.config(cell).to_dict().items()
               if key not in ("data_dir", "model_dir")}
    (run_dir / "cell.json").write_text(json.dumps({"config": started}))
    assert first.finished_record(cell) is None  # same settings, not finished yet
    other = runner(tmp_path, epochs=5)
    with pytest.raises(ConfigError, match="epochs: folder 1, asked 5"):
        other.finished_record(other.cell("yoochoose", "mtd"))


def test_a_cell_published_in_the_results_files_is_not_trained_again(tmp_path, monkeypatch):
    cells = runner(tmp_path)
    cell = cells.cell("yoochoose", "mtd", gcn_layers=2)
    older = published_record(cells, cell, metrics(30.0), metrics(30.0))
    newer = published_record(cells, cell, metrics(40.0), metrics(30.0),
                             written="2026-11-24T00:00:00+00:00")
    results = tmp_path / "results"
    results.mkdir()
    (results / "figure4.json").write_text(json.dumps(
        {"stamp": {}, "runs": {"yoochoose": {cell.name: older}}}))
    # Table 4 nests its runs by device; a re-run published later replaces the earlier one.
    (results / "table4.json").write_text(json.dumps(
        {"runs": {"cpu": {"yoochoose": {cell.name: newer}}}}))
    (results / "broken.json").write_text("{not json")
    records = published.load_published_records(str(results))
    assert records == {newer["run_dir"]: newer}
    # A script's own results file keeps its record: what it derived came from that run.
    assert published.load_published_records(str(results), own="figure4") == {
        older["run_dir"]: older}

    fresh = common.CellRunner(tmp_path / "runs", str(tmp_path / "data"), cells.base,
                              stamp={"machine": {}}, published_records=records)
    monkeypatch.setattr(fresh, "_train", lambda *args: pytest.fail("trained a published cell"))
    assert fresh.run(cell) == newer
    # A folder of this machine's own outranks the published record: it resumes.
    (tmp_path / "runs" / newer["run_dir"]).mkdir(parents=True)
    assert fresh.finished_record(cell) is None
    assert fresh.finished_record(cells.cell("yoochoose", "mtd")) is None  # not published
    assert cells.finished_record(cell) is None  # a runner without the published records


def test_a_published_record_of_other_settings_or_incomplete_is_not_used(tmp_path):
    cells = runner(tmp_path)
    cell = cells.cell("yoochoose", "mtd")
    stale = published_record(cells, cell, metrics(30.0), metrics(30.0), epochs=5)
    incomplete = published_record(cells, cell, metrics(30.0), metrics(30.0))
    del incomplete["valid"]["MRR@20"]
    for record in (stale, incomplete):
        fresh = common.CellRunner(tmp_path / "runs", str(tmp_path / "data"), cells.base,
                                  stamp={"machine": {}},
                                  published_records={record["run_dir"]: record})
        assert fresh.finished_record(cell) is None
