"""The reference's outer surface: parts buried in its own solid are found and left out of the metrics."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from backend.mesh.metrics import compare_meshes, outer_metrics
from backend.mesh.outer_surface import buried_faces, outer_surface


def sphere(centre: tuple[float, float, float], radius: float, subdivisions: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere's vertices and triangles (outward)."""
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(s.vertices) + np.asarray(centre), np.asarray(s.faces)


def joined(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Parts concatenated into one triangle soup, as an assembly's file holds them."""
    vs, fs, n = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def area(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Triangle areas."""
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)


@pytest.mark.parametrize("flip", [False, True])
def test_two_overlapping_spheres_bury_a_quarter_of_their_area(flip: bool) -> None:
    """Unit spheres one radius apart: each has a cap of height 1/2 (area pi) inside the other, 2 pi of 8 pi."""
    v, f = joined(sphere((0, 0, 0), 1.0), sphere((1, 0, 0), 1.0))
    if flip:
        f = f[:, ::-1]
    buried = buried_faces(v, f)
    a = area(v, f)
    assert a[buried].sum() / a.sum() == pytest.approx(0.25, abs=0.01)
    centroids = v[f].mean(axis=1)
    inside_other = np.where(np.arange(len(f)) < len(f) // 2, np.linalg.norm(centroids - (1, 0, 0), axis=1),
                            np.linalg.norm(centroids, axis=1)) < 1.0
    assert np.mean(buried == inside_other) > 0.99


def test_a_closed_or_open_single_part_has_nothing_buried() -> None:
    v, f = sphere((0, 0, 0), 1.0)
    assert not buried_faces(v, f).any()
    upper = f[v[f].mean(axis=1)[:, 2] > 0]
    assert not buried_faces(v, upper).any()
    assert len(outer_surface(v, f)[1]) == len(f)


def test_outer_metrics_ignore_a_nested_part_the_plain_metrics_count() -> None:
    """A reference with a hidden inner shell scored against its outer shell: perfect only when the shell is left out."""
    outer = sphere((0, 0, 0), 1.0)
    ref_v, ref_f = joined(outer, sphere((0.1, 0, 0), 0.5, subdivisions=3))
    buried = buried_faces(ref_v, ref_f)
    assert buried[len(outer[1]):].all() and not buried[: len(outer[1])].any()
    plain = compare_meshes(ref_v, ref_f, *outer, n_samples=20000)
    kept = outer_metrics(ref_v, ref_f, *outer, n_samples=20000)
    assert kept["chamfer_l1_norm"] < 1e-6 and kept["normal_consistency"] > 0.999
    assert plain["chamfer_l1_norm"] > 0.01
    assert kept["buried_area_fraction"] == pytest.approx(0.2, abs=0.01)  # 0.5^2 of the outer sphere's area


def test_compare_meshes_outer_keeps_diag_and_iou_of_the_whole_reference() -> None:
    """compare_meshes(outer=True): distances to the outer shell only, diag and IoU as without the option."""
    outer = sphere((0, 0, 0), 1.0)
    ref_v, ref_f = joined(outer, sphere((0.1, 0, 0), 0.5, subdivisions=3))
    plain = compare_meshes(ref_v, ref_f, *outer, n_samples=20000)
    kept = compare_meshes(ref_v, ref_f, *outer, n_samples=20000, outer=True)
    assert "reference_outer" not in plain and kept["reference_outer"] is True
    assert kept["buried_area_fraction"] == pytest.approx(0.2, abs=0.01)
    assert kept["chamfer_l1_norm"] < 1e-6 and kept["hausdorff_norm"] < 1e-6 and kept["fscore"] == 1.0
    assert plain["chamfer_l1_norm"] > 0.01 and plain["recall"] < 0.9
    assert kept["diag"] == plain["diag"] and kept["iou"] == plain["iou"] is not None


def test_compare_files_outer_aligns_to_the_outer_surface(tmp_path) -> None:
    """With align and outer, a moved copy of the outer shell comes back onto it and scores ~0."""
    from backend.mesh.metrics import compare_files

    outer = sphere((0, 0, 0), 1.0)
    ref_v, ref_f = joined(outer, sphere((0.1, 0, 0), 0.5, subdivisions=3))
    # a squashed shell, so that the alignment has an orientation to find
    ref_v, shell_v = ref_v * (1.0, 0.7, 0.5), outer[0] * (1.0, 0.7, 0.5)
    trimesh.Trimesh(ref_v, ref_f, process=False).export(tmp_path / "ref.obj")
    moved = trimesh.Trimesh(shell_v, outer[1], process=False)
    moved.apply_transform(trimesh.transformations.euler_matrix(0.2, -0.1, 0.3))
    moved.apply_translation((0.05, -0.03, 0.02))
    moved.export(tmp_path / "moved.obj")
    report = compare_files(tmp_path / "ref.obj", tmp_path / "moved.obj", align=True, outer=True, n_samples=20000)
    assert report["reference_outer"] and report["aligned"]
    assert report["chamfer_l1_norm"] < 1e-4 and report["hausdorff_norm"] < 1e-3


def test_iou_counts_where_an_assembly_s_parts_overlap_as_solid() -> None:
    """Two unit spheres one radius apart against one of them: IoU = V(A) / V(A u B) = 16/27, not the 11/27 parity gives;
    a sphere with a nested shell against the sphere alone: 1."""
    from backend.mesh.meshmath import volumetric_iou

    a = sphere((0, 0, 0), 1.0)
    both = joined(a, sphere((1, 0, 0), 1.0))
    assert volumetric_iou(*both, *a, res=96) == pytest.approx(16 / 27, abs=0.02)
    nested = joined(a, sphere((0.1, 0, 0), 0.5, subdivisions=3))
    assert volumetric_iou(*nested, *a) == pytest.approx(1.0, abs=0.01)
