"""Photo files: EXIF orientation, read-only raw storage with checksums, ROI templates, calibration."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from toolkit.errors import ConfigurationError, DataError
from toolkit.imaging import load_photo, load_roi_template, save_roi_template, study_roi_template
from toolkit.imaging.calibration import ColourChart, chart_correction, gray_world
from toolkit.imaging.raw_store import store_raw_photo
from toolkit.imaging.regions import REGION_NAMES, region_masks
from toolkit.imaging.synthetic import portrait


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_exif_orientation_is_honoured(tmp_path: Path, suffix: str) -> None:
    img = np.zeros((60, 100, 3), np.uint8)
    img[:, :50] = (250, 0, 0)  # red on the stored left half
    path = tmp_path / f"rotated{suffix}"
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # stored rotated: display rotates 90° clockwise
    pil.save(path, exif=exif)
    out, header = load_photo(path)
    assert header.orientation == 6
    assert out.shape == (100, 60, 3)
    assert out[5, 30, 0] > 200 and out[95, 30, 0] < 50  # the left half is now on top


def test_raw_store_is_read_only_checksummed_and_idempotent(tmp_path: Path, data_root: Path) -> None:
    src = tmp_path / "IMG 0001.jpg"
    cv2.imwrite(str(src), cv2.cvtColor(portrait("astronaut"), cv2.COLOR_RGB2BGR))
    saved = store_raw_photo(src, study_id="epmc-demo", subject_id="S-001", visit_id="BASELINE", meta={"view": "frontal"})
    assert saved.path.parent == data_root / "epmc-demo" / "photos" / "raw" / "S-001" / "BASELINE"
    assert saved.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert saved.path.read_bytes() == src.read_bytes()
    assert stat.S_IMODE(os.stat(saved.path).st_mode) == 0o444
    sidecar = saved.path.with_name(saved.path.name + ".json")
    assert stat.S_IMODE(os.stat(sidecar).st_mode) == 0o444
    assert saved.meta["width_px"] == 512 and saved.meta["view"] == "frontal"
    again = store_raw_photo(src, study_id="epmc-demo", subject_id="S-001", visit_id="BASELINE")
    assert again.already_present and again.path == saved.path
    with pytest.raises(DataError, match="cannot name a folder"):
        store_raw_photo(src, study_id="epmc-demo", subject_id="../x", visit_id="BASELINE")
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a")
    with pytest.raises(DataError, match="accepted"):
        store_raw_photo(gif, study_id="epmc-demo", subject_id="S-001", visit_id="V")


def test_roi_template_round_trip_and_study_override(tmp_path: Path) -> None:
    builtin = load_roi_template()
    assert tuple(builtin.regions) == REGION_NAMES
    # a study moves the forehead's lower edge down to the brows themselves
    edited = type(builtin)(regions={**builtin.regions, "forehead": [*builtin.regions["forehead"][:9], 300, 293, 334,
                                                                    296, 336, 107, 66, 105, 63, 70]},
                           reference_regions=builtin.reference_regions, lift_reference=builtin.lift_reference,
                           skin_sample=builtin.skin_sample, min_skin_fraction=0.5)
    save_roi_template(edited, tmp_path / "roi_template.yaml")
    loaded = study_roi_template(tmp_path)
    assert loaded.regions["forehead"] == edited.regions["forehead"]
    assert loaded.regions["glabella"] == builtin.regions["glabella"]  # [a, b, t] corners survive the round trip
    assert loaded.min_skin_fraction == 0.5 and loaded.lift_reference == builtin.lift_reference
    assert study_roi_template(tmp_path / "elsewhere").source == "built-in ROI template"


@pytest.mark.parametrize(("corner", "message"), [
    ("oops", "neither a vertex number"),
    (468, "out of range 0..467"),
    ([33, 263, 5.0], "fraction 5.0 must be a number in -1..2"),
    ([33, "x", 0.5], "neither a vertex number"),
])
def test_bad_roi_template_names_the_region_and_the_corner(tmp_path: Path, corner, message: str) -> None:
    import yaml

    bad = tmp_path / "roi_template.yaml"
    save_roi_template(load_roi_template(), bad)
    doc = yaml.safe_load(bad.read_text(encoding="utf-8"))
    doc["regions"]["glabella"][2] = corner
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_roi_template(bad)
    assert "regions.glabella[2]" in str(info.value) and message in str(info.value)


def test_old_inter_ocular_templates_are_refused_with_the_way_forward(tmp_path: Path) -> None:
    old = tmp_path / "roi_template.yaml"
    old.write_text("version: 1\nregions:\n  forehead: [[-0.8, -1.1], [0.8, -1.1], [0.8, -0.5]]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="version 1 templates .* no longer used.*save_roi_template"):
        load_roi_template(old)


def test_regions_follow_the_face_and_sides_are_the_subjects() -> None:
    from toolkit.imaging.faces import FaceMeshBackend

    img = portrait("grace_hopper")
    face = FaceMeshBackend().detect(img).faces[0]
    masks = region_masks(img.shape, face.mesh, load_roi_template())
    eye_r, eye_l = face.eye_right, face.eye_left
    assert eye_r[0] < eye_l[0]  # the subject's right eye is on the image's left
    assert np.nonzero(masks["crows_feet_l"])[1].mean() > eye_l[0]  # subject's left = image right
    assert np.nonzero(masks["crows_feet_r"])[1].mean() < eye_r[0]
    assert np.nonzero(masks["forehead"])[0].mean() < eye_r[1] < np.nonzero(masks["perioral"])[0].mean()
    # the same face, shifted and enlarged: the regions move and grow with it
    big = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    face2 = FaceMeshBackend().detect(big).faces[0]
    masks2 = region_masks(big.shape, face2.mesh, load_roi_template())
    for name in ("nasolabial_l", "cheek_r", "jawline_l"):
        assert masks2[name].sum() == pytest.approx(4 * masks[name].sum(), rel=0.1)


def test_gray_world_equalises_channel_means() -> None:
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(128, 20, (50, 50, 3)) * np.array([1.2, 1.0, 0.7]), 0, 255).astype(np.uint8)
    means = gray_world(img).reshape(-1, 3).mean(axis=0)
    assert means.max() - means.min() < 1.5


def test_chart_correction_recovers_a_known_colour_cast() -> None:
    rng = np.random.default_rng(2)
    reference = rng.uniform(30, 220, (8, 3))
    cast = np.array([[0.9, 0.05, 0.0], [0.02, 1.1, 0.03], [0.0, 0.1, 0.8]])
    img = np.zeros((40, 320, 3), np.uint8)
    boxes = []
    for i, ref in enumerate(reference):
        img[:, i * 40 : (i + 1) * 40] = np.clip(ref @ cast.T + 5, 0, 255).astype(np.uint8)
        boxes.append((i * 40 + 5, 5, 30, 30))
    corrected, rms = chart_correction(img, ColourChart(tuple(boxes), reference))
    assert rms < 1.5
    assert np.abs(corrected[20, 20].astype(float) - reference[0]).max() < 3
    with pytest.raises(ConfigurationError, match="at least 4 patches"):
        ColourChart(tuple(boxes[:2]), reference[:2])
