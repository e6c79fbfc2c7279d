"""`original`: the training rows as read."""

from datasets import Dataset

from relevance.augment.base import AugmentContext, Strategy, register


@register("original")
class Original(Strategy):
    def generate(self, mix: Dataset, context: AugmentContext) -> Dataset:
        return context.original
