"""The Photos panel of the Photomesh sidebar tab (above Reconstruct): folder, Import Photos, progress, Show Masks."""
import bpy

from .ops_photos import active_import

MAX_PROBLEMS = 6


def _draw_progress(layout, run) -> None:
    """The running import's progress bar, stage and Cancel."""
    box = layout.box()
    st = run.runner.state
    text = run.status_text()
    if hasattr(box, "progress"):
        box.progress(factor=st.fraction, type="BAR", text=text)
    else:
        box.label(text=text, icon="TIME")
    box.operator("photomesh.cancel_import", text="Cancel", icon="CANCEL")


def _draw_last_import(layout, photos) -> None:
    """What the last import made: summary, Show Masks, photos left out, error."""
    if photos.message:
        box = layout.box()
        for i, line in enumerate(_wrap(photos.message, 60)):
            box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
    if photos.collection is None:
        return
    box = layout.box()
    box.label(text=photos.collection.name, icon="OUTLINER_COLLECTION")
    if photos.summary:
        box.label(text=photos.summary)
    box.prop(photos, "show_masks", icon="MOD_MASK")
    problems = [p for p in photos.problems.splitlines() if p.strip()]
    for line in problems[:MAX_PROBLEMS]:
        box.label(text=line[:80], icon="INFO")
    if len(problems) > MAX_PROBLEMS:
        box.label(text=f"... and {len(problems) - MAX_PROBLEMS} more")


def _wrap(text: str, width: int) -> list:
    """Split text into lines of at most width characters at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


class PHOTOMESH_PT_photos(bpy.types.Panel):
    """Import a folder of photographs as cameras for Reconstruct"""

    bl_label = "Photos"
    bl_idname = "PHOTOMESH_PT_photos"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Photomesh"
    bl_order = -1

    def draw(self, context) -> None:
        """Photo folder and Import Photos (or the running import's progress), then the last import."""
        layout = self.layout
        photos = context.scene.photomesh_photos
        layout.prop(photos, "folder", text="")
        run = active_import()
        if run is not None:
            _draw_progress(layout, run)
        else:
            layout.operator("photomesh.import_photos", icon="IMAGE_DATA")
        _draw_last_import(layout, photos)


CLASSES = (PHOTOMESH_PT_photos,)
