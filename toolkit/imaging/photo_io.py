"""Reading photo files safely: header checks before decoding, complete files only, EXIF orientation.

A photo is read in three steps. The header alone (Pillow opens files lazily) gives the pixel size, mode and
EXIF orientation, so an absurd size is refused before any pixel buffer is allocated. The container's
structure is then walked (:mod:`toolkit.imaging.file_checks`): a JPEG or PNG cut short by an interrupted
copy still has a readable header, and lenient decoders fill its missing rows with grey. Only then are the
pixels decoded: JPEGs by libjpeg-turbo through ``simplejpeg`` in strict mode, which refuses what libjpeg
reports as corrupt data (OpenCV and Pillow decode such data into garbage without a word), and faster than
OpenCV's decoder; other files by OpenCV, with its own orientation handling switched off. The EXIF rotation
is applied exactly once, here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import DataError

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "heif_photo",
    "PhotoHeader",
    "PhotoRejected",
    "read_photo_header",
    "jpeg_quality",
    "verify_photo_file",
    "load_photo",
    "as_rgb_array",
    "sha256_file",
]

#: largest decoded size accepted (pixels): full-frame 45–61 MP and medium-format 100 MP camera files (11648×8736)
#: are measured as they are (a decoded 120 MP photo holds 360 MB); anything larger is refused before decoding
MAX_PIXELS = 120_000_000
#: file suffixes accepted by ingest (case-insensitive)
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

_EXIF_ORIENTATION = 0x0112
#: JPEG colour modes (as Pillow names them) that libjpeg-turbo turns into RGB itself
_RGB_JPEG_MODES = ("RGB", "YCbCr")


class PhotoRejected(DataError):
    """A photo that cannot be analysed; ``reason`` is a short machine-readable code.

    Codes: ``missing``, ``corrupt``, ``not_an_image``, ``too_large``, ``grayscale``, ``palette``, ``bit_depth``,
    ``bad_array``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        #: short code recorded with the QC result
        self.reason = reason


@dataclass(frozen=True)
class PhotoHeader:
    """What a photo file says about itself before its pixels are decoded."""

    #: width in pixels as stored (before EXIF rotation)
    width: int
    #: height in pixels as stored
    height: int
    #: Pillow mode, e.g. ``RGB``, ``L``, ``I;16``
    mode: str
    #: container format, e.g. ``JPEG``, ``PNG``, ``TIFF``
    format: str
    #: EXIF orientation tag (1 = upright; 1..8)
    orientation: int
    #: for a JPEG, the IJG quality (1..100) whose luminance table is nearest the file's (see :func:`jpeg_quality`)
    jpeg_quality: int | None = None

    @property
    def pixels(self) -> int:
        """Number of pixels (width × height)."""
        return self.width * self.height


#: the example luminance quantisation table of the JPEG standard (ITU-T T.81, Annex K, Table K.1), which the
#: IJG library scales by its quality setting
_ANNEX_K_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)


