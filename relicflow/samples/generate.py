"""Fill an inbox with a demo batch: real photographs, generated "scans" and deliberately bad files.

The batch shows every path through ingest: an EXIF-rotated camera JPEG, a 16-bit greyscale rubbing, a
48-bit TIFF, a Chinese file name with an embedded ICC profile, a near duplicate, four files that must
be quarantined, and a sheet row that matches no file. Generated images are seeded, so every run
writes the same pixels; nothing generated is committed.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFilter

SAMPLES_DIR = Path(__file__).resolve().parent
SHEET_FILE_NAME = "accession_sheet.csv"
SEED = 20240520

# inbox name -> bundled photograph (see PROVENANCE.md)
BUNDLED_PHOTOGRAPHS: dict[str, str] = {
    "1987.4.12_front.png": "photographs/coins.png",
    "2003.9.5_front.jpg": "photographs/coffee.jpg",
    "2011.6.21_front.png": "photographs/clock_motion.png",
}
EXIF_ROTATED = "GJ-00123-1.jpg"  # stored on its side, EXIF orientation 6
RUBBING_16BIT = "2019.3.17_rubbing.png"  # 16-bit greyscale PNG
TIFF_48BIT = "2016.2.29_front.tif"  # 16 bits per channel RGB
CHINESE_NAMED = "青铜鼎_正面.jpg"  # sRGB ICC profile embedded, 3000 px long side
# 90% size, JPEG q80 copy of ... filed under another accession number: one relic, two numbers, two tokens
NEAR_DUPLICATE = "2021.7.7_front.jpg"
NEAR_DUPLICATE_OF = "1987.4.12_front.png"
SECOND_VIEW = "2016.2.29_back.jpg"  # the vase's back: one object, two photographs (views)
SECOND_VIEW_OF = "2016.2.29_front.tif"
EXPECTED_QUARANTINE: dict[str, str] = {
    "2022.1.1_front.jpg": "empty_file",
    "2022.1.2_front.jpg": "truncated_image",
    "2022.1.3_front.tif": "not_an_image",
    "2022.1.4_front.bmp": "unsupported_format",
}
ORPHAN_ACCESSION = "2018.11.30"  # in the sheet, no file in the batch

# ColorChecker Classic patches, approximate sRGB values (BabelColor averages), row by row.
_CHART_SRGB: tuple[tuple[int, int, int], ...] = (
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177), (103, 189, 170),
    (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108), (157, 188, 64), (224, 163, 46),
    (56, 61, 150), (70, 148, 73), (175, 54, 60), (231, 199, 31), (187, 86, 149), (8, 133, 161),
    (243, 243, 242), (200, 200, 200), (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
)


@dataclass(frozen=True)
class DemoPlacement:
    """What putting the demo batch in an inbox did: nothing already there is ever replaced."""

    written: list[Path] = field(default_factory=list)
    already_there: list[Path] = field(default_factory=list)  # the same bytes under the same name: nothing to do
    name_taken: list[Path] = field(default_factory=list)  # another file has the sample's name: left alone, sample skipped


def demo_batch() -> dict[str, bytes]:
    """Inbox name -> bytes of every file of the demo batch, sheet last."""
    batch = {name: (SAMPLES_DIR / bundled).read_bytes() for name, bundled in BUNDLED_PHOTOGRAPHS.items()}
    batch[EXIF_ROTATED] = _rotated_bowl_jpeg()
    batch[RUBBING_16BIT] = _rubbing_png16()
    batch[TIFF_48BIT] = _vase_tiff48()
    batch[CHINESE_NAMED] = _ding_jpeg()
    batch[NEAR_DUPLICATE] = _resaved_copy(SAMPLES_DIR / BUNDLED_PHOTOGRAPHS[NEAR_DUPLICATE_OF])
    batch[SECOND_VIEW] = _vase_back_jpeg()
    batch.update(_bad_files())
    batch[SHEET_FILE_NAME] = (SAMPLES_DIR / SHEET_FILE_NAME).read_bytes()
    return batch


def place_demo_inbox(inbox: Path) -> DemoPlacement:
    """Put the demo batch in ``inbox`` (created if missing) without ever overwriting a file there.

    Run again (``make demo`` twice), files of the same name are compared: the same bytes need nothing;
    a different file under a sample's name is staff's own, so the sample is skipped and reported.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    placement = DemoPlacement()
    for name, data in demo_batch().items():
        path = inbox / name
        try:
            with path.open("xb") as f:  # exclusive create: never replaces a file, even one appearing meanwhile
                f.write(data)
            placement.written.append(path)
        except FileExistsError:
            same = path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data
            (placement.already_there if same else placement.name_taken).append(path)
    return placement


