"""The face-parsing labels every parsing map of the project uses (seed 003's Table 3.1): index = label."""

PARSING_LABELS: tuple[str, ...] = (
    "background", "skin", "left_brow", "right_brow", "left_eye", "right_eye",
    "nose", "upper_lip", "inner_mouth", "lower_lip", "hair",
)
