"""Official-format configs (the `model.vq_model` section of configs/infer/TiTok/*.yaml) of every released
tokenizer, as the official repository states them; used to convert the official key listings."""

import copy

_TWO_STAGE = dict(vit_enc_patch_size=16, vit_dec_patch_size=16, token_size=12, codebook_size=4096,
                  use_l2_norm=True, commitment_cost=0.25, finetune_decoder=True)  # is_legacy absent -> True
_VQ8K = dict(vit_enc_patch_size=16, vit_dec_patch_size=16, token_size=64, codebook_size=8192, use_l2_norm=False,
             commitment_cost=0.25, finetune_decoder=False, is_legacy=False)
_VAE = dict(vit_enc_patch_size=16, vit_dec_patch_size=16, token_size=16, quantize_mode="vae",
            finetune_decoder=False, is_legacy=False)

VQ_MODELS = {
    "titok_l32": dict(_TWO_STAGE, vit_enc_model_size="large", vit_dec_model_size="large", num_latent_tokens=32),
    "titok_b64": dict(_TWO_STAGE, vit_enc_model_size="base", vit_dec_model_size="base", num_latent_tokens=64),
    "titok_s128": dict(_TWO_STAGE, vit_enc_model_size="small", vit_dec_model_size="small", num_latent_tokens=128),
    "titok_bl64_vq8k": dict(_VQ8K, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=64),
    "titok_bl128_vq8k": dict(_VQ8K, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=128),
    "titok_sl256_vq8k": dict(_VQ8K, vit_enc_model_size="small", vit_dec_model_size="large", num_latent_tokens=256),
    "titok_ll32_vae_c16": dict(_VAE, vit_enc_model_size="large", vit_dec_model_size="large", num_latent_tokens=32),
    "titok_bl64_vae_c16": dict(_VAE, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=64),
    "titok_bl128_vae_c16": dict(_VAE, vit_enc_model_size="base", vit_dec_model_size="large", num_latent_tokens=128),
}


def official_tokenizer_config(name: str) -> dict:
    """`titok_l32`, ..., or `titok_l32_stage1` (the same with finetune_decoder=False)."""
    stage1 = name.endswith("_stage1")
    vq_model = copy.deepcopy(VQ_MODELS[name.removesuffix("_stage1")])
    if stage1:
        vq_model["finetune_decoder"] = False
    return {"experiment": {}, "model": {"vq_model": vq_model}, "dataset": {"preprocessing": {"crop_size": 256}}}

_BERT = dict(model_type="ViT", hidden_size=768, num_hidden_layers=24, num_attention_heads=16, intermediate_size=3072)
_GENERATOR_COMMON = dict(condition_num_classes=1000, dropout=0.1, attn_drop=0.1, class_label_dropout=0.1,
                         image_seq_len="${model.vq_model.num_latent_tokens}")
GENERATORS = {
    "titok_l32": dict(_GENERATOR_COMMON, **_BERT, num_steps=8, guidance_scale=4.5, guidance_decay="linear",
                      randomize_temperature=9.5),
    "titok_b64": dict(_GENERATOR_COMMON, **_BERT, num_steps=8, guidance_scale=3.0, guidance_decay="linear",
                      randomize_temperature=11.0),
    "titok_s128": dict(_GENERATOR_COMMON, model_type="UViT", hidden_size=1024, num_hidden_layers=20,
                       num_attention_heads=16, intermediate_size=4096, num_steps=64, guidance_scale=6.9,
                       guidance_decay="power-cosine", randomize_temperature=2.8),
}


def official_generator_config(name: str) -> dict:
    """The Hub config.json of a released generator (tokenizer section + generator section, with the
    unresolved `image_seq_len` interpolation as released)."""
    config = official_tokenizer_config(name)
    config["model"]["generator"] = copy.deepcopy(GENERATORS[name])
    return config
