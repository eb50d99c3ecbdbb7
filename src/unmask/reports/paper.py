"""The published numbers of the seeds, shown beside ours in every report.

Every value is copied from the seed's text (``../shared/seeds/*.txt``) or ``REFERENCE.md``. Seed 000's
(Tables 3, 4, 5, 7, 8) were measured at 256 px on FFHQ (clean) / CMFD (correctly masked MaskedFace-Net) with 28,720 unpaired training
images per domain, batch 4 (7,180 iterations per epoch) and 8,608 test images (seed 000, Section 4.3).
A study names its table with ``reference: paper_tableN`` in params.yaml; the names are also listed in
:data:`unmask.catalog.papers.PAPER_TABLES`, which reading params.yaml checks them against.
"""

from __future__ import annotations

from dataclasses import dataclass

from unmask.errors import ConfigError

PAPER_DATA = "FFHQ / CMFD, 256 px, 28,720 train images per domain, batch 4 (7,180 iterations per epoch)"


@dataclass(frozen=True)
class PaperColumn:
    """One configuration of a published table; ``metrics`` holds only what the paper reports."""

    label: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class PaperTable:
    """A published table: where it comes from, its training setting, and its columns."""

    source: str
    setting: str
    columns: tuple[PaperColumn, ...]
    note: str = ""
    not_run: tuple[tuple[str, str], ...] = ()   # (the paper's comparison, why this pipeline does not run it)


SEED004_SETTING = ("256 px synthetic face images with free-form occluders (sunglasses, hands, scarves, strokes), "
                   "TensorFlow, 1000 epochs, batch 10, TTUR Adam G 1e-4 / D 4e-4, stage I alpha 100 beta 33, "
                   "stage II alpha 10 beta 3.3, PatchGAN 32x32")


def _cols(labels: list[str], rows: dict[str, list[float]]) -> tuple[PaperColumn, ...]:
    """Columns from the paper's row-per-metric layout."""
    return tuple(PaperColumn(label, {m: vals[i] for m, vals in rows.items()}) for i, label in enumerate(labels))


