"""The tiny suite: a generated world of small scenes in the real file formats, its tokenizer, its zoo.
May import bench.encoders (it registers its weights folder and tokenizer with the loader) and tasks/.
"""
from pathlib import Path

from bench.encoders.load import register_shipped_weights, register_tokenizer
from bench.tiny.tokenizer import WordTokenizer

WEIGHTS = Path(__file__).resolve().parent / "weights"  # the shipped tiny zoo: sources tiny:NAME

register_shipped_weights("tiny:", WEIGHTS)
register_tokenizer("tiny-clip", WordTokenizer)
