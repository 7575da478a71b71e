"""The paper's reported numbers, for the comparison columns only (never used as results).

Huang et al., "Graph-Enhanced Multi-Task Learning of Multi-Level Transition Dynamics for
Session-based Recommendation", AAAI 2021. Percentages. MTD's values are the ones quoted
in the project's issue; the baselines' P@10 / MRR@10 are those recorded beside our
baseline runs in WORKSPACE.md; the neural comparison models' are the MTD paper's Table 2
(P@10, MRR@10) and Table 3 (P@5, P@10, P@20 of SR-GNN, CSRM and CoSAN on diginetica and
RetailRocket). A metric absent here was not transcribed. Also the comparison models' own
papers' figures and the aims of the repeat-aware work, each sourced where it is defined.
"""

TABLE2 = {
    "yoochoose": {
        "mtd": {"P@10": 61.83, "MRR@10": 30.83},
        "pop": {"P@10": 4.59, "MRR@10": 1.51},
        "spop": {"P@10": 28.61, "MRR@10": 18.45},
        "itemknn": {"P@10": 43.40, "MRR@10": 21.39},
        "gru4rec": {"P@10": 55.13, "MRR@10": 25.76},
        "narm": {"P@10": 60.19, "MRR@10": 29.03},
        "stamp": {"P@10": 58.79, "MRR@10": 29.44},
        "sasrec": {"P@10": 60.42, "MRR@10": 30.47},
        "srgnn": {"P@10": 60.84, "MRR@10": 30.57},
        "csrm": {"P@10": 60.46, "MRR@10": 30.37},
        "cosan": {"P@10": 61.01, "MRR@10": 30.21},
    },
    "diginetica": {
        "mtd": {"P@5": 28.29, "P@10": 40.22, "P@20": 53.92, "MRR@10": 17.58},
        "pop": {"P@10": 0.58, "MRR@10": 0.19},
        "spop": {"P@10": 20.66, "MRR@10": 13.59},
        "itemknn": {"P@10": 26.46, "MRR@10": 10.91},
        "gru4rec": {"P@10": 20.31, "MRR@10": 7.78},
        "narm": {"P@10": 36.72, "MRR@10": 15.00},
        "stamp": {"P@10": 37.05, "MRR@10": 16.05},
        "sasrec": {"P@10": 38.42, "MRR@10": 16.27},
        "srgnn": {"P@5": 27.15, "P@10": 38.40, "P@20": 51.57, "MRR@10": 17.04},
        "csrm": {"P@5": 26.38, "P@10": 38.56, "P@20": 52.56, "MRR@10": 16.23},
        "cosan": {"P@5": 25.72, "P@10": 37.58, "P@20": 50.94, "MRR@10": 15.57},
    },
    "retailrocket": {
        "mtd": {"P@5": 39.64, "P@10": 47.93, "P@20": 55.95, "MRR@10": 28.51},
        "pop": {"P@10": 1.59, "MRR@10": 0.44},
        "spop": {"P@10": 29.67, "MRR@10": 21.51},
        "itemknn": {"P@10": 21.41, "MRR@10": 9.78},
        "gru4rec": {"P@10": 31.01, "MRR@10": 15.37},
        "narm": {"P@10": 44.74, "MRR@10": 25.54},
        "stamp": {"P@10": 43.14, "MRR@10": 26.65},
        "sasrec": {"P@10": 46.39, "MRR@10": 26.74},
        "srgnn": {"P@5": 37.38, "P@10": 44.88, "P@20": 52.27, "MRR@10": 26.95},
        "csrm": {"P@5": 38.65, "P@10": 47.21, "P@20": 55.04, "MRR@10": 27.14},
        "cosan": {"P@5": 37.07, "P@10": 45.83, "P@20": 54.87, "MRR@10": 26.01},
    },
}

# Each comparison model's own paper, on the same published splits (yoochoose 1/64 and
# diginetica), P@20 / MRR@20: SR-GNN's paper (Wu et al., AAAI 2019, Table 2) for SR-GNN,
# NARM, STAMP and GRU4Rec (GRU4Rec as that paper ran it). The faithfulness check of
# `mtd_tf.models` compares our runs with these.
OWN_PAPERS = {
    "yoochoose": {
        "srgnn": {"P@20": 70.57, "MRR@20": 30.94},
        "narm": {"P@20": 68.32, "MRR@20": 28.63},
        "stamp": {"P@20": 68.74, "MRR@20": 29.67},
        "gru4rec": {"P@20": 60.64, "MRR@20": 22.89},
    },
    "diginetica": {
        "srgnn": {"P@20": 50.73, "MRR@20": 17.59},
        "narm": {"P@20": 49.70, "MRR@20": 16.17},
        "stamp": {"P@20": 45.64, "MRR@20": 14.32},
        "gru4rec": {"P@20": 29.45, "MRR@20": 8.33},
    },
}

# The aims of the repeat-aware work (test P@20 / MRR@20): on RetailRocket the best
# published honestly selected result (GraphFine, AAAI 2026), on diginetica its counterpart.
REPEAT_AIMS = {"retailrocket": {"P@20": 58.9, "MRR@20": 31.2},
               "diginetica": {"P@20": 54.3, "MRR@20": 19.1}}

# The paper's Table 4: seconds per epoch on its GPU (TiSASRec needs click timestamps).
TABLE4 = {
    "yoochoose": {"narm": 35, "stamp": 9, "sasrec": 18, "tisa": 82, "srgnn": 1401,
                  "csrm": 530, "mtd": 24},
    "diginetica": {"narm": 66, "stamp": 24, "sasrec": 28, "tisa": 160, "srgnn": 2586,
                   "csrm": 556, "mtd": 40},
    "retailrocket": {"narm": 81, "stamp": 14, "sasrec": 42, "tisa": 100, "srgnn": 2502,
                     "csrm": 228, "mtd": 53},
}
