"""What a reader's session may render: no truth, no model output (unaided arm), no other reader,
no case ids or file names; and pages outside the reader's role are refused.

Checks walk every rendered element's text (markdown, captions, alerts, metrics, tables, progress
texts), not just the navigation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import db
from core.data.ingest import ingest_folder
from core.data.labels import CLASSES
from core.reader_study import desk, reading, viewing
from core.reader_study.arms import reader_arms
from core.reader_study.pixel_transport import decompress_pixels, unpack
from dashboard.auth import Identity
from dashboard.reading_desk import UI
from db.clock import now_iso
from tests.dashboard.reader_study_helpers import (
    ADMIN_SECRET,
    answer,
    current_case,
    current_position,
    desk_header,
    desk_message,
    go,
    rendered_text,
    session,
    sign_in_reader,
)

pytestmark = pytest.mark.timeout(600)
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
ADMIN_PAGES = (
    "study_admin.py",
    "study_analysis.py",
    "overview.py",
    "cv_results.py",
    "case_browser.py",
)
OWN_ANSWER = re.compile(
    r"^(Stored answer|Answer): \*\*(none yet|SCC [\d.]+% · AC [\d.]+% · ASC [\d.]+%)\*\*$"
)
# Model probabilities per class, distinct and recognisable when rendered as percentages
PROBS = {"SCC": 0.61, "AC": 0.27, "ASC": 0.12}


@pytest.fixture(scope="module")
def blinded(small_cohort_dir, tmp_path_factory):
    """A study of 3 cases (one per class), unaided + aided arms (no washout), a model run with
    predictions, the reader under test and another reader who has already read every case."""
    path = tmp_path_factory.mktemp("blinding") / "blind.db"
    conn = db.connect(path)
    try:
        ingest_folder(small_cohort_dir, conn=conn, progress=False)
        cases = db.cases_frame(conn)
        chosen = [cases.loc[cases["label"] == c, "case_id"].iloc[0] for c in CLASSES]
        run_id = db.create_run(
            conn, model="cnn", mode="features", config={}, seed=0, data_hash=None,
            device="cpu", weights="none", code_version=None, packages=None,
        )  # fmt: skip
        db.save_predictions(
            conn,
            run_id,
            0,
            [{"case_id": c, **{f"p_{k}": v for k, v in PROBS.items()}} for c in chosen],
        )
        study_id = db.create_study(
            conn, name="Blinded", case_ids=chosen, arms=("unaided", "aided"), model_run_id=run_id
        )
        me, code = db.add_reader(conn, study_id, "Reader Under Test")
        other, _ = db.add_reader(conn, study_id, "Zed Otherreader")
        now = datetime.now(UTC)
        for i, case_id in enumerate(chosen):
            db.submit_read(
                conn, study_id=study_id, reader_id=other, case_id=case_id, arm="unaided",
                label="ASC", confidences={"SCC": 0.1, "AC": 0.2, "ASC": 0.7},
                shown_at=now - timedelta(seconds=30 + i), submitted_at=now,
            )  # fmt: skip
        all_cases = db.cases_frame(conn)
    finally:
        conn.close()
    return {
        "path": path,
        "study_id": study_id,
        "reader_id": me,
        "code": code,
        "run_id": run_id,
        "case_ids": list(all_cases["case_id"]),
        "display_ids": list(all_cases["display_id"]),
        "chosen": chosen,
    }


@pytest.fixture
def env(blinded, monkeypatch):
    monkeypatch.setenv("CERVIXSCOPE_DB", str(blinded["path"]))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    return blinded


def _forbidden(blinded) -> list[re.Pattern]:
    words = [*CLASSES, "truth", "true", "label", "Zed Otherreader", "Otherreader", "p_", "c_SCC"]
    patterns = [re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE) for w in words]
    patterns += [re.compile(re.escape(c)) for c in blinded["case_ids"]]
    patterns += [re.compile(r"\.dcm\b", re.I), re.compile(r"manifest", re.I), re.compile("p_")]
    patterns += [re.compile(rf"{round(100 * p)}\s*%") for p in PROBS.values()]
    patterns += [re.compile(rf"^{re.escape(str(p))}$") for p in PROBS.values()]  # as sent
    return patterns


def _assert_blind(at: AppTest, blinded) -> None:
    assert not at.exception, at.exception
    # the reader's own answer is echoed back to them ("Stored answer: SCC 90% ..."): not a leak
    texts = [t for t in rendered_text(at) if not OWN_ANSWER.match(t)]
    assert texts, "nothing rendered: the check would be vacuous"
    for text in texts:
        for pattern in _forbidden(blinded):
            assert not pattern.search(text), f"reader page shows {pattern.pattern!r} in {text!r}"


def test_unaided_reader_session_renders_no_truth_model_or_other_reader(env):
    at = sign_in_reader(session(), env["code"])
    assert current_position(at) == 1
    _assert_blind(at, env)
    # only display ids name the cases
    assert current_case(at)["display_id"] in env["display_ids"]
    # every case of the worklist, unread and after answering, and after going back
    answer(at, "SCC", "certain")
    _assert_blind(at, env)
    go(at, current_position(at) + 1)
    _assert_blind(at, env)
    go(at, current_position(at) - 1)
    _assert_blind(at, env)
    shown = [w[1] for w in desk_header(at)["work"]]
    assert all(not any(c in o for c in env["case_ids"]) for o in shown)
    assert not any(o.startswith("Zed") for o in shown)


def test_aided_arm_shows_model_output_unaided_never(env):
    study, me = env["study_id"], env["reader_id"]
    for position in range(1, 4):
        case = reading.case_for_reader(study, me, "unaided", position, with_gradcam=False)
        assert case.model_probabilities is None and case.gradcam is None
        assert not hasattr(case, "case_id")
        if case.answer_label is None:
            reading.submit_answer(
                study,
                me,
                "unaided",
                position,
                "AC",
                {"SCC": 0, "AC": 1, "ASC": 0},
                now_iso(),
            )
    aided = reading.case_for_reader(study, me, "aided", 1, with_gradcam=False)
    assert aided.model_probabilities == pytest.approx(PROBS)
    # the aided page shows them (the unaided arm must not: checked above); with every unaided
    # case read and no washout, the aided arm is the only one open
    at = sign_in_reader(session(), env["code"])
    assert not at.exception, at.exception
    assert current_case(at)["model"] == pytest.approx(PROBS)
    # the same walk sees the probabilities here, so its silence in the unaided arm means they are
    # absent, not unseen
    assert any(text == "0.61" for text in rendered_text(at))


def test_unaided_answers_lock_once_the_aided_arm_opens(env):
    conn = db.connect()
    try:
        study = db.create_study(
            conn, name="Lock", case_ids=env["chosen"], arms=("unaided", "aided"),
            model_run_id=env["run_id"],
        )  # fmt: skip
        me, code = db.add_reader(conn, study, "Locked Reader")
    finally:
        conn.close()

    def submit(position: int, arm: str = "unaided") -> int:
        ac = {"SCC": 0, "AC": 1, "ASC": 0}
        return reading.submit_answer(study, me, arm, position, "AC", ac, now_iso())

    submit(1)
    submit(2)
    submit(1)  # a change before the aided arm opens is allowed
    submit(3)  # the last unaided read: no washout, so the aided arm opens now
    statuses = {a.arm: a for a in reader_arms(study, me)}
    assert statuses["aided"].open
    assert not statuses["unaided"].open and "locked" in statuses["unaided"].reason
    with pytest.raises(ValueError, match="unaided answers are locked once the AI-aided arm"):
        submit(2)
    submit(1, "aided")  # the aided arm itself takes answers
    # the page shows why instead of an unaided answer form
    at = sign_in_reader(session(), code)
    assert not at.exception, at.exception
    assert any("unaided answers are locked" in i.value for i in at.info)
    assert not [r for r in at.radio if str(r.key).startswith("type:unaided:")]
    assert current_position(at) == 2  # the first unread aided case


def test_unaided_answers_stay_editable_during_the_washout_until_an_aided_read(env):
    conn = db.connect()
    try:
        study = db.create_study(
            conn, name="Washout lock", case_ids=env["chosen"], arms=("unaided", "aided"),
            model_run_id=env["run_id"], washout_days=14,
        )  # fmt: skip
        me, _ = db.add_reader(conn, study, "Washout Reader")
    finally:
        conn.close()
    for position in (1, 2, 3):
        reading.submit_answer(
            study, me, "unaided", position, "SCC", {"SCC": 1, "AC": 0, "ASC": 0}, now_iso()
        )
    statuses = {a.arm: a for a in reader_arms(study, me)}
    assert statuses["unaided"].open and not statuses["aided"].open
    later = datetime.now(UTC) + timedelta(days=15)
    statuses = {a.arm: a for a in reader_arms(study, me, now=later)}
    assert statuses["aided"].open and not statuses["unaided"].open
    # an aided read on record (e.g. imported, or the washout shortened later) locks it too
    conn = db.connect()
    try:
        db.submit_read(
            conn, study_id=study, reader_id=me, case_id=env["chosen"][0], arm="aided",
            label="AC", confidences={"SCC": 0.2, "AC": 0.7, "ASC": 0.1},
            shown_at=now_iso(),
        )  # fmt: skip
    finally:
        conn.close()
    assert not {a.arm: a for a in reader_arms(study, me)}["unaided"].open
    with pytest.raises(ValueError, match="unaided answers are locked"):
        reading.submit_answer(
            study, me, "unaided", 1, "AC", {"SCC": 0, "AC": 1, "ASC": 0}, now_iso()
        )


def test_washout_keeps_aided_arm_closed_until_it_has_passed(env, monkeypatch):
    arms = reader_arms(env["study_id"], env["reader_id"])
    assert [a.arm for a in arms] == ["unaided", "aided"]
    conn = db.connect()
    try:
        conn.conn.execute(
            "UPDATE studies SET washout_days = 14 WHERE study_id = ?", (env["study_id"],)
        )
        conn.conn.commit()
        n_read = len(db.reader_reads_frame(conn, env["study_id"], env["reader_id"]))
    finally:
        conn.close()
    try:
        statuses = {a.arm: a for a in reader_arms(env["study_id"], env["reader_id"])}
        if n_read < 3:  # unaided arm unfinished: the aided arm waits for it
            assert not statuses["aided"].open and "Finish the unaided" in statuses["aided"].reason
        else:
            assert not statuses["aided"].open and "washout" in statuses["aided"].reason
            later = datetime.now(UTC) + timedelta(days=15)
            opened = {a.arm: a for a in reader_arms(env["study_id"], env["reader_id"], now=later)}
            assert opened["aided"].open
    finally:
        conn = db.connect()
        conn.conn.execute(
            "UPDATE studies SET washout_days = 0 WHERE study_id = ?", (env["study_id"],)
        )
        conn.conn.commit()
        conn.close()


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_pages_are_not_in_a_readers_or_anonymous_navigation(env, page):
    reader = sign_in_reader(session(), env["code"])
    with pytest.raises(ValueError):
        reader.switch_page(f"../pages/{page}")
    with pytest.raises(ValueError):
        session().switch_page(f"../pages/{page}")


@pytest.mark.parametrize(
    "identity",
    [None, Identity(role="reader", name="x", reader_id=1, study_id=1)],
    ids=["anonymous", "reader"],
)
@pytest.mark.parametrize("page", ["study_admin.py", "study_analysis.py"])
def test_admin_page_opened_directly_refuses_to_render(env, page, identity):
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
    if identity is not None:
        at.session_state["auth"] = identity
    at.run()
    assert [e.value for e in at.error] == [
        "You do not have access to this page. Sign in with the right role first."
    ]
    assert not at.dataframe and not at.title


def test_reading_page_refuses_admin_and_anonymous(env):
    at = AppTest.from_file(str(ROOT / "pages" / "reading.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    assert any("do not have access" in e.value for e in at.error)
    assert not at.subheader


def test_reading_page_for_an_unknown_study_shows_one_error_line(env):
    at = AppTest.from_file(str(ROOT / "pages" / "reading.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="reader", name="x", reader_id=1, study_id=999_999)
    at.run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["study 999999 is not in the database"]
    assert not at.subheader


def test_sign_in_with_a_broken_database_path_shows_one_error_line(env, tmp_path, monkeypatch):
    monkeypatch.setenv("CERVIXSCOPE_DB", str(tmp_path / "missing-folder" / "x.db"))
    at = sign_in_reader(session(), env["code"])
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "missing-folder" in at.error[0].value


def test_fallback_crop_is_the_crop_the_model_was_given(env):
    """Without a crop cache the reader's crop is cut from the slice: it must equal ingestion's."""
    from core.data.dicom_io import read_pixels

    conn = db.connect()
    try:
        images = db.images_frame(conn, env["chosen"][0]).sort_values("image_id")
        data_dir = Path(str((db.latest_ingestion(conn) or {})["data_dir"]))
    finally:
        conn.close()
    row = images.iloc[0]
    cached = viewing.cached_crop(row)  # what ingestion stored for the model
    assert cached is not None
    path = Path(str(row["source_path"] if "source_path" in row.index else row["path"]))
    image = read_pixels(path if path.is_absolute() else data_dir / path, frame=int(row["frame"]))
    roi = viewing.image_roi(row)
    crop = viewing.crop_roi(np.asarray(image.array, dtype=np.float32), roi, size=cached.shape[0])
    np.testing.assert_allclose(crop, cached, atol=1e-5)


def test_a_case_shows_an_unrelated_id_in_the_aided_arm(env):
    """Memory of an ID must not bridge the washout: each arm names the same case differently."""
    study, me = env["study_id"], env["reader_id"]
    unaided = reading.worklist_status(study, me, "unaided")
    aided = reading.worklist_status(study, me, "aided")
    assert set(unaided["display_id"]) <= set(env["display_ids"])  # the case's own display ID
    assert not set(aided["display_id"]) & set(env["display_ids"])
    assert aided["display_id"].nunique() == len(aided)
    shown = reading.case_for_reader(study, me, "aided", 1, with_images=False)
    assert shown.display_id == aided.loc[aided["position"] == 1, "display_id"].item()
    again = reading.worklist_status(study, me, "aided")
    assert again["display_id"].tolist() == aided["display_id"].tolist()  # stable per study


def test_a_closed_aided_arm_takes_no_answer_even_by_direct_call(env):
    conn = db.connect()
    try:
        study = db.create_study(
            conn, name="Closed aided", case_ids=env["chosen"], arms=("unaided", "aided"),
            model_run_id=env["run_id"], washout_days=14,
        )  # fmt: skip
        me, _ = db.add_reader(conn, study, "Early Reader")
    finally:
        conn.close()
    answer = ("AC", {"SCC": 0, "AC": 1, "ASC": 0})
    with pytest.raises(ValueError, match="Finish the unaided reads first"):
        reading.submit_answer(study, me, "aided", 1, *answer, now_iso())
    for position in (1, 2, 3):
        reading.submit_answer(study, me, "unaided", position, *answer, now_iso())
    with pytest.raises(ValueError, match="washout"):
        reading.submit_answer(study, me, "aided", 1, *answer, now_iso())


SLICE_KEYS = desk.SLICE_FIELDS
PRESET_KEYS = {"key", "name", "center", "width"}
MESSAGE_KEYS = {"v", "arm", "desk", "acks", "refused", "status", "start", "work", "cases", "blobs",
                "message", "localise", *desk.constants(UI)}  # fmt: skip


def _assert_message_blind(message: bytes, blinded, *, arm: str) -> list[dict]:
    """One message the reading page sends: only its own fields, constants that are the same for
    every reader, a worklist of display IDs, and case entries that each pass
    :func:`_assert_entry_blind` and name no other case; the tail is pixels. Returns the entries."""
    header, blobs = unpack(message)
    assert set(header) <= MESSAGE_KEYS, sorted(set(header) - MESSAGE_KEYS)
    assert {k: header[k] for k in desk.constants(UI)} == desk.constants(UI)
    assert header["arm"] == arm and header.get("localise") in (None, True, False)
    for position, shown, read in header.get("work", []):
        assert isinstance(position, int) and isinstance(read, bool)
        _assert_words([shown], blinded)
    others = {w[1] for w in header.get("work", [])}
    for entry in header.get("cases", []):
        _assert_entry_blind(entry, blobs, blinded, arm=arm)
        words = [t for t in _strings(entry) if t != entry["display_id"]]
        assert not others & set(words), "a case entry names another case"
    return header.get("cases", [])


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return [] if value is None or isinstance(value, bool | int | float) else [str(value)]


def _assert_words(words, blinded) -> None:
    for text in words:
        for pattern in _forbidden(blinded):
            assert not pattern.search(text), f"the desk sends {pattern.pattern!r} in {text!r}"


def _assert_entry_blind(entry: dict, blobs: list[bytes], blinded, *, arm: str) -> None:
    """Only the entry's whitelisted fields, no text that could carry a case, a label or model
    output outside the aided arm; the pictures are pixels (slices as compressed 16-bit values,
    crop and overlay as PNG data URLs)."""
    assert set(entry) == desk.CASE_FIELDS, sorted(entry)
    for s in entry["slices"]:
        assert set(s) == SLICE_KEYS
        if s["blob"] is not None:  # a case sent by its first slice has the others to come
            assert decompress_pixels(blobs[s["blob"]], s["h"], s["w"]).shape == (s["h"], s["w"])
    assert entry["slices"] == [] or entry["slices"][entry["start"]]["blob"] is not None
    assert all(set(p) == PRESET_KEYS and p["name"] in {"default", "wide", "narrow"}
               for p in entry["presets"])  # fmt: skip
    titles = [pic["title"] for pic in entry["side"]]
    assert all(pic["src"].startswith("data:image/png;base64,") for pic in entry["side"])
    if arm == "unaided":
        assert titles == ["Lesion crop"], titles  # no Grad-CAM: no model output
        assert entry["model"] is None and entry["model_note"] is None
    else:
        assert titles in (["Lesion crop"], ["Lesion crop", "Grad-CAM, model's top type"])
        assert entry["model"] == pytest.approx(PROBS)
    own = entry["answer"]  # the reader's own answer, echoed back to them: not a leak
    assert own is None or set(own) == {"label", "certainty"}
    words = [
        entry["display_id"],
        entry["roi_colour"],
        *titles,
        *(p["name"] for p in entry["presets"]),
    ]
    _assert_words(words + [entry["image_problem"] or ""], blinded)


@pytest.mark.parametrize("slices", ["model", "series"])
def test_every_prefetched_case_sends_only_pixels_and_its_own_fields_in_both_arms(env, slices):
    """Every message the desk sends while a reader reads both arms through, prefetch included:
    the case on screen and the unread ones after it, each with exactly the whitelisted fields."""
    conn = db.connect()
    try:
        study = db.create_study(
            conn, name=f"Blinded prefetch {slices}", case_ids=env["chosen"],
            arms=("unaided", "aided"), model_run_id=env["run_id"], slices=slices,
        )  # fmt: skip
        me, _ = db.add_reader(conn, study, "Prefetch Reader")
        image_counts = {c: len(db.images_frame(conn, c)) for c in env["chosen"]}
        work = db.worklist(conn, study, me, "unaided")
    finally:
        conn.close()
    for arm in ("unaided", "aided"):
        reply = desk.sync(study, me, arm, desk.SyncRequest(), ui=UI)
        entries = _assert_message_blind(reply.message, env, arm=arm)
        assert [e["position"] for e in entries] == [1, 2, 3]  # on screen and two prefetched
        for entry in entries if arm == "unaided" else []:  # every slice the model used
            case_id = work.loc[work["position"] == entry["position"], "case_id"].item()
            assert len(entry["slices"]) == image_counts[case_id]
        for position in (1, 2, 3):  # read through: each reply acknowledges and sends no more
            pending = {"attempt": f"{slices}-{arm}-attempt-{position}", "arm": arm, "position": position,
                       "display_id": entries[position - 1]["display_id"], "label": "AC"}  # fmt: skip
            reply = desk.sync(
                study,
                me,
                arm,
                desk.SyncRequest(at=min(position + 1, 3), pending=(pending,), have=frozenset()),
                ui=UI,
            )
            assert reply.acks == (pending["attempt"],), unpack(reply.message)[0]["refused"]
            for entry in _assert_message_blind(reply.message, env, arm=arm):
                assert entry["answer"] is None or entry["position"] <= position
    # ... and what the reading page really sent, read back from the app's own messages
    at = reading_page(env["study_id"], env["reader_id"])
    assert not at.exception, at.exception
    header = desk_header(at)
    assert header["status"] == "open" and header["cases"]
    _assert_message_blind(desk_message(at), env, arm=header["arm"])


def reading_page(study_id: int, reader_id: int) -> AppTest:
    """The reading page alone, for a reader signed in with a live session (as sign-in leaves it)."""
    conn = db.connect()
    try:
        token = db.create_session(conn, "reader", reader_id=reader_id, study_id=study_id)
    finally:
        conn.close()
    at = AppTest.from_file(str(ROOT / "pages" / "reading.py"), default_timeout=120)
    at.session_state["auth"] = Identity(
        role="reader", name="x", reader_id=reader_id, study_id=study_id
    )
    at.session_state["auth_token"] = token
    return at.run()


def _everything_sent(at: AppTest) -> str:
    """The protobuf text of every element the page sent (widget ids and options included)."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        stack.extend(getattr(node, "children", {}).values())
    return "\n".join(out)


