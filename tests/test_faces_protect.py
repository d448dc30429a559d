"""`protect_faces`: only the faces' region changes, every judge re-checks every face (both of a group photo), margins
reach the objective."""

from __future__ import annotations

import re
from functools import partial

import pytest
import torch

pytest.importorskip("dlib", reason="face protection needs dlib-bin (pip install dlib-bin)")

from conftest import shared_path  # noqa: E402

from advpriv.protect import face_protect  # noqa: E402
from advpriv.faces import find_faces  # noqa: E402
from advpriv.faces.judges import DlibJudge  # noqa: E402
from advpriv.faces.region import face_region  # noqa: E402
from advpriv.faces.specs import load_judge  # noqa: E402
from advpriv.faces.verdicts import summary_line  # noqa: E402
from advpriv.images import load_image  # noqa: E402
from advpriv.protect.files import protect_encoded  # noqa: E402
from advpriv.protect.mnd import MNDConfig  # noqa: E402
from advpriv.visibility import VisibilityBudget  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    skimage_data = pytest.importorskip("skimage.data")
    return torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1).float() / 255


def _assert_only_region_changed(photo: torch.Tensor, **options) -> None:
    region = face_protect.jpeg_aligned(face_region(find_faces(photo), tuple(photo.shape[-2:])))
    assert region.box != (0, 0, photo.shape[1] - 1, photo.shape[2] - 1), "the test needs a region smaller than the photo"
    result = face_protect.protect_faces(photo, **options)
    outside = torch.ones(photo.shape[-2:], dtype=torch.bool)
    outside[region.top : region.bottom + 1, region.left : region.right + 1] = False
    assert torch.equal(result.image[:, outside], photo[:, outside])
    assert (result.image != photo).any(), "the faces were not perturbed at all"
    assert torch.equal(result.image, result.image.mul(255).round().div(255)), "not on 8-bit levels"


def test_only_the_face_region_changes_pgd(astronaut: torch.Tensor) -> None:
    _assert_only_region_changed(astronaut, method="pgd", eps=2 / 255, steps=3)


def test_only_the_face_region_changes_mnd() -> None:
    photo = load_image(shared_path("data", "faces-wild", "images", "006155.jpg"))  # 203×249, region 129×129
    _assert_only_region_changed(photo, config=MNDConfig(steps=50))


def test_both_faces_of_a_group_photo_dodge_real_dlib_in_the_saved_file_each_inside_its_budget() -> None:
    photo = load_image(shared_path("data", "faces-wild", "images", "008064.jpg"))  # 1331×1282, two faces
    budget = VisibilityBudget(min_ssim=0.95, max_ciede2000=1.5, max_change=4.6)
    protector = partial(face_protect.protect_faces, visibility=budget)
    _, report = protect_encoded(photo, protector, "png", "008064.jpg")
    assert report.before == "2 faces" and len(report.faces) == 2
    assert report.success and report.after == "dlib: 0/2 recognised", report.after
    assert report.metrics["psnr"] > 40 and report.metrics["ssim"] > 0.98
    for face in report.faces:  # the change sits on the faces, and each face's own budget bounds it
        assert report.metrics["psnr"] - 20 < face["quality"]["psnr"] < report.metrics["psnr"]
        assert budget.min_ssim <= face["quality"]["ssim"] <= report.metrics["ssim"] + 1e-6
        assert face["quality"]["ciede2000"] <= budget.max_ciede2000
        assert face["quality"]["ciede2000_p99"] <= budget.max_change


def test_recheck_has_one_entry_per_face_and_judge() -> None:
    photo = load_image(sorted(shared_path("data", "celeba-id", "10010").glob("*.jpg"))[0])
    mobilefacenet = load_judge(f"{shared_path('models', 'mobilefacenet.onnx')}:threshold=0.79")
    result = face_protect.protect_faces(photo, judges=[DlibJudge(), mobilefacenet], config=MNDConfig(steps=20))
    check = result.recheck(result.image)
    assert re.fullmatch(r"dlib: [01]/1 recognised; mobilefacenet: [01]/1 recognised", check.summary), check.summary
    (face,) = check.faces
    assert len(face["box"]) == 4 and set(face["judges"]) == {"dlib", "mobilefacenet"}
    assert set(face["quality"]) == {"psnr", "ssim", "vif", "ciede2000", "ciede2000_face", "ciede2000_p99"}
    for name, verdict in face["judges"].items():
        assert set(verdict) == {"detected", "distance", "matches", "threshold"}
        if verdict["detected"]:
            assert verdict["matches"] == (verdict["distance"] < verdict["threshold"])
    clean = result.recheck(photo)
    assert clean.summary == "dlib: 1/1 recognised; mobilefacenet: 1/1 recognised" and not clean.success