def write_demo_inbox(inbox: Path) -> list[Path]:
    """Write the demo batch into ``inbox``; returns the files written (all of them in a fresh inbox), sheet last."""
    return place_demo_inbox(inbox).written


# --- generated scans --------------------------------------------------------------------------


def _rotated_bowl_jpeg() -> bytes:
    """A celadon bowl, shot upright but stored on its side as cameras do, with EXIF orientation 6."""
    rng = np.random.default_rng(SEED + 1)
    width, height = 1600, 1200
    canvas = _backdrop(width, height, (182, 180, 176), (120, 118, 115), rng)
    profile = [(0.30, 0.34), (0.36, 0.33), (0.50, 0.28), (0.62, 0.20), (0.70, 0.11), (0.72, 0.09),
               (0.78, 0.09), (0.78, 0.08)]
    _paint_vessel(canvas, profile, centre_x=0.46, colour=(150, 178, 150), rng=rng)
    _paint_chart(canvas, left=int(width * 0.83), top=int(height * 0.12), patch=36, columns=4)
    upright = Image.fromarray(_to_uint8(canvas))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # EXIF 6 means: turn 90 degrees clockwise
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "DemoCam"
    exif[ExifTags.Base.Model] = "Studio 1"
    exif[ExifTags.Base.Software] = "relicflow demo generator"
    exif[ExifTags.Base.Artist] = "Digitisation Studio"
    exif[ExifTags.Base.Copyright] = "Demo Museum, CC0"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:20 10:31:00"
    return _jpeg(stored, quality=92, exif=exif.tobytes())


def _rubbing_png16() -> bytes:
    """An ink rubbing (拓片) of an inscription, scanned at 16 bits in greyscale."""
    rng = np.random.default_rng(SEED + 2)
    width, height = 1200, 1600
    paper = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(paper)
    for column in range(6):
        for row in range(9):
            x0, y0 = 150 + column * 150, 140 + row * 150
            for _ in range(int(rng.integers(3, 7))):
                points = [(x0 + float(rng.uniform(0, 110)), y0 + float(rng.uniform(0, 110))) for _ in range(2)]
                draw.line(points, fill=255, width=int(rng.integers(9, 17)))
    draw.rectangle((80, 80, width - 80, height - 80), outline=255, width=14)
    strokes = np.asarray(paper.filter(ImageFilter.GaussianBlur(1.6)), dtype=np.float32) / 255
    ink = 0.13 + 0.05 * _cloud(width, height, 48, rng) + rng.normal(0, 0.012, (height, width))
    value = ink * (1 - strokes) + (0.80 + rng.normal(0, 0.015, (height, width))) * strokes
    samples = np.clip(value * 65535, 0, 65535).astype(np.uint16)
    return _png(Image.fromarray(samples))


def _vase_tiff48() -> bytes:
    """A blue-and-white vase on a dark backdrop, as a 48-bit TIFF master without an ICC profile."""
    rng = np.random.default_rng(SEED + 3)
    width, height = 900, 1200
    canvas = _backdrop(width, height, (70, 72, 78), (40, 41, 44), rng)
    profile = [(0.10, 0.07), (0.14, 0.07), (0.17, 0.12), (0.24, 0.22), (0.40, 0.25), (0.60, 0.19),
               (0.76, 0.12), (0.84, 0.11), (0.86, 0.13), (0.88, 0.13)]
    _paint_vessel(canvas, profile, centre_x=0.42, colour=(236, 236, 228), rng=rng,
                  bands=((0.20, 0.27), (0.42, 0.55), (0.78, 0.82)), band_colour=(45, 62, 150))
    _paint_chart(canvas, left=int(width * 0.12), top=int(height * 0.90), patch=26, columns=24)
    rgb16 = np.clip(canvas / 255 * 65535, 0, 65535).astype(np.uint16)
    ok, encoded = cv2.imencode(".tiff", np.ascontiguousarray(rgb16[:, :, ::-1]))  # OpenCV wants BGR
    assert ok, "OpenCV could not encode the demo TIFF"
    return encoded.tobytes()


