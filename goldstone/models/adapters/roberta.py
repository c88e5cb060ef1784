"""RoBERTa: BERT's module layout under another model_type (only the embeddings' position ids differ)."""

from dataclasses import replace

from goldstone.models.adapters.architecture import register
from goldstone.models.adapters.bert import BERT

ROBERTA = register(replace(BERT, model_types=("roberta",)))
