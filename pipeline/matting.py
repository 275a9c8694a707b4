"""Subject extraction: an alpha matte and the subject's own colours near its edge.

Backends produce a coarse alpha at network resolution; `refine_alpha` carries it to the
photo's resolution with a guided filter so the edge follows the photo's real edges (hair,
sleeves) instead of the network's blurry upsampling; for captures `solve_band_alpha` then
solves the band around the edge again by closed-form matting. `estimate_foreground` removes
the old room's colour from edge pixels, so it cannot fringe into the painting.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import scipy.sparse

# Alphas this close to 0 or 1 are sensor noise in the matte, not translucency; snapping
# them keeps the artwork untouched outside the subject and the subject solid inside.
_ALPHA_SNAP = 0.02


class Segmenter(Protocol):
    """Anything that maps an RGB uint8 photo to a float32 alpha of the same height and width."""

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


class ModnetSegmenter:
    """MODNet portrait matting (onnxruntime), for captures.

    With ``band_width`` (a fraction of the photo's long side) the alpha around the edge is then
    solved again at the photo's resolution by closed-form matting (`solve_band_alpha`)."""

    def __init__(
        self, session, *, long_side: int = 512, refine_radius: int = 8, band_width: float | None = None
    ) -> None:
        self._session = session
        self._input_name = session.get_inputs()[0].name
        self._long_side = long_side
        self._refine_radius = refine_radius
        self._band_width = band_width

    def __call__(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        net_w, net_h = _network_size(width, height, self._long_side, multiple=32)
        small = cv2.resize(image, (net_w, net_h), interpolation=cv2.INTER_AREA)
        blob = (small.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        coarse = self._session.run(None, {self._input_name: blob})[0][0, 0]
        alpha = refine_alpha(image, coarse, radius=self._refine_radius)
        if self._band_width is None:
            return alpha
        return solve_band_alpha(image, alpha, band_px=max(2, round(self._band_width * max(height, width))))


class SelfieSegmenter:
    """MediaPipe selfie segmentation, for the live preview.

    ``interpreter`` is a LiteRT (TensorFlow Lite) interpreter of the general model (256x256
    input) or the landscape one (256x144) with its tensors allocated; both take RGB in [0, 1].
    LiteRT's XNNPACK kernels run the landscape model in about 2.6 ms on one core, where
    OpenCV's TFLite reader takes 17 ms for the same output (within 2.5e-4).
    """

    def __init__(self, interpreter, *, refine_radius: int = 4, refine_subsample: int = 1) -> None:
        self._interpreter = interpreter
        (input_details,) = interpreter.get_input_details()
        (output_details,) = interpreter.get_output_details()
        _, height, width, _ = input_details["shape"]
        self._input_size = (int(width), int(height))
        self._input_index = input_details["index"]
        self._output_index = output_details["index"]
        self._refine_radius = refine_radius
        self._refine_subsample = refine_subsample

    @property
    def landscape(self) -> bool:
        return self._input_size[0] > self._input_size[1]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        # Bilinear is alias-free enough down to half size and several times faster than area averaging there.
        shrink = self._input_size[0] / image.shape[1]
        interpolation = cv2.INTER_LINEAR if shrink >= 0.5 else cv2.INTER_AREA
        small = cv2.resize(image, self._input_size, interpolation=interpolation)
        self._interpreter.set_tensor(self._input_index, (small.astype(np.float32) / 255.0)[None])
        self._interpreter.invoke()
        coarse = self._interpreter.get_tensor(self._output_index)[0, :, :, 0]
        return refine_alpha(image, coarse, radius=self._refine_radius, subsample=self._refine_subsample)


def _network_size(width: int, height: int, long_side: int, multiple: int) -> tuple[int, int]:
    scale = long_side / max(width, height)
    return (
        max(multiple, int(round(width * scale / multiple)) * multiple),
        max(multiple, int(round(height * scale / multiple)) * multiple),
    )


def refine_alpha(
    image: np.ndarray, coarse_alpha: np.ndarray, *, radius: int, eps: float = 1e-3, subsample: int = 1
) -> np.ndarray:
    """Upsample a coarse alpha to ``image``'s size, guided by the image's luminance (He et al.).

    ``subsample`` > 1 is He and Sun's fast guided filter: the filter's linear coefficients are
    found at 1/subsample resolution and applied to the full-resolution guide, so edges still
    follow full-resolution detail at about 1/subsample^2 of the cost.
    """
    height, width = image.shape[:2]
    guide = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    if subsample > 1:
        small = (max(1, width // subsample), max(1, height // subsample))
        a, b = _guided_coefficients(
            cv2.resize(guide, small, interpolation=cv2.INTER_AREA),
            cv2.resize(coarse_alpha.astype(np.float32), small, interpolation=cv2.INTER_LINEAR),
            radius=max(1, radius // subsample),
            eps=eps,
        )
        a = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
        refined = a * guide + b
    else:
        alpha = cv2.resize(coarse_alpha.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        refined = guided_filter(guide, alpha, radius=radius, eps=eps)
    np.clip(refined, 0.0, 1.0, out=refined)
    refined[refined < _ALPHA_SNAP] = 0.0
    refined[refined > 1.0 - _ALPHA_SNAP] = 1.0
    return refined


def guided_filter(guide: np.ndarray, source: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``source`` whose edges follow ``guide`` (both float32, one channel)."""
    a, b = _guided_coefficients(guide, source, radius=radius, eps=eps)
    return a * guide + b


def _guided_coefficients(
    guide: np.ndarray, source: np.ndarray, *, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The window-averaged linear coefficients (a, b) of the guided filter: output = a * guide + b."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(source)
    cov_ip = box(guide * source) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a), box(b)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's colours with the background's contribution removed at the edge.

    Blur-fusion foreground estimation (Forte & Pitié, 2021): a wide pass gets local
    foreground and background colour means, a narrow pass sharpens them; each solves the
    compositing equation I = aF + (1-a)B for F given the local B. Only pixels with a
    fractional alpha change; the wide pass runs at a quarter of the resolution because
    its 181-pixel box means carry no detail worth the cost.
    """
    foreground = image.copy()
    band = (alpha > 0.0) & (alpha < 1.0)
    if not band.any():
        return foreground
    rows, cols = np.nonzero(alpha > 0.0)
    margin = _WIDE_RADIUS
    y0, y1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, alpha.shape[0])
    x0, x1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, alpha.shape[1])

    colours = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    a = alpha[y0:y1, x0:x1, None].astype(np.float32)
    height, width = a.shape[:2]
    small_size = (max(1, width // _WIDE_DOWNSCALE), max(1, height // _WIDE_DOWNSCALE))
    small_colours = cv2.resize(colours, small_size, interpolation=cv2.INTER_AREA)
    small_a = cv2.resize(a, small_size, interpolation=cv2.INTER_AREA)[:, :, None]
    wide_fg, wide_bg = _local_means(small_colours, small_colours, small_a, _WIDE_RADIUS // _WIDE_DOWNSCALE)
    wide_fg = cv2.resize(wide_fg, (width, height), interpolation=cv2.INTER_LINEAR)
    wide_bg = cv2.resize(wide_bg, (width, height), interpolation=cv2.INTER_LINEAR)
    fg = _solve_foreground(colours, wide_fg, wide_bg, a)

    narrow_fg, narrow_bg = _local_means(fg, wide_bg, a, _NARROW_RADIUS)
    fg = _solve_foreground(colours, narrow_fg, narrow_bg, a)

    roi_band = band[y0:y1, x0:x1]
    foreground[y0:y1, x0:x1][roi_band] = np.clip(np.rint(fg[roi_band] * 255.0), 0, 255).astype(np.uint8)
    return foreground


_WIDE_RADIUS = 90
_WIDE_DOWNSCALE = 4
_NARROW_RADIUS = 6


def _local_means(
    foreground: np.ndarray, background: np.ndarray, a: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-weighted local means of the foreground and background colours."""
    size = (2 * radius + 1, 2 * radius + 1)

    def blur(x: np.ndarray) -> np.ndarray:
        out = cv2.blur(x, size, borderType=cv2.BORDER_REPLICATE)
        return out if out.ndim == 3 else out[:, :, None]

    blurred_a = blur(a)
    mean_fg = blur(foreground * a) / (blurred_a + 1e-5)
    mean_bg = blur(background * (1.0 - a)) / ((1.0 - blurred_a) + 1e-5)
    return mean_fg, mean_bg


def _solve_foreground(image: np.ndarray, mean_fg: np.ndarray, mean_bg: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.clip(mean_fg + a * (image - a * mean_fg - (1.0 - a) * mean_bg), 0.0, 1.0)


# Closed-form matting's tiles (pixels): the band is solved tile by tile, each with this margin of
# context, so the matting Laplacian is built around the band only (pymatting builds it for every
# pixel it is given: the whole photo took about twice as long at 1280 px).
_BAND_TILE = 64
_BAND_TILE_MARGIN = 8
# Closed-form matting's regularisation (pymatting's default) and the conjugate gradient's relative
# tolerance: started from the guided filter's alpha, 1e-3 is as good as 1e-5 (SAD, MSE) at half the time.
_BAND_EPSILON = 1e-7
_BAND_TOLERANCE = 1e-3


def solve_band_alpha(image: np.ndarray, alpha: np.ndarray, *, band_px: int) -> np.ndarray:
    """``alpha`` solved again around its edge by closed-form matting, at ``image``'s resolution.

    The trimap comes from ``alpha``'s half-way contour: pixels further than ``band_px`` from it
    are the person (1) or the room (0), which also clears the guided filter's faint haze over
    the room; the band between is unknown and closed-form matting (Levin et al. 2008, pymatting)
    finds it from the photo's colours, starting from ``alpha``. A tile whose window holds no
    certain person or no certain room keeps ``alpha`` there.
    """
    laplacian = _closed_form_laplacian()

    solid = (alpha >= 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1, 2 * band_px + 1))
    person = cv2.erode(solid, kernel) > 0
    room = cv2.dilate(solid, kernel) == 0
    unknown = ~(person | room)
    result = person.astype(np.float32)
    result[unknown] = alpha[unknown]
    trimap = np.where(unknown, 0.5, result).astype(np.float64)
    height, width = alpha.shape
    step, margin = _BAND_TILE, _BAND_TILE_MARGIN
    windows = []
    for y in range(0, height, step):
        for x in range(0, width, step):
            if not unknown[y : y + step, x : x + step].any():
                continue
            y0, y1 = max(0, y - margin), min(height, y + step + margin)
            x0, x1 = max(0, x - margin), min(width, x + step + margin)
            window_trimap = trimap[y0:y1, x0:x1]
            if not ((window_trimap == 1.0).any() and (window_trimap == 0.0).any()):
                continue
            matting_laplacian = laplacian(
                image[y0:y1, x0:x1].astype(np.float64) / 255.0, epsilon=_BAND_EPSILON, is_known=window_trimap != 0.5
            )
            windows.append(_Window((y, x), (y0, y1, x0, x1), window_trimap, matting_laplacian, alpha[y0:y1, x0:x1]))
    for window, solved in zip(windows, _solve_windows(windows)):
        (y, x), (y0, _, x0, _) = window.core, window.bounds
        core_unknown = unknown[y : y + step, x : x + step]
        core = solved[y - y0 : y - y0 + core_unknown.shape[0], x - x0 : x - x0 + core_unknown.shape[1]]
        result[y : y + step, x : x + step][core_unknown] = core[core_unknown]
    result[result < _ALPHA_SNAP] = 0.0
    result[result > 1.0 - _ALPHA_SNAP] = 1.0
    return result


@dataclass(frozen=True)
class _Window:
    """One tile of the band with its margin: its trimap, matting Laplacian and starting alpha."""

    core: tuple[int, int]  # the tile's top-left corner (y, x)
    bounds: tuple[int, int, int, int]  # the window with its margin: y0, y1, x0, x1
    trimap: np.ndarray
    laplacian: scipy.sparse.csr_matrix
    start: np.ndarray


def _solve_windows(windows: list[_Window]) -> list[np.ndarray]:
    """Closed-form matting's alpha over each window: its unknown pixels (trimap 0.5) solved from the
    known ones through the matting Laplacian, as pymatting's ``estimate_alpha_cf`` does (L_U x = -R
    fg_K), by Jacobi-preconditioned conjugate gradients from the window's starting alpha (pymatting's
    incomplete Cholesky prints warnings to stdout on some windows, and stdout carries `--json`).

    The windows are independent systems, solved together as one block-diagonal system whose blocks
    each stop at their own tolerance, exactly as one solve per window would: a per-window solve
    spent nearly all its time in scipy's per-iteration Python overhead on these small systems.
    """
    systems, right_sides, starts = [], [], []
    for window in windows:
        known = (window.trimap != 0.5).ravel()
        unknown = ~known
        rows = window.laplacian[unknown]
        systems.append(rows[:, unknown])
        right_sides.append(-(rows[:, known] @ (window.trimap.ravel()[known] == 1.0).astype(np.float64)))
        starts.append(window.start.ravel()[unknown].astype(np.float64))
    if not systems:
        return []
    sizes = np.array([len(b) for b in right_sides])
    solutions = _block_conjugate_gradients(
        scipy.sparse.block_diag(systems, format="csr"),
        np.concatenate(right_sides),
        np.concatenate(starts),
        sizes,
        tolerance=_BAND_TOLERANCE,
    )
    solved = []
    for window, solution in zip(windows, np.split(solutions, np.cumsum(sizes)[:-1])):
        alpha = window.trimap.ravel().copy()
        alpha[window.trimap.ravel() == 0.5] = np.clip(solution, 0.0, 1.0)
        solved.append(alpha.reshape(window.trimap.shape))
    return solved


def _block_conjugate_gradients(
    system: scipy.sparse.csr_matrix, rhs: np.ndarray, start: np.ndarray, sizes: np.ndarray, *, tolerance: float
) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients on a block-diagonal SPD ``system`` (blocks of
    ``sizes``), each block stopping once its residual is below ``tolerance`` times its right side's
    norm, as scipy's ``cg(rtol=tolerance)`` stops (at most 10 iterations per unknown, its default).

    Blocks need 35 to 160 iterations; once the blocks still iterating hold less than half the
    unknowns, the system is cut down to them, so the converged ones cost nothing more."""
    solution = start.copy()
    rows = np.arange(len(rhs))  # the unknowns of the system being iterated, in the whole one
    x, residual = start.copy(), rhs - system @ start
    offsets = _offsets(sizes)
    thresholds = tolerance * np.sqrt(np.add.reduceat(rhs * rhs, offsets))
    inverse_diagonal = 1.0 / system.diagonal()
    direction = np.zeros_like(x)
    previous_rho = np.ones(len(sizes))
    for _ in range(10 * int(sizes.max())):
        active = np.sqrt(np.add.reduceat(residual * residual, offsets)) >= thresholds
        if not active.any():
            break
        if sizes[active].sum() * 2 < len(rows):
            solution[rows] = x
            kept = np.repeat(active, sizes)
            system = system[kept][:, kept]
            rows, x, residual, direction, inverse_diagonal = (v[kept] for v in (rows, x, residual, direction, inverse_diagonal))
            sizes, thresholds, previous_rho, active = sizes[active], thresholds[active], previous_rho[active], active[active]
            offsets = _offsets(sizes)
        preconditioned = residual * inverse_diagonal
        rho = np.add.reduceat(residual * preconditioned, offsets)
        beta = np.where(active, rho / previous_rho, 0.0)
        direction = preconditioned + np.repeat(beta, sizes) * direction
        product = system @ direction
        curvature = np.add.reduceat(direction * product, offsets)
        step = np.repeat(np.where(active, rho / np.where(curvature == 0.0, 1.0, curvature), 0.0), sizes)
        x += step * direction
        residual -= step * product
        previous_rho = np.where(active, rho, previous_rho)
    solution[rows] = x
    return solution


def _offsets(sizes: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(sizes)[:-1]))


_LAPLACIAN_MODULE = "_artbooth_pymatting_cf_laplacian"


def _closed_form_laplacian():
    """pymatting's matting Laplacian (Levin et al. 2008): ``cf_laplacian(image, epsilon, radius, is_known)``.

    Its module is loaded on its own, from pymatting's files: ``import pymatting`` compiles every one
    of the package's numba kernels (56 s of CPU on a fresh install, 1.5 s a process from numba's
    cache after), while this module needs only numpy, scipy and numba (about 3 s once, then cached).
    Loaded at the first solve, which the compose workers' warm-up makes before a booth reports
    ready; processes that never solve a band (the live preview) never load it.
    """
    module = sys.modules.get(_LAPLACIAN_MODULE)
    if module is None:
        package = importlib.util.find_spec("pymatting")
        if package is None or not package.submodule_search_locations:
            raise ModuleNotFoundError("pymatting is not installed (pip install pymatting==1.1.16)", name="pymatting")
        path = Path(package.submodule_search_locations[0]) / "laplacian" / "cf_laplacian.py"
        spec = importlib.util.spec_from_file_location(_LAPLACIAN_MODULE, path)
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs: numba's cache records the module's name, and a process loading
        # the cached kernel imports that name (unregistered, it recorded "<dynamic>", which no other
        # process could import).
        sys.modules[_LAPLACIAN_MODULE] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_LAPLACIAN_MODULE]
            raise
    return module.cf_laplacian
