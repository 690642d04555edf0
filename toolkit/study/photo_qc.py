"""The study's photo QC policy: which of the photo analysis's warnings fail a photo instead of flagging it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["PHOTO_QC_FLAGS", "PhotoQC"]

#: the warnings the photo analysis raises (``QCReport.flag_codes``), each of which a study may make a failure
PHOTO_QC_FLAGS = (
    "smile",
    "spectacles",
    "region_clipping",
    "channel_clipped",
    "skin_covered",
    "jpeg_quality",
    "compression_change",
    "sharpness_change",
    "skin_texture_change",
    "resolution_change",
    "new_spots",
)


class PhotoQC(BaseModel):
    """Photo QC policy of a study (the ``photo_qc`` section of ``study.yaml``).

    A flag listed in ``fail_on_flags`` fails the photo (its code and message go to the failure reasons, and its
    metrics are not used) instead of being a warning on a photo that passes: a protocol that forbids
    spectacles, or wants every photo whose faint lines were read from fewer colour channels than at baseline
    retaken, says so here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: flag codes (of :data:`PHOTO_QC_FLAGS`) that fail a photo
    fail_on_flags: tuple[str, ...] = ()

    @field_validator("fail_on_flags")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if code not in PHOTO_QC_FLAGS]
        if unknown:
            raise ValueError(f"not a photo QC flag: {', '.join(map(repr, unknown))}; the flags are "
                             f"{', '.join(PHOTO_QC_FLAGS)}")
        if len(set(value)) != len(value):
            raise ValueError("a flag is listed twice")
        return value