def test_a_repeat_case_looks_like_any_case_and_sends_nothing_more(env):
    """A repeat read (issue 18) is served like a first showing: the same fields and look, its own
    display ID, no word of 'repeat', no case id, and the same viewer whitelist, in both arms."""
    import db.repeats

    conn = db.connect()
    try:
        study = db.create_study(
            conn, name="Blinded repeats", case_ids=env["chosen"], arms=("unaided", "aided"),
            model_run_id=env["run_id"],
        )  # fmt: skip
        db.repeats.set_repeat_cases(conn, study, 1)
        me, _ = db.add_reader(conn, study, "Repeat Reader")
        assert db.repeats.plan_study_repeats(conn, study) == 2  # one per arm
    finally:
        conn.close()
    answer = ("AC", {"SCC": 0, "AC": 1, "ASC": 0})
    for position in (1, 2, 3):
        reading.submit_answer(study, me, "unaided", position, *answer, now_iso())
    statuses = {a.arm: a for a in reader_arms(study, me)}
    assert not statuses["aided"].open, "the arm is not finished before its repeat is read"
    assert (statuses["unaided"].n_cases, statuses["unaided"].n_read) == (4, 3)
    assert reading.first_unread(study, me, "unaided") == 4
    first = reading.case_for_reader(study, me, "unaided", 1, with_gradcam=False)
    again = reading.case_for_reader(study, me, "unaided", 4, with_gradcam=False)
    assert type(again) is type(first) and not hasattr(again, "case_id")
    assert again.display_id not in env["display_ids"]
    assert re.fullmatch(r"C-[A-Z0-9]+", again.display_id)
    assert len(again.display_id) == len(first.display_id)
    assert (again.n_cases, again.n_read, again.answer_label) == (4, 3, None)
    assert again.model_probabilities is None and again.gradcam is None
    # what the reading page renders and sends for the repeat on screen
    at = reading_page(study, me)
    assert current_position(at) == 4
    _assert_blind(at, env)
    sent = _everything_sent(at)
    assert again.display_id.replace("-", "") in sent.replace("\\", "").replace("-", "")
    for secret in (*env["case_ids"], "repeat", "Repeat", "again"):
        assert secret not in sent, f"the page sends {secret!r}"
    (entry,) = [e for e in _assert_message_blind(desk_message(at), env, arm="unaided")
                if e["position"] == 4]  # fmt: skip
    assert entry["display_id"] == again.display_id

    # the aided arm's repeat looks like an aided ID, not like a case's own
    reading.submit_answer(study, me, "unaided", 4, *answer, now_iso())
    aided = reading.worklist_status(study, me, "aided")
    assert len(aided) == 4 and not set(aided["display_id"]) & set(env["display_ids"])
    assert all(re.fullmatch(r"A-[A-Z0-9]{8}", d) for d in aided["display_id"])
    step = reading.first_unread(study, me, "aided")
    for position in range(1, 5):
        shown = reading.case_for_reader(study, me, "aided", position, with_gradcam=False)
        assert shown.model_probabilities == pytest.approx(PROBS)
        served, sources = reading.case_sources(study, me, "aided", position)
        _assert_entry_blind(desk.case_entry(served, sources, blobs := []), blobs, env, arm="aided")
    assert step == 1