PAPER: dict[str, PaperTable] = {
    "paper_table3": PaperTable(
        source="seed 000, Table 3 (loss functions, CycleGAN)",
        setting=f"CycleGAN, StarGAN networks, 2 epochs; {PAPER_DATA}",
        columns=_cols(
            ["M λ0.1", "H λ0.01", "W λ0.01", "W λ0.1", "L λ0.1", "RH λ0.1", "RL λ0.1"],
            {"l1": [0.0784, 0.0564, 0.0526, 0.0453, 0.3459, 0.0654, 0.1186],
             "l2": [0.0102, 0.0087, 0.0075, 0.0059, 0.1657, 0.0093, 0.0268],
             "psnr": [20.025, 20.806, 21.464, 22.443, 7.8544, 20.473, 15.846],
             "ssim": [0.7456, 0.8135, 0.8190, 0.8202, 0.0146, 0.7068, 0.4328],
             "lpips": [0.1575, 0.1280, 0.1149, 0.1153, 0.4397, 0.1868, 0.3998]}),
        # the seed's extracted header lists 6 loss labels (M H W L RH RL) over 7 columns; REFERENCE.md
        # names the 4th column WGAN λ0.1, so the 3rd is read as WGAN λ0.01
        note="M = minimax, H = hinge, W = Wasserstein (WGAN-GP), L = least squares, R = relativistic. "
             "The extracted header has six loss labels for seven columns; the third is read as W λ0.01.",
    ),
    "paper_table4": PaperTable(
        source="seed 000, Table 4 (approaches, CycleGAN)",
        setting=f"CycleGAN, WGAN λadv 0.1 (the WGAN column is Table 3's 2-epoch run; epochs of the others "
                f"not stated); {PAPER_DATA}",
        columns=_cols(
            ["WGAN (normal)", "Residual", "Mask", "Bin Mask", "DMFN (segment)"],
            {"l1": [0.0453, 0.0352, 0.0263, 0.0427, 0.0153],
             "l2": [0.0059, 0.0070, 0.0068, 0.0081, 0.0024],
             "psnr": [22.443, 21.652, 21.879, 20.967, 26.425],
             "ssim": [0.8202, 0.8823, 0.9016, 0.7990, 0.9193],
             "lpips": [0.1153, 0.0978, 0.0840, 0.1434, 0.0382]}),
        note="DMFN with segmentation is a state-of-the-art reference; its FFHQ training may overlap the test set.",
    ),
    "paper_table5": PaperTable(
        source="seed 000, Table 5 (unified StarGAN, 1 or 2 discriminators)",
        setting=f"StarGAN generator, 2 epochs (compared directly with Table 3); {PAPER_DATA}",
        columns=_cols(
            ["Hinge λ0.01 ndisc 1", "WGAN λ0.1 ndisc 1", "WGAN λ0.1 ndisc 2", "WGAN λ1 ndisc 2"],
            {"l1": [0.4416, 0.4049, 0.1558, 0.4005],
             "l2": [0.2682, 0.2232, 0.0403, 0.2204],
             "psnr": [5.7563, 6.5389, 13.981, 6.5921],
             "ssim": [0.0149, 0.0271, 0.3518, 0.3130],
             "lpips": [0.7879, 0.7005, 0.4361, 0.4854]}),
    ),
    "paper_table7": PaperTable(
        source="seed 000, Table 7 (discriminators, CycleGAN)",
        setting=f"CycleGAN, StarGAN generator, WGAN λadv 0.1 (\"Original\" is Table 3's 2-epoch run; epochs "
                f"of the others not stated); {PAPER_DATA}",
        columns=_cols(
            ["Original", "StarGAN", "PatchGAN", "RED"],
            {"l1": [0.0453, 0.0483, 0.0896, 0.0460],
             "l2": [0.0059, 0.0065, 0.0184, 0.0057],
             "psnr": [22.443, 21.993, 17.446, 22.507],
             "ssim": [0.8202, 0.8098, 0.6645, 0.8164],
             "lpips": [0.1153, 0.1304, 0.2480, 0.1330]}),
    ),
    "paper_table8": PaperTable(
        source="seed 000, Table 8 (generators)",
        setting=f"CycleGAN; the normal-approach column trained 50 epochs, epochs of the others not stated; "
                f"{PAPER_DATA}",
        columns=_cols(
            ["N / R / D", "M / R / D", "M / R / S", "M / R dil2 / S", "M / D / S", "M / D / D"],
            {"l1": [0.0320, 0.0215, 0.0218, 0.0184, 0.0253, 0.0192],
             "l2": [0.0037, 0.0049, 0.0045, 0.0035, 0.0064, 0.0039],
             "psnr": [24.418, 23.210, 23.741, 24.703, 22.173, 24.380],
             "ssim": [0.8468, 0.8947, 0.9062, 0.9054, 0.8974, 0.9127],
             "lpips": [0.0659, 0.0592, 0.0761, 0.0524, 0.0602, 0.0481]}),
        note="Columns: approach (N normal, M mask) / blocks (R ResBlock, D DMFB) / encoder-decoder "
             "(S StarGAN, D DMFN).",
    ),
    "paper_seed002": PaperTable(
        source="seed 002, Table 1 (U-Net autoencoder vs GAN, centre hole)",
        setting="CelebA aligned and cropped, centre hole of 30 % of the side filled white; U-Net at 128 px, "
                "GAN at 64 px with a shallower U-Net; 80/20 split, trained until convergence, Adam; PSNR on "
                "the validation split",
        columns=_cols(
            ["U-Net MSE ReLU", "U-Net MSE Swish", "U-Net MSE+DSSIM ReLU", "U-Net MSE+DSSIM Swish",
             "GAN adversarial ReLU", "GAN adversarial Swish"],
            {"psnr": [6.178364257571591, 6.0931783550568515, 6.177953085530094, 6.064955358215332,
                      6.152808576426424, 6.069299951023391]}),
        note="Their PSNR of about 6 dB for every model is a metric bug (images on the wrong scale, e.g. a "
             "[0, 255] image against a [0, 1] range): a blank grey image scores more than that. Ours is "
             "-10 log10(MSE) on [0, 1], equal to scikit-image's peak_signal_noise_ratio(data_range=1). Their "
             "Table 1 labels the U-Net loss \"L1\" where Section 2.2.1 says MSE: we run the text's MSE and "
             "(MSE + DSSIM) / 2. Their GAN is adversarial-only; our cGAN adds the same reconstruction loss "
             "as the U-Net (their Discussion's suggested fix), so the two differ only by the adversarial term.",
    ),
    "paper_seed001_segmentation": PaperTable(
        source="seed 001, Section 4.1 (U-Net mask segmentation, Dice loss)",
        setting="30,000 CelebA-HQ faces with MaskTheFace masks at 256 px, 5 epochs, learning rate 1e-3",
        columns=_cols(["U-Net, Dice loss"], {"pixel_acc": [0.99]}),
        note="The paper states only \"about 99 %\" pixel accuracy; it reports no IoU or Dice.",
    ),
    "paper_seed001_conv_type": PaperTable(
        source="seed 001, Sections 2.3 and 4.3.1 (imputed vs gated convolution)",
        setting="CelebA-HQ with MaskTheFace masks at 256 px, 7 epochs, learning rate 1e-3, LeakyReLU, LayerNorm",
        columns=(),
        note="The paper compares the two by pictures only (its Fig. 11) and reports no numbers. Its claim on size: "
             "imputed convolution adds about 2 % parameters where gated convolution doubles them; compare "
             "our parameters row (the generator's count includes both stages and the plain output convs).",
        not_run=(("StyleGAN2 with a pSp encoder (Section 4.3.2, Fig. 12)",
                  "it fine-tunes a pSp encoder and StyleGAN2 generator pretrained on FFHQ at 1024 px (with an "
                  "ArcFace identity loss): those weights cannot be downloaded here, and the project has no "
                  "StyleGAN2 family to load them into. No number stands in for it."),),
    ),
    "paper_seed004_table2": PaperTable(
        source="seed 004, Table 2 (FD-StackGAN: single-stage vs two-stage network)",
        setting=SEED004_SETTING,
        columns=_cols(["Single-stage (G1 + D1)", "Two-stage (G1 + D1 + G2 + D2)"],
                      {"ssim": [0.963, 0.981], "psnr": [30.128, 32.803], "mse255": [68.860, 34.145]}),
        note="Their NIQE (4.3315) and BRISQUE (40.2936) are the same for both rows. "
             "Their single-stage row equals their Table 3's L1 + SSIM + perceptual row digit for digit.",
    ),
    "paper_seed004_table3": PaperTable(
        source="seed 004, Table 3 (FD-StackGAN loss ablation, Base-Net only)",
        setting=SEED004_SETTING,
        columns=_cols(["L1", "L1 + SSIM", "L1 + SSIM + perceptual"],
                      {"ssim": [0.984, 0.989, 0.963], "psnr": [32.346, 32.263, 30.128],
                       "mse255": [43.238, 45.501, 68.860]}),
        note="NIQE 4.7284 / 4.6846 / 4.3315 and BRISQUE 41.9486 / 42.1193 / 40.2936 (not measured here: their "
             "parameters cannot be fetched). The issue adds a fourth cell, + adversarial.",
    ),
    "paper_seed003_table41": PaperTable(
        source="seed 003, Table 4.1 (FID of the re-trained framework and two variants; lower is better)",
        setting=("CelebAMask-HQ, 28,000 train images, 256 px, batch 12, 55 epochs, Adam 2e-4, 3 x V100 for 35 h; "
                 "FID (pytorch-fid 0.2.1), most likely of the test faces against their self-reconstructions "
                 "(inferred from the thesis's scripts)"),
        columns=_cols(["Original Paper [1]", "Changing the Eye mask", "Multi Target Mask Encoder"],
                      {"fid": [26.54, 26.04, 28.48]}),
        note=("Its columns are our eye_crop=unmasked, eye_crop=masked and generator.mask_encoder=per_component. "
              "The VAE local embedding (4.5.3) has no FID: its training \"stops\" (KL to zero within 2000 "
              "iterations, Fig. 4.18). FID and our reconstruction, parsing and colour metrics measure different "
              "things: the thesis's ordering (eye mask best, then original, then per-component encoders) can be "
              "set beside ours in direction only, never in value."),
    ),
    "paper_seed003_unmask": PaperTable(
        source="none: no published number exists for this use (seed 003's editor applied to face-mask removal)",
        setting="neither Gu et al. (CVPR 2019) nor the thesis removes masks with the editor; this study's question "
                "is ours",
        columns=(),
        note=("Why the pixel metrics punish a plausible mouth: the mouth under a mask is unknown to every method, "
              "and this one draws a whole mouth (the completed map's shape, the mean training mouth's "
              "appearance) rather than the blurred average an L1- or L2-trained inpainter converges to. A sharp "
              "mouth that is not this person's, or sits a pixel away, costs more L1 and PSNR than a blur: lower "
              "pixel scores here do not mean a less plausible face. Semantic fidelity (parse_hole_miou: the "
              "held-out parser's labels of the restoration against the true clean map inside the mask) asks "
              "instead whether the right parts are in the right places."),
    ),
}


def paper_table(key: str | None, where: str = "studies.<study>.reference") -> PaperTable | None:
    """The published table named ``key`` (None -> None); an unknown key raises ConfigError naming ``where``."""
    if key is None:
        return None
    try:
        return PAPER[key]
    except KeyError:
        raise ConfigError(f"{where}: unknown paper table {key!r} (choose from {', '.join(sorted(PAPER))})") from None
