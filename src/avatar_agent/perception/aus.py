"""Action-unit-like geometry measured on frontalised face-mesh landmarks.

Every function takes the landmarks produced by
:func:`avatar_agent.perception.face_geometry.frontalize`: head rotation,
position and size are already removed, units are the canonical inter-ocular
distance (outer eye corners ~= 1.0), x points to the subject's left, y up and z
towards the viewer. Indices are MediaPipe face-mesh indices; "R"/"L" are the
subject's right/left. Each value grows with the intensity of the action it
approximates. Absolute offsets are person-specific (face shape), so consumers
should compare against the same person's baseline, not across people.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]

# Anchors the muscles below barely move: the eye-corner line and the nose bridge.
_EYE_CORNERS = [33, 133, 362, 263]
_R_EYE = (33, 160, 158, 133, 153, 144)  # outer, upper x2, inner, lower x2
_L_EYE = (263, 387, 385, 362, 380, 373)


def _y(p: Points, idx: list[int]) -> float:
    return float(p[idx, 1].mean())


def _dist(p: Points, a: int, b: int) -> float:
    return float(np.linalg.norm(p[a] - p[b]))


def _eye_line(p: Points) -> float:
    return _y(p, _EYE_CORNERS)


def eye_aspect_ratio(p: Points, eye: tuple[int, int, int, int, int, int]) -> float:
    """Eye aspect ratio (Soukupova & Cech) of one eye: lid gaps over corner distance.

    ``(|upper1-lower2| + |upper2-lower1|) / (2 |outer-inner|)``; ~0.3 open, <0.1 shut.
    """
    o, u1, u2, i, l1, l2 = eye
    width = _dist(p, o, i)
    if width <= 0:
        return 0.0
    return (_dist(p, u1, l2) + _dist(p, u2, l1)) / (2.0 * width)


def eye_openness(p: Points) -> float:
    """Mean eye aspect ratio of both eyes.

    R eye 33, 160, 158, 133, 153, 144; L eye 263, 387, 385, 362, 380, 373.
    """
    return 0.5 * (eye_aspect_ratio(p, _R_EYE) + eye_aspect_ratio(p, _L_EYE))


def inner_brow_raise(p: Points) -> float:
    """AU1 (frontalis, pars medialis): height of the inner brow ends above the eye line.

    mean y of R 107, 55 and L 336, 285 minus mean y of eye corners 33, 133, 362, 263.
    """
    return _y(p, [107, 55, 336, 285]) - _eye_line(p)


def outer_brow_raise(p: Points) -> float:
    """AU2 (frontalis, pars lateralis): height of the outer brow above the eye line.

    mean y of R 70, 46, 63 and L 300, 276, 293 minus the eye-corner line.
    """
    return _y(p, [70, 46, 63, 300, 276, 293]) - _eye_line(p)


def brow_lowerer(p: Points) -> float:
    """AU4 (corrugator/depressor supercilii): brows drawn together and down.

    Negative sum of (a) the gap between the inner brow heads, R 55/107 to L 285/336 in x,
    divided by the inner-canthus gap 133-362 (so face shape cancels), and (b) the height of
    the brow bodies (R 52, 65, 105, 66; L 282, 295, 334, 296) above the eye line. Knitting
    alone still counts when the inner brows are raised at the same time (AU1+4 in sadness).
    """
    canthi = float(p[362, 0] - p[133, 0])
    gap = float(p[[285, 336], 0].mean() - p[[55, 107], 0].mean())
    knit = gap / canthi if canthi > 0 else 0.0
    height = _y(p, [52, 65, 105, 66, 282, 295, 334, 296]) - _eye_line(p)
    return -(knit + height)


def upper_lid_raise(p: Points) -> float:
    """AU5 (levator palpebrae): upper-lid apex above the eye line (R 159, L 386)."""
    return _y(p, [159, 386]) - _eye_line(p)


def cheek_raise(p: Points) -> float:
    """AU6 (orbicularis oculi, orbital): infra-orbital cheek pushed up towards the eye.

    mean y of R 50, 101, 118, 117 and L 280, 330, 347, 346 relative to the eye line.
    """
    return _y(p, [50, 101, 118, 117, 280, 330, 347, 346]) - _eye_line(p)


def lid_tightener(p: Points) -> float:
    """AU7 (orbicularis oculi, palpebral): lower lid raised towards the eye line.

    mean y of lower-lid points R 145, 153 and L 374, 380 relative to the eye line.
    """
    return _y(p, [145, 153, 374, 380]) - _eye_line(p)


def nose_wrinkle(p: Points) -> float:
    """AU9 (levator labii superioris alaeque nasi): nose wings pulled up.

    mean y of alar points R 98, 129, 64 and L 327, 358, 294 relative to the eye line.
    """
    return _y(p, [98, 129, 64, 327, 358, 294]) - _eye_line(p)


def upper_lip_raise(p: Points) -> float:
    """AU10 (levator labii superioris): upper lip pulled towards the nose.

    Negative gap between subnasale 2 and the upper-lip top (0, 37, 267).
    """
    return -(_y(p, [2]) - _y(p, [0, 37, 267]))


def _corner_lift(p: Points) -> float:
    # Corners 61/291 relative to the upper-lip midline 0/13: the upper lip follows
    # the maxilla, so speech (jaw motion) moves this far less than the lower lip.
    return _y(p, [61, 291]) - _y(p, [0, 13])


def lip_corner_puller(p: Points) -> float:
    """AU12 (zygomaticus major): mouth corners pulled up and out.

    Corner lift (mean y of 61, 291 minus mean y of upper-lip midline 0, 13) plus half the
    corner-to-corner width |61-291|.
    """
    return _corner_lift(p) + 0.5 * _dist(p, 61, 291)


def dimpler(p: Points) -> float:
    """AU14 (buccinator): corners tightened back into the cheek.

    Depth of the corners 61, 291 behind the lip midline 0, 17 (z difference).
    """
    return float(p[[0, 17], 2].mean() - p[[61, 291], 2].mean())


def lip_corner_depressor(p: Points) -> float:
    """AU15 (depressor anguli oris): mouth corners pulled down.

    Mean of two corner drops (corners 61, 291): below the upper-lip midline 0, 13, and
    below the eye line 33, 133, 362, 263 after removing 0.2 x the inner-lip gap 13-14,
    the share of corner descent that plain mouth opening in speech causes.
    """
    vs_lip = -_corner_lift(p)
    opening = _y(p, [13]) - _y(p, [14])
    vs_skull = _eye_line(p) - _y(p, [61, 291]) - 0.2 * opening
    return 0.5 * (vs_lip + vs_skull)


def chin_raise(p: Points) -> float:
    """AU17 (mentalis): chin boss pushes the lower lip up.

    Negative distance from the lower-lip bottom 17 to the chin 152, plus the lower-lip
    bottom height relative to the upper-lip top 0 (lower lip pushed up).
    """
    return -_dist(p, 17, 152) + (_y(p, [17]) - _y(p, [0]))


def lip_pucker(p: Points) -> float:
    """AU18 (incisivii labii): mouth narrowed; negative corner distance |61-291|."""
    return -_dist(p, 61, 291)


def lip_stretcher(p: Points) -> float:
    """AU20 (risorius): corners pulled sideways towards the ears.

    Negative horizontal distance from each corner (61, 291) to the jaw contour (R 58, L 288).
    """
    right = float(p[61, 0] - p[58, 0])
    left = float(p[288, 0] - p[291, 0])
    return -(right + left) / 2.0


def lip_funneler(p: Points) -> float:
    """AU22 (orbicularis oris): lips pushed forward into a funnel.

    Protrusion of the lip midline 0, 17 in z ahead of the nose tip 1.
    """
    return float(p[[0, 17], 2].mean() - p[1, 2])


def lip_tightener(p: Points) -> float:
    """AU23 (orbicularis oris): red of the lips narrowed.

    Negative vermilion height: |0-13| (upper lip) + |14-17| (lower lip).
    """
    return -(_dist(p, 0, 13) + _dist(p, 14, 17))


def lip_press(p: Points) -> float:
    """AU24 (orbicularis oris): lips pressed together; negative outer lip height |0-17|."""
    return -_dist(p, 0, 17)


def lips_part(p: Points) -> float:
    """AU25: gap between the inner lip midpoints 13 and 14."""
    return _dist(p, 13, 14)


def jaw_drop(p: Points) -> float:
    """AU26 (jaw depressors): chin 152 below subnasale 2 (vertical distance)."""
    return _y(p, [2]) - _y(p, [152])


def mouth_stretch(p: Points) -> float:
    """AU27 (pterygoids, digastric): mouth opening aspect |13-14| / |78-308| (inner lips)."""
    width = _dist(p, 78, 308)
    return _dist(p, 13, 14) / width if width > 0 else 0.0


def nostril_dilator(p: Points) -> float:
    """AU38 (nasalis, pars alaris): width of the nose wings |64-294|."""
    return _dist(p, 64, 294)


AU_FUNCTIONS: dict[str, Callable[[Points], float]] = {
    "au01_inner_brow_raise": inner_brow_raise,
    "au02_outer_brow_raise": outer_brow_raise,
    "au04_brow_lowerer": brow_lowerer,
    "au05_upper_lid_raise": upper_lid_raise,
    "au06_cheek_raise": cheek_raise,
    "au07_lid_tightener": lid_tightener,
    "au09_nose_wrinkle": nose_wrinkle,
    "au10_upper_lip_raise": upper_lip_raise,
    "au12_lip_corner_puller": lip_corner_puller,
    "au14_dimpler": dimpler,
    "au15_lip_corner_depressor": lip_corner_depressor,
    "au17_chin_raise": chin_raise,
    "au18_lip_pucker": lip_pucker,
    "au20_lip_stretcher": lip_stretcher,
    "au22_lip_funneler": lip_funneler,
    "au23_lip_tightener": lip_tightener,
    "au24_lip_press": lip_press,
    "au25_lips_part": lips_part,
    "au26_jaw_drop": jaw_drop,
    "au27_mouth_stretch": mouth_stretch,
    "au38_nostril_dilator": nostril_dilator,
}
AU_NAMES: tuple[str, ...] = tuple(AU_FUNCTIONS)


def measure_aus(p: Points) -> dict[str, float]:
    """All AU-like features of one frontalised landmark set, in :data:`AU_NAMES` order."""
    return {name: fn(p) for name, fn in AU_FUNCTIONS.items()}
