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


def dataset_view(cells, records):
    """({method: test metrics}, {"mtd": selection}) for one dataset's cells."""
    view, selection = {}, {}
    candidates = [cell for cell in cells if cell.method == "mtd" and not is_refit(cell)]
    for cell in cells:
        if cell.method != "mtd" and records.get(cell):
            view[cell.method] = records[cell]["test"]
    chosen = choose(candidates, records)
    if chosen is not None:
        view["mtd"] = records[chosen]["test"]
        selection["mtd"] = {
            "chosen": chosen.name, "by": "valid P@20",
            "candidates": {cell.name: ({key: records[cell]["valid"][key]
                                        for key in ("P@20", "MRR@20")} if records.get(cell)
                                       else None) for cell in candidates}}
    for cell in cells:
        if is_refit(cell) and records.get(cell):
            view["mtd_refit"] = records[cell]["test"]
            selection["mtd"]["refit"] = {"run": cell.name,
                                         "epochs": dict(cell.overrides)["refit_epochs"]}
    return view, selection
