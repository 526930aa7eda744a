"""Reading and writing images: discovery, decoding with EXIF orientation, modes, bit depth,
metadata, atomic writes.

Everything a user can feed us goes through here, so every failure becomes a ``BadImage`` whose
message names the file and the problem in one line.

Two readers exist: the light ``open_image``/``read_rgb`` (float RGB for training and evaluation)
and ``read_image``, which keeps everything needed to write a faithful output: native bit depth
(8 or 16 bits; Pillow cannot hold 16-bit RGB, so 16-bit PNG/TIFF are decoded with OpenCV),
alpha, format, EXIF and ICC profile. ``write_image`` writes through a hidden temporary file in
the destination folder and ``os.replace``, so a reader never sees a partial file.

Modules: ``find`` (finding image files), ``guard`` (guarded opening, the decompression-bomb
guard, the light reader), ``decode`` (faithful reading), ``write`` (formats, atomic writing with
EXIF/ICC kept, temp-file cleaning, the output record). Every public name is re-exported here
(and ``_png_chunk``, which the tests use to build files by hand).
"""

from __future__ import annotations

from colorcli.imageio.decode import (
    DecodedImage,
    decoded_from_array,
    decoded_from_pil,
    icc_color_space,
    orient_array,
    read_image,
    to_uint8,
)
from colorcli.imageio.find import (
    IMAGE_EXTENSIONS,
    find_images,
    find_images_with_roots,
    is_image_path,
    iter_folder_images,
)
from colorcli.imageio.guard import (
    DEFAULT_MAX_PIXELS,
    default_max_pixels,
    open_guarded,
    open_image,
    pil_to_rgb_float,
    read_rgb,
)
from colorcli.imageio.write import (
    FORMAT_EXTENSIONS,
    RECORD_KEY,
    TEMP_MARKER,
    WRITE_INSTEAD,
    _png_chunk,
    atomic_write,
    clean_temp_files,
    format_for_extension,
    format_for_path,
    read_record,
    record_sidecar,
    temp_path_for,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMAT_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "RECORD_KEY",
    "TEMP_MARKER",
    "WRITE_INSTEAD",
    "DecodedImage",
    "_png_chunk",
    "atomic_write",
    "clean_temp_files",
    "decoded_from_array",
    "decoded_from_pil",
    "default_max_pixels",
    "find_images",
    "find_images_with_roots",
    "format_for_extension",
    "format_for_path",
    "icc_color_space",
    "is_image_path",
    "iter_folder_images",
    "open_guarded",
    "open_image",
    "orient_array",
    "pil_to_rgb_float",
    "read_image",
    "read_record",
    "read_rgb",
    "record_sidecar",
    "temp_path_for",
    "to_uint8",
    "write_image",
]
