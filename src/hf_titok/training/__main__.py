"""`python -m hf_titok.training --config titok_l32_stage1` / `accelerate launch -m hf_titok.training ...`: train any
recipe from an installed package (the same command line as `hf-titok train`)."""

from .command import main

if __name__ == "__main__":
    main(prog="python -m hf_titok.training")
