"""Inner-loop update rules: small init/update pairs the learners compose."""

from keras_meta.update_rules.base import UpdateRule
from keras_meta.update_rules.meta_sgd import LearnedStepSizes
from keras_meta.update_rules.sgd import SGD

__all__ = ["LearnedStepSizes", "SGD", "UpdateRule", "get"]


def get(identifier) -> UpdateRule:
    """An update rule from an instance, a float (SGD step size), a list of step sizes (one per
    inner step, the last repeated) or a config dict."""
    if isinstance(identifier, UpdateRule):
        return identifier
    if isinstance(identifier, (int, float)):
        return SGD(float(identifier))
    if isinstance(identifier, (list, tuple)):
        return SGD(list(identifier))  # one step size per inner step
    if isinstance(identifier, dict):
        kind = identifier.get("name", "sgd")
        kwargs = {k: v for k, v in identifier.items() if k != "name"}
        rules = {"sgd": SGD, "learned_step_sizes": LearnedStepSizes, "meta_sgd": LearnedStepSizes}
        if kind not in rules:
            raise ValueError(f"Unknown update rule {kind!r}; expected one of {sorted(rules)}.")
        return rules[kind](**kwargs)
    raise ValueError("`update_rule` must be an UpdateRule, a step size, a list of step sizes or "
                     "a config dict. "
                     f"Received: {identifier!r}")