def _vase_back_jpeg() -> bytes:
    """The same vase from behind, lit from the other side, as an 8-bit JPEG: its second view."""
    rng = np.random.default_rng(SEED + 6)
    width, height = 900, 1200
    canvas = _backdrop(width, height, (150, 146, 140), (96, 94, 90), rng)
    profile = [(0.10, 0.07), (0.14, 0.07), (0.17, 0.12), (0.24, 0.22), (0.40, 0.25), (0.60, 0.19),
               (0.76, 0.12), (0.84, 0.11), (0.86, 0.13), (0.88, 0.13)]
    _paint_vessel(canvas, profile, centre_x=0.58, colour=(228, 230, 236), rng=rng,
                  bands=((0.12, 0.16), (0.30, 0.36), (0.60, 0.70)), band_colour=(30, 40, 120))
    return _jpeg(Image.fromarray(_to_uint8(canvas)), quality=90)


def _ding_jpeg() -> bytes:
    """A bronze tripod cauldron (鼎), 3000 px wide so it reaches FADGI 1 star, with an sRGB profile."""
    rng = np.random.default_rng(SEED + 4)
    width, height = 3000, 2000
    canvas = _backdrop(width, height, (214, 206, 192), (168, 160, 148), rng)
    shape = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(shape)
    cx = int(width * 0.55)
    draw.chord((cx - 620, 450, cx + 620, 1450), 0, 180, fill=255)  # body: lower half of an ellipse
    draw.rectangle((cx - 640, 900, cx + 640, 960), fill=255)  # rim
    for offset in (-520, 0, 520):  # three legs
        draw.polygon([(cx + offset - 70, 1250), (cx + offset + 70, 1250), (cx + offset + 45, 1800),
                      (cx + offset - 45, 1800)], fill=255)
    for side in (-1, 1):  # two upright ears with holes
        x = cx + side * 470
        draw.rectangle((x - 90, 600, x + 90, 910), fill=255)
        draw.rectangle((x - 45, 650, x + 45, 860), fill=0)
    patina = np.array((92, 116, 90), dtype=np.float32) * (0.8 + 0.4 * _cloud(width, height, 60, rng))[..., None]
    patina += rng.normal(0, 6, (height, width, 1))
    _composite(canvas, shape, patina, centre_x=cx, half_width=640)
    _paint_chart(canvas, left=int(width * 0.06), top=int(height * 0.10), patch=70, columns=4)
    srgb = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    srgb[24:36] = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)  # LittleCMS stamps "now"; keep runs identical
    return _jpeg(Image.fromarray(_to_uint8(canvas)), quality=90, icc_profile=bytes(srgb))


def _resaved_copy(original: Path) -> bytes:
    """Someone exported the same photograph again, a little smaller and more compressed."""
    with Image.open(original) as image:
        image.load()
        smaller = image.resize((round(image.width * 0.9), round(image.height * 0.9)), Image.Resampling.LANCZOS)
    return _jpeg(smaller, quality=80)


