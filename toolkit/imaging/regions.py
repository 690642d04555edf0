"""Facial regions of interest anchored on the 468-point face mesh, from an editable YAML template.

A region is a polygon whose corners are mesh vertices, or points on the segment between two vertices
(``[a, b, t]`` is vertex ``a`` moved the fraction ``t`` of the way towards vertex ``b``; ``t`` may lie outside
0..1 to extend past ``b``). The regions therefore follow the face's own anatomy: a high forehead gets a tall
forehead region, a smile moves the perioral region with the mouth. Each region is then intersected with the
skin (:mod:`toolkit.imaging.skin`), so hair, headwear, eyebrows or spectacle frames inside a polygon are never
measured.

The built-in template ships with the package (``roi_template.yaml``); a study may keep its own as
``studies/<study-id>/roi_template.yaml``, which then overrides the built-in one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from toolkit.errors import ConfigurationError
from toolkit.imaging.facemesh import MESH_POINTS
from toolkit.imaging.skin import fill_polygon
from toolkit.study.endpoints import REGIONS as STUDY_REGIONS

__all__ = [
    "REGION_NAMES",
    "VertexRef",
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
_VERSION = 2
_KEYS = {"version", "landmarks", "regions", "reference_regions", "lift_reference", "skin_sample",
         "min_skin_fraction"}

#: a polygon corner: a mesh vertex, or (a, b, t) = vertex a moved a fraction t towards vertex b
VertexRef = int | tuple[int, int, float]


@dataclass(frozen=True)
class RoiTemplate:
    """Region polygons on face-mesh vertices.

    Attributes
    ----------
    regions : dict of str to list of VertexRef
        Reported regions.
    reference_regions : dict of str to list of VertexRef
        Polygons used only as references (``nose_bridge``) or to learn the skin (cheek samples).
    lift_reference : tuple of str
        Regions whose displacement is the stable reference for lift.
    skin_sample : tuple of str
        Regions whose pixels teach the skin model what this face's skin looks like.
    min_skin_fraction : float
        A region with less of its polygon on measurable skin is not measured (NaN, with a QC note).
    source : str
        Where the template came from (file path or ``built-in``).
    """

    regions: dict[str, list[VertexRef]]
    reference_regions: dict[str, list[VertexRef]] = field(default_factory=dict)
    lift_reference: tuple[str, ...] = ("forehead", "glabella", "nose_bridge")
    skin_sample: tuple[str, ...] = ("cheek_r", "cheek_l", "nose_bridge")
    min_skin_fraction: float = 0.35
    source: str = "built-in"

    def polygon(self, name: str) -> list[VertexRef]:
        """The corners of a reported or reference region."""
        if name in self.regions:
            return self.regions[name]
        if name in self.reference_regions:
            return self.reference_regions[name]
        raise ConfigurationError(
            f"ROI template {self.source}: no region named {name!r}; known: "
            + ", ".join([*self.regions, *self.reference_regions])
        )

    @property
    def all_names(self) -> tuple[str, ...]:
        """Reported and reference region names."""
        return (*self.regions, *self.reference_regions)


def _parse_ref(raw: object, where: str) -> VertexRef:
    if isinstance(raw, bool):
        raise ValueError(f"{where}: {raw!r} is not a vertex")
    if isinstance(raw, int):
        if not 0 <= raw < MESH_POINTS:
            raise ValueError(f"{where}: vertex {raw} out of range 0..{MESH_POINTS - 1}")
        return raw
    if isinstance(raw, list | tuple) and len(raw) == 3:
        a, b, t = raw
        _parse_ref(a, where)
        _parse_ref(b, where)
        if isinstance(t, bool) or not isinstance(t, int | float) or not -1.0 <= float(t) <= 2.0:
            raise ValueError(f"{where}: fraction {t!r} must be a number in -1..2")
        return (int(a), int(b), float(t))
    raise ValueError(f"{where}: {raw!r} is neither a vertex number (0..{MESH_POINTS - 1}) nor [a, b, t]")


def _parse_polygons(raw: object, where: str, key: str) -> dict[str, list[VertexRef]]:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: '{key}' must be a mapping of region name to a list of mesh vertices")
    out: dict[str, list[VertexRef]] = {}
    errors: list[str] = []
    for name, pts in raw.items():
        if not isinstance(pts, list) or len(pts) < 3:
            errors.append(f"{key}.{name}: needs a list of at least 3 corners (vertex numbers or [a, b, t])")
            continue
        try:
            out[str(name)] = [_parse_ref(p, f"{key}.{name}[{i}]") for i, p in enumerate(pts)]
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigurationError(f"{where}: invalid ROI template", details=errors)
    return out


def _names(data: dict, key: str, default: list[str], where: str, known: set[str]) -> tuple[str, ...]:
    value = data.get(key, default)
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise ConfigurationError(f"{where}: '{key}' must be a non-empty list of region names")
    bad = [x for x in value if x not in known]
    if bad:
        raise ConfigurationError(f"{where}: {key} names unknown regions: {', '.join(bad)}")
    return tuple(value)


def _from_mapping(data: object, where: str) -> RoiTemplate:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: an ROI template must be a YAML mapping with a 'regions' key")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}; accepted: {', '.join(sorted(_KEYS))}")
    version = data.get("version")
    if version == 1:
        raise ConfigurationError(
            f"{where}: version 1 templates (boxes in the inter-ocular frame) are no longer used: regions are "
            "defined on face-mesh vertices (version 2); start from the built-in template "
            "(toolkit.imaging.save_roi_template(toolkit.imaging.load_roi_template(), path))"
        )
    if version != _VERSION:
        raise ConfigurationError(f"{where}: version {version!r} not supported (accepted: {_VERSION})")
    if data.get("landmarks", "facemesh-468") != "facemesh-468":
        raise ConfigurationError(f"{where}: landmarks {data.get('landmarks')!r} not supported (accepted: facemesh-468)")
    regions = _parse_polygons(data.get("regions"), where, "regions")
    missing = [n for n in REGION_NAMES if n not in regions]
    if missing:
        raise ConfigurationError(f"{where}: regions missing from the template: {', '.join(missing)}")
    refs = _parse_polygons(data.get("reference_regions") or {}, where, "reference_regions")
    known = set(regions) | set(refs)
    lift_ref = _names(data, "lift_reference", ["forehead", "glabella", "nose_bridge"], where, known)
    sample = _names(data, "skin_sample", ["cheek_r", "cheek_l", "nose_bridge"], where, known)
    frac = data.get("min_skin_fraction", 0.35)
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0.0 <= float(frac) <= 1.0:
        raise ConfigurationError(f"{where}: min_skin_fraction must be a number in 0..1, got {frac!r}")
    return RoiTemplate(regions=regions, reference_regions=refs, lift_reference=lift_ref, skin_sample=sample,
                       min_skin_fraction=float(frac), source=where)


_BUILTIN_MAPPING: dict | None = None


def load_roi_template(path: str | Path | None = None) -> RoiTemplate:
    """Load an ROI template YAML file, or the built-in template when ``path`` is None.

    Raises
    ------
    ConfigurationError
        The file is missing, not YAML, or a region is malformed (the message names the region).
    """
    if path is None:
        # parsed once per process; each caller gets its own RoiTemplate, built from a copy
        global _BUILTIN_MAPPING
        if _BUILTIN_MAPPING is None:
            text = resources.files("toolkit.imaging").joinpath(_TEMPLATE_FILE).read_text(encoding="utf-8")
            _BUILTIN_MAPPING = yaml.safe_load(text)
        return _from_mapping(copy.deepcopy(_BUILTIN_MAPPING), "built-in ROI template")
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"ROI template not found: {path}")
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{where}: not valid YAML ({exc})") from exc
    return _from_mapping(data, where)


def study_roi_template(study_dir: str | Path) -> RoiTemplate:
    """The template of a study: ``<study_dir>/roi_template.yaml`` if present, else the built-in one."""
    candidate = Path(study_dir) / _TEMPLATE_FILE
    return load_roi_template(candidate if candidate.is_file() else None)


def _dump_refs(refs: list[VertexRef]) -> list:
    return [list(r) if isinstance(r, tuple) else int(r) for r in refs]


def save_roi_template(template: RoiTemplate, path: str | Path) -> Path:
    """Write ``template`` as YAML to ``path`` (e.g. ``studies/<id>/roi_template.yaml``) and return it."""
    path = Path(path)
    doc = {
        "version": _VERSION,
        "landmarks": "facemesh-468",
        "lift_reference": list(template.lift_reference),
        "skin_sample": list(template.skin_sample),
        "min_skin_fraction": template.min_skin_fraction,
        "reference_regions": {k: _dump_refs(v) for k, v in template.reference_regions.items()},
        "regions": {k: _dump_refs(v) for k, v in template.regions.items()},
    }
    header = (
        "# ROI template: polygons whose corners are face-mesh vertices (0..467) or [a, b, t] = vertex a moved\n"
        "# the fraction t towards vertex b. Suffix _l/_r = the subject's side. Each region is measured only on\n"
        "# skin; a region with less than min_skin_fraction of measurable skin is not measured.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None), encoding="utf-8")
    tmp.replace(path)
    return path


def _point(mesh_xy: np.ndarray, ref: VertexRef) -> np.ndarray:
    if isinstance(ref, tuple):
        a, b, t = ref
        return mesh_xy[a] + t * (mesh_xy[b] - mesh_xy[a])
    return mesh_xy[ref]


def region_polygons(mesh_xy: np.ndarray, template: RoiTemplate,
                    names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Region polygons in the pixels of ``mesh_xy`` (468, 2), as (K, 2) float arrays of (x, y)."""
    xy = np.asarray(mesh_xy, dtype=np.float64)[:, :2]
    wanted = names if names is not None else tuple(template.regions)
    return {n: np.array([_point(xy, r) for r in template.polygon(n)]) for n in wanted}


def polygon_masks(shape: tuple[int, ...], polygons: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Boolean masks of named (K, 2) pixel polygons (sub-pixel vertices), clipped to ``shape``."""
    return {name: fill_polygon(shape, poly) for name, poly in polygons.items()}


def region_masks(shape: tuple[int, ...], mesh_xy: np.ndarray, template: RoiTemplate,
                 names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks of the regions' polygons (before the skin is applied), clipped to ``shape``."""
    return polygon_masks(shape, region_polygons(mesh_xy, template, names))
