"""`protection_verdict`: the one verdict that the page's headline, colour and tables and the CLI show."""

from __future__ import annotations

from advpriv.faces.verdicts import protection_verdict

ATTACKED = ["dlib", "facenet"]


def copies(*per_copy: dict[str, bool]) -> dict[str, dict]:
    """Versions png, jpeg85, half: one face each, with each judge's `matches` as given."""
    names = ["png", "jpeg85", "half"]
    return {name: {"success": False, "summary": "", "faces": [{"judges": {j: {"matches": m} for j, m in c.items()}}]}
            for name, c in zip(names, per_copy)}


def test_every_judge_on_every_copy_is_all():
    fooled = {"dlib": False, "mobilefacenet": False}
    verdict = protection_verdict(True, copies(fooled, fooled, fooled), ATTACKED)
    assert verdict["case"] == "all" and verdict["missed"] == []
    assert verdict["headline"] == "Protected from every judge, on every copy."
    assert verdict["detail"] == ("Checked by dlib, mobilefacenet: as written (png), after JPEG quality 85, "
                                 "after a half-size resize.")
    assert [c["case"] for c in verdict["copies"]] == ["all", "all", "all"]


def test_an_unseen_judge_that_still_recognises_makes_it_attacked_only_and_is_named():
    seen = {"dlib": False, "mobilefacenet": True}
    verdict = protection_verdict(True, copies(seen, seen, {"dlib": False, "mobilefacenet": False}), ATTACKED)
    assert verdict["case"] == "attacked"
    assert verdict["headline"] == "Protected from the attacked models only."
    assert verdict["detail"] == ("Faces still recognised: mobilefacenet 1/1 as written (png), "
                                 "1/1 after JPEG quality 85.")
    assert [c["case"] for c in verdict["copies"]] == ["attacked", "attacked", "all"]
    # The same counts give the same word on every copy (the page once said Yes and No for "0/1 1/1").
    png, jpeg = verdict["copies"][:2]
    assert png["judges"] == jpeg["judges"] and png["case"] == jpeg["case"]


def test_an_attacked_model_recognising_a_copy_is_attacked_only_but_on_the_written_file_is_none():
    fooled = {"dlib": False}
    after_jpeg = protection_verdict(True, copies(fooled, {"dlib": True}, fooled), ATTACKED)
    assert after_jpeg["case"] == "attacked" and "dlib 1/1 after JPEG quality 85" in after_jpeg["detail"]
    written = protection_verdict(True, copies({"dlib": True}, fooled, fooled), ATTACKED)
    assert written["case"] == "none" and written["headline"] == "Not protected."
    assert written["detail"] == "Faces still recognised: dlib 1/1 as written (png)."


def test_attacked_models_missing_the_goal_is_none_even_when_the_judges_are_fooled():
    fooled = {"dlib": False}
    verdict = protection_verdict(False, copies(fooled, fooled, fooled), ATTACKED)
    assert verdict["case"] == "none"
    assert verdict["detail"] == "The attacked models (dlib, facenet) do not reach the goal on the file as written."


def test_impersonation_speaks_of_matching_the_target():
    match = {"dlib": True, "mobilefacenet": True}
    reached = protection_verdict(True, copies(match, match, match), ATTACKED, impersonate=True)
    assert reached["case"] == "all" and reached["goal"] == "impersonate"
    assert reached["headline"] == "Recognised as the target by every judge, on every copy."
    failed = protection_verdict(False, copies({"dlib": False}, {"dlib": False}, {"dlib": False}), ATTACKED,
                                impersonate=True)
    assert failed["case"] == "none" and failed["headline"] == "Not recognised as the target."
    assert failed["detail"] == ("Faces matching the target: dlib 0/1 as written (png), 0/1 after JPEG quality 85, "
                                "0/1 after a half-size resize.")
    assert "recognised:" not in failed["detail"]


def test_a_classifier_is_its_own_judge():
    versions = {"png": {"success": True, "summary": "tiger", "faces": []},
                "jpeg85": {"success": False, "summary": "tabby", "faces": []}}
    verdict = protection_verdict(True, versions, ["efficientnet-lite0"])
    assert verdict["goal"] == "classifier" and verdict["case"] == "attacked"
    assert verdict["headline"] == "Protected on the file as written only."
    assert verdict["detail"] == "It sees \u201ctiger\u201d as written (png), \u201ctabby\u201d after JPEG quality 85."
