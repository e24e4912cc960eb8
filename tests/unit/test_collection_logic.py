import io
import re

from PIL import Image

from worker.faces import Box, Reference
from worker.recognition.collection import IndexedFace, external_id, plan_sync
from worker.recognition.crops import MIN_CROP_SIDE_PX, crop_face
from worker.recognition.strategies import prefer_collection

ALLOWED = re.compile(r"^[a-zA-Z0-9_.\-:]+$")


def test_external_ids_are_valid_for_any_key_and_change_with_the_photo() -> None:
    keys = [
        "references/a.jpg",
        "references/Zoë & co/ü 1+2%.jpg",
        "references/" + "x" * 1000 + ".png",
    ]
    for key in keys:
        ext = external_id(Reference("l", key, '"9b2cf535f27731c974343645a3985328-12"'))
        assert ALLOWED.match(ext)
        assert len(ext) <= 255
    a1 = external_id(Reference("a", "references/a.jpg", "e1"))
    assert a1 != external_id(Reference("a", "references/a.jpg", "e2"))
    assert a1 != external_id(Reference("a", "references/b.jpg", "e1"))


def test_sync_plan_indexes_new_and_replaced_and_deletes_stale() -> None:
    kept = Reference("a", "references/a.jpg", "e1")
    replaced_old = Reference("b", "references/b.jpg", "old")
    replaced_new = Reference("b", "references/b.jpg", "new")
    added = Reference("c", "references/c.jpg", "e3")
    gone = Reference("d", "references/d.jpg", "e4")
    indexed = [
        IndexedFace("f-a", external_id(kept)),
        IndexedFace("f-b", external_id(replaced_old)),
        IndexedFace("f-d", external_id(gone)),
        IndexedFace("f-x", "not-ours"),
    ]
    plan = plan_sync((kept, replaced_new, added), indexed)
    assert plan.to_index == (replaced_new, added)
    assert sorted(plan.to_delete) == ["f-b", "f-d", "f-x"]
    assert plan_sync((kept,), [IndexedFace("f-a", external_id(kept))]).to_index == ()


def test_break_even() -> None:
    assert prefer_collection(references=100, faces=3)
    assert prefer_collection(references=10, faces=1)
    assert not prefer_collection(references=12, faces=12)
    assert not prefer_collection(references=9, faces=1)  # too few to be worth a collection
    assert not prefer_collection(references=1, faces=5)


def test_crop_keeps_the_face_with_margin_and_scales_small_faces_up() -> None:
    image = Image.new("RGB", (1000, 500), "white")
    image.paste((200, 40, 40), (100, 100, 150, 150))  # a 50 px "face"
    image.paste((40, 40, 200), (700, 100, 900, 300))
    data = io.BytesIO()
    image.save(data, format="PNG")
    crop = Image.open(io.BytesIO(crop_face(data.getvalue(), Box(0.1, 0.2, 0.05, 0.1))))
    assert crop.format == "JPEG"
    assert min(crop.size) >= MIN_CROP_SIDE_PX
    centre = crop.getpixel((crop.width // 2, crop.height // 2))
    assert centre[0] > 150 and centre[2] < 100, "the crop is centred on the red face"
    colours = crop.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert not any(b > 150 and r < 100 for _, (r, g, b) in colours), "the other face is left out"
