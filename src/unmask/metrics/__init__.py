"""Evaluation: image metrics (L1, L2, PSNR, SSIM, LPIPS, masked variants) and classical baselines."""

from unmask.metrics.baselines import BASELINES, build_baseline
from unmask.metrics.image import aggregate, compute_metrics
from unmask.metrics.lpips_metric import LPIPSMetric, MetricUnavailable, load_lpips
from unmask.metrics.suite import MetricSuite

__all__ = ["BASELINES", "build_baseline", "aggregate", "compute_metrics", "LPIPSMetric",
           "MetricSuite", "MetricUnavailable", "load_lpips"]
