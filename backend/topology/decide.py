"""When the topology stage runs (`topology` setting auto / on / off) and whether its mesh is kept."""
from __future__ import annotations

import numpy as np
import torch

from backend.optim.render import render_gbuffer

AUTO_DISAGREEMENT = 0.08  # auto runs the stage when some view's silhouette disagrees with its mask more than this
ACCEPT_SLACK = 0.005  # the stage's mesh may disagree this much more on average (its 64³ grid is coarser)


def silhouette_disagreement(rasterizer: object, vertices: np.ndarray, faces: np.ndarray, mvps: list[torch.Tensor],
                            masks: list[torch.Tensor], sizes: list[tuple[int, int]]) -> np.ndarray:
    """Per view, the share of pixels where the mesh's silhouette and the mask disagree: XOR over union."""
    device = mvps[0].device
    v = torch.tensor(np.asarray(vertices), dtype=torch.float32, device=device)
    f = torch.tensor(np.asarray(faces), dtype=torch.int32, device=device)
    out = np.zeros(len(mvps))
    with torch.no_grad():
        for i, (mvp, mask, size) in enumerate(zip(mvps, masks, sizes)):
            hit = render_gbuffer(rasterizer, v, f, mvp[None], size).hit[0]
            target = mask[..., 0] > 0.5
            union = int((hit | target).sum())
            out[i] = int((hit ^ target).sum()) / union if union else 0.0
    return out


def should_run(setting: str, start_from_points_or_initial_mesh: bool, masks_auto: bool, genus: int,
               worst_view_disagreement: float, hull_genus: int | None = None) -> tuple[bool, str]:
    """Whether the stage runs, and why (result.json `topology.reason`). `hull_genus`: the genus of the start mesh
    when it is the visual hull of given masks seen by given (not refined) cameras, else None.

    A handle the mesh shares with such a hull is carved by the masks themselves (every point of its tunnel lies
    outside some view's mask), so the stage, judged by the same silhouettes, cannot remove it; only a handle the
    first phase made, or one under a disagreeing view, is worth its ~100 steps."""
    if setting == "off":
        return False, "topology is off: the surface keeps the genus of its starting mesh"
    if setting == "on":
        return True, "topology is on"
    if start_from_points_or_initial_mesh:
        return True, "the start mesh came from the initial_mesh file or a point cloud, whose genus may be wrong"
    if masks_auto:
        return True, "the masks were made automatically: a missed gap or a blob can fix the wrong genus"
    if genus > 0:
        if genus == hull_genus and worst_view_disagreement <= AUTO_DISAGREEMENT:
            return False, (f"auto: genus {genus}, the visual hull's own (its handles are carved by the given masks), "
                           f"every view's silhouette within {100 * AUTO_DISAGREEMENT:g} % of its mask")
        return True, f"the mesh has genus {genus} after the first phase: a handle may be spurious"
    if worst_view_disagreement > AUTO_DISAGREEMENT:
        return True, (f"a view's silhouette disagrees with its mask on {100 * worst_view_disagreement:.1f} % of the "
                      f"pixels (over {100 * AUTO_DISAGREEMENT:g} %)")
    return False, (f"auto: a genus-0 mesh from the visual hull of given masks, every view's silhouette within "
                   f"{100 * AUTO_DISAGREEMENT:g} % of its mask")


def accept(genus_before: int, genus_after: int, disagreement_before: float,
           disagreement_after: float) -> tuple[bool, str]:
    """Keep the stage's mesh when its genus changed and its mean silhouette disagreement is not worse."""
    if genus_after == genus_before:
        return False, f"the genus stayed {genus_before}: the mesh stage continues from its own mesh"
    if disagreement_after > disagreement_before + ACCEPT_SLACK:
        return False, (f"genus {genus_before} -> {genus_after}, but the silhouettes disagree more "
                       f"({100 * disagreement_before:.2f} % -> {100 * disagreement_after:.2f} %)")
    return True, (f"genus {genus_before} -> {genus_after}, silhouette disagreement {100 * disagreement_before:.2f} % "
                  f"-> {100 * disagreement_after:.2f} %")
