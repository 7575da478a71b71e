"""How Table 2 picks the row of a trained model (`mtd` or a comparison model): among its
finished candidates, on validation P@20 only; its refit is row `<method>_refit`.

Kept apart from the script (which defines flags) so that the rule can be tested alone.
"""

from experiments.common import MODELS

# The methods Table 2 chooses among candidate settings and refits; the others (baselines
# and MTD's ablation variants) are one run each.
SELECTED = ("mtd",) + MODELS
REFIT_SUFFIX = "_refit"


def refit_row(method):
    return method + REFIT_SUFFIX


def is_refit(cell):
    """A refit trains on every session for a fixed epoch count: it is no candidate."""
    return any(key == "refit_epochs" for key, _ in cell.overrides)


def candidates_of(cells, method):
    return [cell for cell in cells if cell.method == method and not is_refit(cell)]


def choose(candidates, records):
    """The finished candidate with the best validation P@20, else None."""
    finished = [cell for cell in candidates if records.get(cell)]
    return max(finished, key=lambda cell: records[cell]["valid"]["P@20"], default=None)


def refit_cell(runner, candidates, records):
    """The refit of the chosen one among `candidates` (one method's, one dataset's), else None."""
    chosen = choose(candidates, records)
    if chosen is None:
        return None
    return runner.cell(chosen.dataset, chosen.method, **dict(chosen.overrides),
                       refit_epochs=records[chosen]["best_epoch"])


def row_cells(cells, records):
    """{row: the finished cell whose test numbers the row shows} for one dataset's cells:
    a baseline or variant by its method, a selected method its chosen candidate, and
    `<method>_refit` that one's refit."""
    rows = {cell.method: cell for cell in cells
            if cell.method not in SELECTED and records.get(cell)}
    for method in SELECTED:
        chosen = choose(candidates_of(cells, method), records)
        if chosen is not None:
            rows[method] = chosen
        for cell in cells:
            if cell.method == method and is_refit(cell) and records.get(cell):
                rows[refit_row(method)] = cell
    return rows


def dataset_view(cells, records):
    """({row: test metrics}, {selected method: its selection}) for one dataset's cells."""
    rows = row_cells(cells, records)
    view = {row: records[cell]["test"] for row, cell in rows.items()}
    selection = {}
    for method in SELECTED:
        if method not in rows:
            continue
        selection[method] = {
            "chosen": rows[method].name, "by": "valid P@20",
            "candidates": {cell.name: ({key: records[cell]["valid"][key]
                                        for key in ("P@20", "MRR@20")} if records.get(cell)
                                       else None)
                           for cell in candidates_of(cells, method)}}
        refit = rows.get(refit_row(method))
        if refit is not None:
            selection[method]["refit"] = {"run": refit.name,
                                          "epochs": dict(refit.overrides)["refit_epochs"]}
    return view, selection
