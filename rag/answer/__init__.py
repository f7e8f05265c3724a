"""Grounded, cited answers: rewrite -> retrieve -> evidence check -> LLM or extractive -> citation check."""
from rag.answer.citations import Citation
from rag.answer.pipeline import Answer, Answerer, AnswerStream

__all__ = ["Answer", "AnswerStream", "Answerer", "Citation"]