def _bad_files() -> dict[str, bytes]:
    rng = np.random.default_rng(SEED + 5)
    canvas = _backdrop(800, 600, (180, 176, 170), (120, 116, 110), rng)
    _paint_vessel(canvas, [(0.2, 0.2), (0.5, 0.25), (0.8, 0.1)], centre_x=0.5, colour=(160, 90, 60), rng=rng)
    whole = _jpeg(Image.fromarray(_to_uint8(canvas)), quality=90)
    text = "扫描记录 Scan log\n2022-01-03 09:12 第3号台 扫描完成\n注意：请勿将此文件改名为图像。\n"
    tiny_bmp = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 64, 32)).save(tiny_bmp, "BMP")
    names = list(EXPECTED_QUARANTINE)
    return {
        names[0]: b"",
        names[1]: whole[: len(whole) * 6 // 10],
        names[2]: text.encode("utf-8"),
        names[3]: tiny_bmp.getvalue(),
    }


# --- drawing helpers --------------------------------------------------------------------------


def _backdrop(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int],
              rng: np.random.Generator) -> np.ndarray:
    """A studio sweep: vertical gradient, a little sensor noise. float32 HxWx3 in 0-255."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    gradient = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    canvas = np.broadcast_to(gradient, (height, width, 3)).copy()
    canvas += rng.normal(0, 2.5, (height, width, 1)).astype(np.float32)
    return canvas


def _cloud(width: int, height: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth low-frequency noise in 0-1 (patina, ink mottling)."""
    small = (rng.random((height // cell + 2, width // cell + 2)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255


def _paint_vessel(canvas: np.ndarray, profile: list[tuple[float, float]], *, centre_x: float,
                  colour: tuple[int, int, int], rng: np.random.Generator,
                  bands: tuple[tuple[float, float], ...] = (), band_colour: tuple[int, int, int] = (0, 0, 0)) -> None:
    """A turned vessel from its profile: (height fraction, half-width fraction) pairs, top to bottom."""
    height, width = canvas.shape[:2]
    cx = centre_x * width
    right = [(cx + half * width, y * height) for y, half in profile]
    left = [(cx - half * width, y * height) for y, half in reversed(profile)]
    shape = Image.new("L", (width, height), 0)
    ImageDraw.Draw(shape).polygon(right + left, fill=255)
    surface = np.broadcast_to(np.asarray(colour, np.float32), (height, width, 3)).copy()
    rows = np.arange(height, dtype=np.float32) / height
    for start, stop in bands:
        wave = 0.012 * np.sin(np.arange(width, dtype=np.float32) / 23.0)
        inside = (rows[:, None] >= start + wave) & (rows[:, None] <= stop + wave)
        surface[inside] = band_colour
    surface += rng.normal(0, 4, (height, width, 1)).astype(np.float32)
    half_width = max(half for _, half in profile) * width
    _composite(canvas, shape, surface, centre_x=cx, half_width=half_width)
    shadow_top = int(max(y for y, _ in profile) * height)
    shadow = Image.new("L", (width, height), 0)
    ImageDraw.Draw(shadow).ellipse((cx - half_width, shadow_top - 12, cx + half_width * 1.3, shadow_top + 30), fill=90)
    darkening = np.asarray(shadow.filter(ImageFilter.GaussianBlur(18)), np.float32)[..., None] / 255
    outside = 1 - np.asarray(shape, np.float32)[..., None] / 255
    canvas *= 1 - darkening * outside


def _composite(canvas: np.ndarray, shape: Image.Image, surface: np.ndarray, *, centre_x: float,
               half_width: float) -> None:
    """Lay a shaded object into the canvas: round-body light falloff and a soft highlight stripe."""
    width = canvas.shape[1]
    across = np.clip((np.arange(width, dtype=np.float32) - centre_x) / half_width, -1, 1)
    light = 0.45 + 0.55 * np.cos(across * np.pi / 2 * 0.95) + 0.25 * np.exp(-((across + 0.35) / 0.08) ** 2)
    alpha = np.asarray(shape.filter(ImageFilter.GaussianBlur(1.2)), np.float32)[..., None] / 255
    canvas *= 1 - alpha
    canvas += alpha * surface * light[None, :, None]


def _paint_chart(canvas: np.ndarray, *, left: int, top: int, patch: int, columns: int) -> None:
    """A ColorChecker-like target beside the object, as FADGI asks for in every frame."""
    gap = max(2, patch // 8)
    rows = -(-len(_CHART_SRGB) // columns)
    canvas[top - gap : top + rows * (patch + gap), left - gap : left + columns * (patch + gap)] = 20
    for index, colour in enumerate(_CHART_SRGB):
        row, column = divmod(index, columns)
        y, x = top + row * (patch + gap), left + column * (patch + gap)
        canvas[y : y + patch, x : x + patch] = colour


def _to_uint8(canvas: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(canvas), 1, 254).astype(np.uint8)  # keep clear of 0/255: not a clipping demo


def _jpeg(image: Image.Image, *, quality: int, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **options)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