def test_impersonation_matches_mean_the_target_identity() -> None:
    people = shared_path("data", "celeba-id")
    photo = load_image(sorted((people / "10010").glob("*.jpg"))[0])
    target = [load_image(p) for p in sorted((people / "10036").glob("*.jpg"))[:3]]
    result = face_protect.protect_faces(photo, mode="impersonate", as_images=target, method="fgsm", eps=1 / 255)
    check = result.recheck(photo)  # the clean photo does not look like the target
    assert check.summary == "dlib: 0/1 match the target"
    (verdict,) = [face["judges"]["dlib"] for face in check.faces]
    assert verdict["detected"] and verdict["distance"] > 0.6 and not verdict["matches"]
    assert face_protect.protect_faces(target[1], mode="impersonate", as_images=target, method="fgsm",
                                      eps=1 / 255).recheck(target[1]).summary == "dlib: 1/1 match the target"  # fmt: skip


def test_margin_and_embedders_reach_the_objective(monkeypatch: pytest.MonkeyPatch, astronaut: torch.Tensor) -> None:
    seen = {}
    real = face_protect.face_objective

    def spy(*args, **kwargs):
        objective, faces = real(*args, **kwargs)
        seen["margin"], seen["faces"] = objective.margin, faces
        return objective, faces

    monkeypatch.setattr(face_protect, "face_objective", spy)
    face_protect.protect_faces(astronaut, margin=0.35, method="fgsm", eps=1 / 255)
    assert seen["margin"] == 0.35 and len(seen["faces"]) == len(find_faces(astronaut))


def test_summary_line_counts_per_judge() -> None:
    verdict = lambda matches: {"detected": True, "distance": 0.1, "matches": matches, "threshold": 0.6}  # noqa: E731
    faces = [
        {"box": [0, 0, 9, 9], "judges": {"dlib": verdict(False), "mfn": verdict(True)}},
        {"box": [20, 0, 29, 9], "judges": {"dlib": verdict(False)}},
    ]
    assert summary_line(faces, ["dlib", "mfn"]) == "dlib: 0/2 recognised; mfn: 1/1 recognised (1 not found)"
    assert summary_line(faces[:1], ["dlib"], impersonate=True) == "dlib: 0/1 match the target"


def test_aligned_faces_are_judged_on_the_whole_image() -> None:
    photo = load_image(sorted(shared_path("data", "celeba-id", "10010").glob("*.jpg"))[0])
    result = face_protect.protect_faces(photo, aligned=True, method="fgsm", eps=1 / 255)
    check = result.recheck(photo)
    (face,) = check.faces
    assert face["box"] == [0, 0, photo.shape[2] - 1, photo.shape[1] - 1]
    assert face["judges"]["dlib"]["matches"] and check.summary == "dlib: 1/1 recognised"


def test_faces_scanned_side_by_side_are_those_found_one_at_a_time():
    from advpriv.faces import detect

    folder = shared_path("data", "faces-wild", "images")
    photos = [detect.to_uint8(load_image(folder / name)) for name in ("008064.jpg", "006155.jpg", "000989.jpg")]
    detect._boxes_seen.clear()
    alone = [[(b.left(), b.top(), b.right(), b.bottom()) for b in detect.face_boxes(p)] for p in photos]
    for _ in range(3):
        detect._boxes_seen.clear()
        detect.scan_faces(photos)
        assert len(detect._boxes_seen) == 3
        assert [[(b.left(), b.top(), b.right(), b.bottom()) for b in detect.face_boxes(p)] for p in photos] == alone
