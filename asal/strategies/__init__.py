"""Selection strategies behind one interface; ``STRATEGIES`` maps config names to classes."""

from .base import ScoreStrategy, SelectionContext, Strategy
from .baselines import MaxEntropySampling, RandomSampling
from ..errors import BadConfig

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (RandomSampling, MaxEntropySampling)}


def make_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise BadConfig(f"strategy {name!r} is not registered (known: {', '.join(sorted(STRATEGIES))})") from None


__all__ = ["STRATEGIES", "make_strategy", "Strategy", "ScoreStrategy", "SelectionContext"]
