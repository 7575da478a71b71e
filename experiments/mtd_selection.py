"""How Table 2 picks its `mtd` row: among finished candidates, on validation P@20 only.

Kept apart from the script (which defines flags) so that the rule can be tested alone.
"""


def is_refit(cell):
    """A refit trains on every session for a fixed epoch count: it is no candidate."""
    return any(key == "refit_epochs" for key, _ in cell.overrides)


def choose(candidates, records):
    """The finished `mtd` candidate with the best validation P@20, else None."""
    finished = [cell for cell in candidates if records.get(cell)]
    return max(finished, key=lambda cell: records[cell]["valid"]["P@20"], default=None)


def refit_cell(runner, candidates, records):
    """The refit of the chosen `mtd` among `candidates` (one dataset's), else None."""
    chosen = choose(candidates, records)
    if chosen is None:
        return None
    return runner.cell(chosen.dataset, "mtd", **dict(chosen.overrides),
                       refit_epochs=records[chosen]["best_epoch"])


def row_cells(cells, records):
    """{row: the finished cell whose test numbers the row shows} for one dataset's cells:
    a baseline or variant by its method, `mtd` the chosen candidate, `mtd_refit` its refit."""
    rows = {cell.method: cell for cell in cells if cell.method != "mtd" and records.get(cell)}
    candidates = [cell for cell in cells if cell.method == "mtd" and not is_refit(cell)]
    chosen = choose(candidates, records)
    if chosen is not None:
        rows["mtd"] = chosen
    for cell in cells:
        if is_refit(cell) and records.get(cell):
            rows["mtd_refit"] = cell
    return rows


def dataset_view(cells, records):
    """({method: test metrics}, {"mtd": selection}) for one dataset's cells."""
    rows = row_cells(cells, records)
    view = {row: records[cell]["test"] for row, cell in rows.items()}
    selection = {}
    if "mtd" in rows:
        candidates = [cell for cell in cells if cell.method == "mtd" and not is_refit(cell)]
        selection["mtd"] = {
            "chosen": rows["mtd"].name, "by": "valid P@20",
            "candidates": {cell.name: ({key: records[cell]["valid"][key]
                                        for key in ("P@20", "MRR@20")} if records.get(cell)
                                       else None) for cell in candidates}}
    if "mtd_refit" in rows:
        refit = rows["mtd_refit"]
        selection["mtd"]["refit"] = {"run": refit.name,
                                     "epochs": dict(refit.overrides)["refit_epochs"]}
    return view, selection
