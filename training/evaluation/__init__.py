"""How good an exported model is, measured on muons made by the service's own engine against a reference.

``evaluate.py`` gathers the figures (``muongan evaluate``); ``fom.py`` (classifier AUC), ``tails.py`` and
``showers.py`` (tail rates and their errors), ``distances.py`` (FPD/KPD), ``boosted.py`` and
``physical.py`` each measure one thing; ``agreement.py`` compares independent reference runs;
``plots.py`` and ``report.py`` draw them.
"""

from training.evaluation.agreement import agreement
from training.evaluation.evaluate import evaluate
from training.evaluation.showers import with_shower_errors

__all__ = ["agreement", "evaluate", "with_shower_errors"]
