"""Before/after photo panels with wrinkle-mask and displacement-field overlays."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toolkit.errors import DataError
from toolkit.report._columns import require_columns
from toolkit.report.style import finish_figure

__all__ = ["fig_photo_panel", "load_image"]

#: wrinkle overlay colour: light yellow stays bright in grayscale over skin tones
_MASK_RGB = np.array([240, 228, 66], dtype=float)


def load_image(image: object, *, what: str = "photo") -> np.ndarray:
    """Return an image as an (H, W, 3) uint8 RGB array.

    Parameters
    ----------
    image : str, Path or ndarray
        A PNG/JPEG/TIFF file, or an array: (H, W) gray or (H, W, 3|4) colour, uint8 or float in [0, 1].
    what : str
        Named in error messages.

    Raises
    ------
    DataError
        The file is missing or not an image, or the array has an unusable shape or dtype.
    """
    if isinstance(image, str | Path):
        from PIL import Image, UnidentifiedImageError

        path = Path(image)
        if not path.is_file():
            raise DataError(f"{what}: image file {path} does not exist")
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{what}: {path} is not a readable image (PNG, JPEG or TIFF): {exc}") from None
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 2:
        raise DataError(f"{what}: image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating) and np.nanmin(arr) >= 0.0 and np.nanmax(arr) <= 1.0:
        return np.round(np.nan_to_num(arr) * 255).astype(np.uint8)
    raise DataError(f"{what}: image array must be uint8 or float in [0, 1]; got {arr.dtype}")


def _load_mask(mask: object, shape: tuple[int, int], what: str) -> np.ndarray:
    arr = load_image(mask, what=what)[:, :, 0] > 127 if isinstance(mask, str | Path) else np.asarray(mask) > 0
    if arr.ndim == 3:
        arr = arr.any(axis=2)
    if arr.shape != shape:
        raise DataError(f"{what}: mask shape {arr.shape} differs from its photo's {shape}")
    return arr


def _load_flow(flow: object, shape: tuple[int, int], what: str) -> np.ndarray:
    if isinstance(flow, str | Path):
        path = Path(flow)
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{what}: displacement file {path} is not a readable .npy array: {exc}") from None
    else:
        arr = np.asarray(flow, dtype=float)
    if arr.shape != (*shape, 2):
        raise DataError(f"{what}: displacement must have shape (H, W, 2) = {(*shape, 2)} (dx, dy in pixels); "
                        f"got {arr.shape}")
    return arr.astype(float)


def _downsample(arr: np.ndarray, factor: int) -> np.ndarray:
    return arr[::factor, ::factor] if factor > 1 else arr


def _jpeg_uri(rgb: np.ndarray) -> str:
    """A photograph as a JPEG data URI (quality 90: overlay lines stay sharp; a panel stays a few 100 kB)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90, subsampling=0, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def fig_photo_panel(
    data: pd.DataFrame,
    *,
    image: str = "image",
    label: str = "label",
    wrinkle_mask: str | None = "wrinkle_mask",
    displacement: str | None = "displacement",
    arrow_step_px: int | None = None,
    arrow_scale: float = 1.0,
    mm_per_px: float | None = None,
    max_side_px: int = 600,
    number: str = "14.2.7",
    title: str = "Photographs before and after treatment",
    source: str = "photos/derived",
    footnotes: Sequence[str] = (),
) -> go.Figure:
    """Side-by-side photos (e.g. baseline and follow-up) with wrinkle and displacement overlays.

    Parameters
    ----------
    data : DataFrame
        One row per panel, left to right: ``image`` (file path or array), ``label`` (``"Baseline"``), optional
        ``wrinkle_mask`` (path or boolean array of the photo's size; drawn in light yellow) and optional
        ``displacement`` ((H, W, 2) array or ``.npy`` path of dx, dy in pixels of the registered follow-up vs
        baseline; drawn as arrows). Missing (None/NaN) overlay cells are skipped.
    image, label, wrinkle_mask, displacement : str
        Column names; overlay columns may be absent.
    arrow_step_px : int, optional
        Grid spacing of displacement arrows in original pixels (default: 1/16 of the shorter side).
    arrow_scale : float
        Arrow length multiplier (stated in the footnote when not 1).
    mm_per_px : float, optional
        Scale of the photos; adds a 10 mm scale bar.
    max_side_px : int
        Photos are shown downsampled to at most this many pixels on the longer side (keeps HTML small).
    number, title, source, footnotes
        Labels.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``go.Image`` per panel plus one arrow trace per panel with a displacement field.
    """
    what = f"Figure {number} (photo panel)"
    require_columns(data, [image, label], what=what)
    if len(data) > 6:
        raise DataError(f"{what}: at most 6 panels per figure, got {len(data)}")
    if arrow_scale <= 0 or max_side_px < 16:
        raise DataError(f"{what}: arrow_scale must be > 0 and max_side_px >= 16")
    n = len(data)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[str(x) for x in data[label]], horizontal_spacing=0.02)
    has_flow = False
    for col, (_, row) in enumerate(data.iterrows(), start=1):
        ref = f"{what} panel {row[label]!r}"
        rgb = load_image(row[image], what=ref)
        h, w = rgb.shape[:2]
        shown = rgb.astype(float)
        mask_cell = row.get(wrinkle_mask) if wrinkle_mask else None
        if mask_cell is not None and not (isinstance(mask_cell, float) and np.isnan(mask_cell)):
            mask = _load_mask(mask_cell, (h, w), ref)
            shown[mask] = 0.25 * shown[mask] + 0.75 * _MASK_RGB
        factor = max(1, int(np.ceil(max(h, w) / max_side_px)))
        small = _downsample(shown.round().astype(np.uint8), factor)
        fig.add_trace(go.Image(source=_jpeg_uri(small), dx=factor, dy=factor, name=str(row[label]),
                               hoverinfo="skip"), 1, col)
        flow_cell = row.get(displacement) if displacement else None
        if flow_cell is not None and not (isinstance(flow_cell, float) and np.isnan(flow_cell)):
            flow = _load_flow(flow_cell, (h, w), ref)
            has_flow = True
            step = arrow_step_px or max(4, min(h, w) // 16)
            ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
            u = flow[ys, xs, 0] * arrow_scale
            v = flow[ys, xs, 1] * arrow_scale
            seg_x = np.column_stack([xs.ravel(), (xs + u).ravel(), np.full(xs.size, np.nan)]).ravel()
            seg_y = np.column_stack([ys.ravel(), (ys + v).ravel(), np.full(ys.size, np.nan)]).ravel()
            fig.add_trace(go.Scatter(x=seg_x, y=seg_y, mode="lines", name=f"displacement ({row[label]})",
                                     line={"color": "#56B4E9", "width": 1.5}, showlegend=False,
                                     hoverinfo="skip"), 1, col)
            fig.add_trace(go.Scatter(x=(xs + u).ravel(), y=(ys + v).ravel(), mode="markers", showlegend=False,
                                     marker={"symbol": "circle", "size": 3, "color": "#56B4E9"},
                                     hoverinfo="skip", name=f"arrow heads ({row[label]})"), 1, col)
        if mm_per_px:
            bar_px = 10.0 / float(mm_per_px)
            x0, y0 = 0.05 * w, 0.95 * h
            fig.add_shape(type="line", x0=x0, x1=x0 + bar_px, y0=y0, y1=y0, line={"color": "#FFFFFF", "width": 4},
                          row=1, col=col)
            fig.add_annotation(x=x0 + bar_px / 2, y=y0, text="10 mm", showarrow=False, yshift=12,
                               font={"color": "#FFFFFF"}, row=1, col=col)
        fig.update_xaxes(visible=False, range=[0, w], row=1, col=col)
        fig.update_yaxes(visible=False, range=[h, 0], scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    notes = []
    if wrinkle_mask and wrinkle_mask in data.columns:
        notes.append("Light yellow: detected wrinkles.")
    if has_flow:
        scale = "" if arrow_scale == 1 else f", lengths ×{arrow_scale:g}"
        notes.append(f"Blue lines: displacement of follow-up vs baseline (start to dot{scale}).")
    return finish_figure(fig, kind="photo_panel", number=number, title=title, source=source,
                         footnotes=[*notes, *footnotes], height_in=3.2 + 0.3 * (n < 3), axis_space_px=8)