def _ijg_tables() -> np.ndarray:
    """(100, 64): the IJG luminance table at each quality 1..100, its entries sorted."""
    q = np.arange(1, 101)[:, None]
    scale = np.where(q < 50, 5000 // q, 200 - 2 * q)
    return np.sort(np.clip((_ANNEX_K_LUMINANCE[None, :] * scale + 50) // 100, 1, 255), axis=1)


_IJG_SORTED = _ijg_tables()


def jpeg_quality(luminance_table) -> int:
    """The IJG quality setting (1..100) that gives the luminance quantisation table nearest this one.

    Exact for files written by libjpeg (OpenCV, Pillow and most software: the quality they were saved at); for
    a camera's own tables it is the equivalent quality. The entries are compared sorted, so the order the
    table is stored in (zig-zag or natural) does not matter.
    """
    table = np.sort(np.asarray(list(luminance_table), dtype=np.int64).ravel())
    if table.size != 64:
        raise ValueError(f"a JPEG quantisation table has 64 entries, not {table.size}")
    return int(np.argmin(np.abs(_IJG_SORTED - table[None, :]).sum(axis=1))) + 1


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def read_photo_header(path: str | Path) -> PhotoHeader:
    """Read size, mode, format and EXIF orientation without decoding pixels.

    Raises
    ------
    PhotoRejected
        ``missing`` when the file does not exist, ``not_an_image`` when no image format is recognised.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise PhotoRejected(f"photo file not found: {path}", reason="missing")
    try:
        # Pillow's own bomb guard would raise on exactly the files we want to refuse with a clear reason
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as im:
            try:
                orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            except Exception:  # a damaged EXIF block must not hide a readable photo
                orientation = 1
            tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
            return PhotoHeader(
                width=int(im.width),
                height=int(im.height),
                mode=str(im.mode),
                format=str(im.format or "unknown"),
                orientation=orientation if 1 <= orientation <= 8 else 1,
                jpeg_quality=jpeg_quality(tables[min(tables)]) if tables else None,
            )
    except UnidentifiedImageError as exc:
        heif = heif_photo(path)
        if heif:
            raise PhotoRejected(f"{path}: {heif}", reason="not_an_image") from exc
        raise PhotoRejected(
            f"{path}: not an image file (accepted: JPEG, PNG, TIFF; WebP and BMP are read too)", reason="not_an_image"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # a file cut short inside its headers: say so rather than repeat Pillow's terse complaint
        problem = _problem_from_signature(path)
        detail = f"incomplete or damaged file: {problem}" if problem else f"unreadable image header ({exc})"
        raise PhotoRejected(f"{path}: {detail}", reason="corrupt") from exc


#: ISO base media file brands of HEIF images (HEIC, AVIF)
_HEIF_BRANDS = {b"heic": "an HEIC", b"heix": "an HEIC", b"heim": "an HEIC", b"heis": "an HEIC",
                b"hevc": "an HEIC", b"hevx": "an HEIC", b"mif1": "a HEIF", b"msf1": "a HEIF", b"avif": "an AVIF",
                b"avis": "an AVIF"}


def heif_photo(path: str | Path) -> str | None:
    """What to say of a file that starts with the ``ftyp`` box of an HEIC, HEIF or AVIF photo; None for any
    other file."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return None
    kind = _HEIF_BRANDS.get(head[8:12]) if len(head) == 12 and head[4:8] == b"ftyp" else None
    if kind is None:
        return None
    return (f"{kind} photo, a format not read here (a phone's default: HEIC on iPhones); set the camera to JPEG "
            "('Most Compatible' on an iPhone) or export the photo as JPEG")


def _problem_from_signature(path: Path) -> str | None:
    """The structure check for a file that starts like a JPEG or a PNG, whatever its header says."""
    from toolkit.imaging.file_checks import jpeg_problem, png_problem

    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data.startswith(b"\xff\xd8"):
        return jpeg_problem(data)
    if data.startswith(b"\x89PNG"):
        return png_problem(data)
    return None


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    # EXIF orientations 2..8 as rotations/flips of the stored pixels
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.flip(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), 1)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE), 1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _check_mode(mode: str, where: str) -> None:
    if mode in {"L", "LA", "1", "P;L"}:
        raise PhotoRejected(
            f"{where}: grayscale image (mode {mode}); a colour (RGB) photo is required for skin exposure "
            "and colour normalisation",
            reason="grayscale",
        )
    if mode in {"P", "PA"}:
        raise PhotoRejected(
            f"{where}: indexed-colour image (mode {mode}: at most 256 colours, as GIF and PNG-8 exports store "
            "them); the quantisation draws false texture and colour steps across the skin, which read as wrinkles; "
            "export the camera's JPEG or a full-colour (24-bit) PNG or TIFF",
            reason="palette",
        )
    if mode.startswith("I;16") or mode in {"I", "F", "RGB;16", "RGBA;16"} or "16" in mode:
        raise PhotoRejected(
            f"{where}: {mode} image with more than 8 bits per channel; export 8-bit sRGB (JPEG, PNG or TIFF)",
            reason="bit_depth",
        )


def _structure_problem(data: bytes, header: PhotoHeader) -> str | None:
    from toolkit.imaging.file_checks import jpeg_problem, png_problem

    if header.format == "JPEG":
        return jpeg_problem(data)
    if header.format == "PNG":
        return png_problem(data)
    return None


def _refuse_incomplete(data: bytes, header: PhotoHeader, where: str | Path) -> None:
    problem = _structure_problem(data, header)
    if problem is not None:
        raise PhotoRejected(f"{where}: incomplete or damaged {header.format} file: {problem}", reason="corrupt")


def _decode_jpeg(data: bytes, where: str | Path) -> np.ndarray:
    """RGB pixels of a complete JPEG; libjpeg's warnings about corrupt data are errors here."""
    import simplejpeg

    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:
        raise PhotoRejected(
            f"{where}: damaged JPEG data ({exc}); the photo cannot be measured, take or copy it again",
            reason="corrupt",
        ) from exc


def verify_photo_file(path: str | Path) -> PhotoHeader:
    """Check that a photo file is whole before it is stored: its header, its structure and its pixel data.

    A JPEG must reach its end-of-image marker and decode without libjpeg reporting corrupt data; a PNG must
    hold all its chunks, each with a correct CRC-32, up to IEND; a TIFF must decode in full. Bytes after
    the end of the image (camera trailers) are allowed.

    Raises
    ------
    PhotoRejected
        ``missing``, ``not_an_image`` or ``corrupt``, with a message naming the file and what is wrong.
    """
    from PIL import Image

    header = read_photo_header(path)
    data = Path(path).read_bytes()
    _refuse_incomplete(data, header, path)
    if header.format == "JPEG" and header.mode in _RGB_JPEG_MODES:
        _decode_jpeg(data, path)
    elif header.format != "PNG":  # PNG's CRCs already cover every byte
        try:
            with Image.open(path) as im:
                im.load()  # Pillow refuses truncated data unless told otherwise
        except (OSError, SyntaxError, ValueError) as exc:
            raise PhotoRejected(f"{path}: damaged {header.format} image data ({exc})", reason="corrupt") from exc
    return header


def load_photo(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, PhotoHeader]:
    """Decode a photo file into an upright RGB ``uint8`` array.

    Parameters
    ----------
    path : str or Path
        JPEG, PNG or TIFF file.
    max_pixels : int
        Largest accepted size; checked from the header before decoding.

    Returns
    -------
    image : (M, N, 3) uint8 ndarray
        RGB pixels with the EXIF orientation applied.
    header : PhotoHeader

    Raises
    ------
    PhotoRejected
        With ``reason`` set: ``missing``, ``not_an_image``, ``corrupt`` (also a file cut short or damaged
        inside), ``too_large``, ``grayscale``, ``palette``, ``bit_depth``.
    """
    header = read_photo_header(path)
    if header.pixels > max_pixels:
        raise PhotoRejected(
            f"{path}: {header.width}×{header.height} = {header.pixels / 1e6:.1f} MP exceeds the "
            f"{max_pixels / 1e6:.0f} MP limit; downscale the photo before analysis",
            reason="too_large",
        )
    _check_mode(header.mode, str(path))
    data = Path(path).read_bytes()
    _refuse_incomplete(data, header, path)
    if header.format == "JPEG" and header.mode in _RGB_JPEG_MODES:
        return _apply_orientation(_decode_jpeg(data, path), header.orientation), header
    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise PhotoRejected(f"{path}: corrupt image data ({exc})", reason="corrupt") from exc
    if image is None or image.size == 0:
        raise PhotoRejected(f"{path}: corrupt or truncated image data", reason="corrupt")
    if image.dtype != np.uint8:
        raise PhotoRejected(
            f"{path}: {image.dtype} pixels; export 8-bit sRGB (JPEG, PNG or TIFF)", reason="bit_depth"
        )
    if image.ndim == 2 or image.shape[2] == 1:
        raise PhotoRejected(f"{path}: grayscale image; a colour (RGB) photo is required", reason="grayscale")
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if header.format == "TIFF":
        # OpenCV's TIFF codec applies the orientation tag itself, even with IMREAD_IGNORE_ORIENTATION
        return image, header
    return _apply_orientation(image, header.orientation), header


def as_rgb_array(image: np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Check an in-memory photo: an (M, N, 3) ``uint8`` RGB array (returned contiguous).

    Raises
    ------
    PhotoRejected
        ``bad_array``, ``grayscale``, ``bit_depth`` or ``too_large``.
    """
    if not isinstance(image, np.ndarray):
        raise PhotoRejected(
            f"image must be a path or a numpy array, got {type(image).__name__}", reason="bad_array"
        )
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise PhotoRejected("image array is grayscale; an (M, N, 3) RGB array is required", reason="grayscale")
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise PhotoRejected(
            f"image array has shape {image.shape}; an (M, N, 3) RGB array is required", reason="bad_array"
        )
    if image.dtype != np.uint8:
        raise PhotoRejected(
            f"image array has dtype {image.dtype}; 8-bit (uint8) RGB is required", reason="bit_depth"
        )
    if image.shape[0] * image.shape[1] > max_pixels:
        raise PhotoRejected(
            f"image array of {image.shape[1]}×{image.shape[0]} exceeds the {max_pixels / 1e6:.0f} MP limit",
            reason="too_large",
        )
    return np.ascontiguousarray(image[..., :3])
