"""Attack algorithms: APGD, PGD, targeted CW and worst-case ensembles on a shared Objective core.

Every attack takes images in [0,1] (NCHW) and a model mapping them to logits (or, through
`run_apgd` / `run_pgd`, any Objective), and every returned batch passes the validity guard.
The one text attack, charmer, edits a sentence within Levenshtein distance k instead.
"""
from attacks.apgd import apgd, run_apgd
from attacks.charmer import CharmerOutcome, charmer, levenshtein
from attacks.core import AttackResult, NonFiniteLossError, attack_mode
from attacks.cw import cw
from attacks.ensemble import ENSEMBLE, WorstCaseResult, worst_case
from attacks.guard import InvalidAdversarialError, check_valid, checked_norms
from attacks.losses import LOSSES
from attacks.objectives import ClassifierObjective, Evaluation, Objective
from attacks.pgd import pgd, run_pgd

__all__ = [
    "apgd", "pgd", "cw", "worst_case", "run_apgd", "run_pgd",
    "Objective", "Evaluation", "ClassifierObjective", "AttackResult", "WorstCaseResult",
    "InvalidAdversarialError", "NonFiniteLossError", "check_valid", "checked_norms", "attack_mode", "LOSSES",
    "ENSEMBLE", "charmer", "CharmerOutcome", "levenshtein",
]
