"""Facial regions of interest from face geometry and an editable ROI template.

Regions are polygons in the *inter-ocular frame* (origin between the eyes, x along the eye line towards the
subject's left eye, y downwards, unit = inter-ocular distance), so they follow the face's position, size
and roll. The built-in template ships with the package (``roi_template.yaml``); a study may save its own
as ``studies/<study-id>/roi_template.yaml``, which then overrides the built-in one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import yaml

from toolkit.errors import ConfigurationError
from toolkit.imaging.faces import FaceGeometry
from toolkit.study.endpoints import REGIONS as STUDY_REGIONS

__all__ = [
    "REGION_NAMES",
    "RoiTemplate",
    "load_roi_template",
    "study_roi_template",
    "save_roi_template",
    "region_polygons",
    "region_masks",
    "polygon_masks",
]

#: the regions reported for every photo, in report order
REGION_NAMES: tuple[str, ...] = tuple(STUDY_REGIONS)

_TEMPLATE_FILE = "roi_template.yaml"


@dataclass(frozen=True)
class RoiTemplate:
    """Region polygons in the inter-ocular frame.

    Attributes
    ----------
    regions : dict of str to (K, 2) ndarray
        Reported regions.
    reference_regions : dict of str to (K, 2) ndarray
        Polygons used only as references (e.g. ``nose_bridge``).
    lift_reference : tuple of str
        Names (from either mapping) whose displacement is subtracted to measure lift.
    source : str
        Where the template came from (file path or ``built-in``).
    """

    regions: dict[str, np.ndarray]
    reference_regions: dict[str, np.ndarray] = field(default_factory=dict)
    lift_reference: tuple[str, ...] = ("forehead", "glabella")
    source: str = "built-in"

    def polygon(self, name: str) -> np.ndarray:
        """The polygon of a reported or reference region."""
        if name in self.regions:
            return self.regions[name]
        if name in self.reference_regions:
            return self.reference_regions[name]
        raise ConfigurationError(
            f"ROI template {self.source}: no region named {name!r}; known: "
            + ", ".join([*self.regions, *self.reference_regions])
        )


def _parse_polygons(raw: object, where: str, key: str) -> dict[str, np.ndarray]:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: '{key}' must be a mapping of region name to [[x, y], ...] points")
    out: dict[str, np.ndarray] = {}
    errors: list[str] = []
    for name, pts in raw.items():
        try:
            arr = np.asarray(pts, dtype=float)
        except (TypeError, ValueError):
            errors.append(f"{key}.{name}: points must be numbers, got {pts!r}")
            continue
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
            errors.append(f"{key}.{name}: needs at least 3 [x, y] points, got shape {arr.shape}")
        elif not np.all(np.isfinite(arr)) or np.abs(arr).max() > 5:
            errors.append(f"{key}.{name}: coordinates must be finite and within ±5 inter-ocular distances")
        else:
            out[str(name)] = arr
    if errors:
        raise ConfigurationError(f"{where}: invalid ROI template", details=errors)
    return out


def _from_mapping(data: object, where: str) -> RoiTemplate:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: an ROI template must be a YAML mapping with a 'regions' key")
    unknown = set(data) - {"version", "regions", "reference_regions", "lift_reference"}
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown keys {sorted(unknown)}; accepted: version, regions, reference_regions, "
            "lift_reference"
        )
    if data.get("version", 1) != 1:
        raise ConfigurationError(f"{where}: version {data.get('version')!r} not supported (accepted: 1)")
    regions = _parse_polygons(data.get("regions"), where, "regions")
    missing = [n for n in REGION_NAMES if n not in regions]
    if missing:
        raise ConfigurationError(f"{where}: regions missing from the template: {', '.join(missing)}")
    refs = _parse_polygons(data.get("reference_regions") or {}, where, "reference_regions")
    lift_ref = data.get("lift_reference", ["forehead", "glabella"])
    if not isinstance(lift_ref, list) or not lift_ref or not all(isinstance(x, str) for x in lift_ref):
        raise ConfigurationError(f"{where}: 'lift_reference' must be a non-empty list of region names")
    bad = [x for x in lift_ref if x not in regions and x not in refs]
    if bad:
        raise ConfigurationError(f"{where}: lift_reference names unknown regions: {', '.join(bad)}")
    return RoiTemplate(regions=regions, reference_regions=refs, lift_reference=tuple(lift_ref), source=where)


_BUILTIN_MAPPING: dict | None = None


def load_roi_template(path: str | Path | None = None) -> RoiTemplate:
    """Load an ROI template YAML file, or the built-in template when ``path`` is None.

    Raises
    ------
    ConfigurationError
        The file is missing, not YAML, or a region is malformed (the message names the region).
    """
    if path is None:
        # parsed once per process (parsing it took ≈40 ms of every analysis); each caller still
        # gets its own RoiTemplate, built from a copy, so editing one cannot change the built-in template
        global _BUILTIN_MAPPING
        if _BUILTIN_MAPPING is None:
            text = resources.files("toolkit.imaging").joinpath(_TEMPLATE_FILE).read_text(encoding="utf-8")
            _BUILTIN_MAPPING = yaml.safe_load(text)
        return _from_mapping(copy.deepcopy(_BUILTIN_MAPPING), "built-in ROI template")
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"ROI template not found: {path}")
    text = path.read_text(encoding="utf-8")
    where = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where}: not valid YAML ({exc})") from exc
    return _from_mapping(data, where)


def study_roi_template(study_dir: str | Path) -> RoiTemplate:
    """The template of a study: ``<study_dir>/roi_template.yaml`` if present, else the built-in one."""
    candidate = Path(study_dir) / _TEMPLATE_FILE
    return load_roi_template(candidate if candidate.is_file() else None)


def save_roi_template(template: RoiTemplate, path: str | Path) -> Path:
    """Write ``template`` as YAML to ``path`` (e.g. ``studies/<id>/roi_template.yaml``) and return it."""
    path = Path(path)
    doc = {
        "version": 1,
        "lift_reference": list(template.lift_reference),
        "reference_regions": {k: np.round(v, 4).tolist() for k, v in template.reference_regions.items()},
        "regions": {k: np.round(v, 4).tolist() for k, v in template.regions.items()},
    }
    header = (
        "# ROI template: polygons in the inter-ocular frame (origin between the eyes, x towards the\n"
        "# subject's left eye, y down, unit = inter-ocular distance). Suffix _l/_r = subject's side.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None), encoding="utf-8")
    tmp.replace(path)
    return path


def _frame(geometry: FaceGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    er = np.asarray(geometry.eye_right, dtype=float)
    el = np.asarray(geometry.eye_left, dtype=float)
    ex = el - er
    ey = np.array([-ex[1], ex[0]])  # x rotated +90° in image coordinates (y down) points down the face
    return (er + el) / 2, ex, ey


def region_polygons(
    geometry: FaceGeometry, template: RoiTemplate, names: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """Region polygons in image pixels, as (K, 2) float arrays of (x, y)."""
    origin, ex, ey = _frame(geometry)
    wanted = names if names is not None else tuple(template.regions)
    return {n: origin + np.outer(template.polygon(n)[:, 0], ex) + np.outer(template.polygon(n)[:, 1], ey)
            for n in wanted}


def region_masks(
    shape: tuple[int, ...],
    geometry: FaceGeometry,
    template: RoiTemplate,
    names: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean masks of the regions, clipped to an image of ``shape`` (rows, cols[, ...])."""
    return polygon_masks(shape, region_polygons(geometry, template, names))


def polygon_masks(shape: tuple[int, ...], polygons: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Boolean masks of named (K, 2) pixel polygons (sub-pixel vertices), clipped to ``shape``."""
    out = {}
    for name, poly in polygons.items():
        mask = np.zeros(shape[:2], dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(poly) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        out[name] = mask.astype(bool)
    return out
