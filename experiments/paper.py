"""The paper's reported numbers, for the comparison columns only (never used as results).

Huang et al., "Graph-Enhanced Multi-Task Learning of Multi-Level Transition Dynamics for
Session-based Recommendation", AAAI 2021. Percentages. MTD's values are the ones quoted
in the project's issue; the baselines' P@10 / MRR@10 are those recorded beside our
baseline runs in WORKSPACE.md. A metric absent here was not transcribed.
"""

TABLE2 = {
    "yoochoose": {
        "mtd": {"P@10": 61.83, "MRR@10": 30.83},
        "pop": {"P@10": 4.59, "MRR@10": 1.51},
        "spop": {"P@10": 28.61, "MRR@10": 18.45},
        "itemknn": {"P@10": 43.40, "MRR@10": 21.39},
    },
    "diginetica": {
        "mtd": {"P@5": 28.29, "P@10": 40.22, "P@20": 53.92, "MRR@10": 17.58},
        "pop": {"P@10": 0.58, "MRR@10": 0.19},
        "spop": {"P@10": 20.66, "MRR@10": 13.59},
        "itemknn": {"P@10": 26.46, "MRR@10": 10.91},
    },
    "retailrocket": {
        "mtd": {"P@5": 39.64, "P@10": 47.93, "P@20": 55.95, "MRR@10": 28.51},
        "pop": {"P@10": 1.59, "MRR@10": 0.44},
        "spop": {"P@10": 29.67, "MRR@10": 21.51},
        "itemknn": {"P@10": 21.41, "MRR@10": 9.78},
    },
}
