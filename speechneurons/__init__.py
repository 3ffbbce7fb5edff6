"""speechneurons: which parts of a speech clip drive which neurons of WavLM.

All logic of the Snakemake workflow lives here, importable without Snakemake.
"""

__version__ = "0.2.0"
