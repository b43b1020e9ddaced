"""The model families, one folder each (transformers' layout): configuration, modeling, scheduling, pipeline
and image processing files. `hf_titok.families` lists them."""
