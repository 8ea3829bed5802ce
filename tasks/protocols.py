"""The captioning / VQA attack protocols by name (bench run --protocol; docs/protocol.md).

* strict: every pass of the attack, the lowest score kept; a score of 0 is not attacked further.
* robustvlm: RobustVLM's ensemble (vlm_eval/run_evaluation.py): strict's passes, a last float32
  APGD pass on every sample still attacked, and its early stops.
* simclip: the Sim-CLIP scripts' `--attack apgd` (speedlab-git/SimCLIP vlm_eval/run_evaluation.py):
  one APGD pass on the first string, the adversarial output scored as it is.

Kept apart from the attack code so the readers of finished runs know the names without torch.
"""
from __future__ import annotations

VLM_PROTOCOLS = ("strict", "robustvlm", "simclip")
# Protocols whose recorded output is the attack's own, not the minimum with the clean one.
SINGLE_PASS_PROTOCOLS = ("simclip",)
