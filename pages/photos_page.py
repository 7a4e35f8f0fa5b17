"""My photos: bring photos into a dataset (zip, folder, photos, camera, server folder), check, manage, train."""

import pandas as pd
import streamlit as st

from fishcore.data.images import IMAGE_EXTENSIONS
from fishcore.data.thumbnails import thumbnail
from fishcore.errors import FishcoreError
from fishcore.store.model_files import read_card
from fishcore.store.my_photos import ImportPlan
from fishcore.training.health import check_dataset, keep
from pages._i18n import error_text, num, pct, tr
from pages._shared import dataset_area, readable_path, workspace
from pages._state import state

PHOTO_TYPES = sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS)
NEW_CLASS = "\0new"
PAGE_SIZE = 24
COLUMNS = 6
# Dataset health's kinds of flag (fishcore.training.health), in the app's words: what, and how it is found.
HEALTH_WORDS = {
    "mislabel": "Possibly in the wrong species",
    "near_copy": "Near-copy under two species",
    "outlier": "Unlike its species",
}
HEALTH_HOW = {
    "mislabel": "a model that never saw the photo names another species with at least 80 % (cross-validation)",
    "near_copy": "an almost identical photo (perceptual hash) is filed under another species",
    "outlier": "more than 1.5 times further from the other photos of its species than they usually are from each other",
}

area = dataset_area()
ws = workspace()
st.title(tr("My photos"))
st.caption(
    tr(
        "Your own datasets: one folder per dataset, one sub-folder per species, kept in `{folder}`. Bring photos in, "
        "check what will be added, then train on the Train page.",
        folder=area.root,
    )
)


def bar_progress(text: str):
    bar = st.progress(0.0, text=text)

    def update(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            bar.progress(done / max(total, 1), text=f"{text} {num(done)}/{num(total)}")

    return bar, update


def bump(key: str) -> None:
    """Give an uploader a fresh key, which empties it."""
    st.session_state[key] = st.session_state.get(key, 0) + 1


# --- which dataset ---------------------------------------------------------------------------
names = area.names()
with st.container(border=True):
    c1, c2 = st.columns([2, 3])
    if names:
        if state().photos_dataset not in names:
            state().photos_dataset = names[0]
        dataset = c1.selectbox(tr("Dataset"), names, key="photos_dataset")
    else:
        dataset = None
        c1.info(tr("No dataset yet: make one on the right."))
    new_name = c2.text_input(
        tr("New dataset"),
        placeholder=tr("e.g. {example}", example="kakap-kembung-tongkol"),
        key=f"new_{st.session_state.get('new_n', 0)}",
    )
    if c2.button(tr("Create"), icon=":material/create_new_folder:"):
        try:
            area.create(new_name)
        except FishcoreError as exc:
            c2.error(error_text(exc))
        else:
            state().photos_dataset = area.path(new_name).name
            bump("new_n")
            st.rerun()

    # Start from the bundled model's training photos, when they are on this machine.
    try:
        bundled_root = read_card(ws.bundled_model).data_root
    except FishcoreError:
        bundled_root = None
    if bundled_root is not None and bundled_root.is_dir():
        start_name = f"{bundled_root.name}-species"
        if start_name not in names and st.button(
            tr("Start a dataset from the bundled model's photos ({folder})", folder=bundled_root),
            icon=":material/library_add:",
            help=tr(
                "Copies the photos the bundled model was trained on into a new dataset, so you can add your species to them."
            ),
        ):
            bar, update = bar_progress(tr("Reading the photos..."))
            try:
                area.create(start_name)
                plan = area.plan_import(start_name, bundled_root, progress=update)
                bar.progress(0.0, text=tr("Copying..."))
                area.apply_import(plan, progress=update)
            except FishcoreError as exc:
                st.error(error_text(exc))
            else:
                state().photos_dataset = start_name
                state().photos_message = tr("Made '{name}': {summary}.", name=start_name, summary=plan.summary())
                st.rerun()

if dataset is None:
    st.stop()
if state().photos_message:
    st.success(state().photos_message, icon=":material/check_circle:")
    del state().photos_message

counts = area.classes(dataset)
c1, c2, c3 = st.columns([1, 1, 2])
c1.metric(tr("Species"), num(len(counts)))
c2.metric(tr("Photos"), num(sum(counts.values())))
if c3.button(tr("Train on this dataset"), icon=":material/model_training:", disabled=len(counts) < 2):
    state().dataset_path = str(area.path(dataset))
    st.switch_page("pages/train_page.py")
if counts:
    st.dataframe(
        pd.DataFrame({tr("species"): list(counts), tr("photos"): list(counts.values())}),
        hide_index=True,
        column_config={
            tr("photos"): st.column_config.ProgressColumn(tr("photos"), format="%d", min_value=0, max_value=max(counts.values()))
        },
    )
for warning in area.warnings(dataset):
    st.warning(warning, icon=":material/warning:")


# --- bring photos in ---------------------------------------------------------------------------
def class_choice(key: str) -> str | None:
    """The species new photos go into: an existing one, or a new name typed here."""
    options = [NEW_CLASS, *counts]  # a new species first: the common reason to add photos
    c1, c2 = st.columns(2)
    choice = c1.selectbox(
        tr("Species"), options, key=f"{key}_class", format_func=lambda c: tr("A new species...") if c == NEW_CLASS else c
    )
    if choice == NEW_CLASS:
        name = tr("Name of the new species")
        return c2.text_input(name, key=f"{key}_new_class", placeholder=tr("e.g. {example}", example="kakap")) or None
    return choice


def check(source, class_name: str | None, label: str) -> None:
    bar, update = bar_progress(tr("Checking {what}...", what=label))
    try:
        state().photos_plan = (dataset, area.plan_import(dataset, source, class_name, progress=update))
    except FishcoreError as exc:
        st.error(error_text(exc))
    finally:
        bar.empty()


st.subheader(tr("Add photos"))
# Tracked tabs: the chosen one stays chosen across the reruns each added photo causes, and the camera
# only opens while its tab is shown.
zip_tab, folder_tab, photos_tab, camera_tab, server_tab = st.tabs(
    [tr("Zip file"), tr("Folder"), tr("Photos of one species"), tr("Camera"), tr("Folder on the server")],
    key="photos_source",
    on_change="rerun",
)
with zip_tab:
    st.caption(tr("A .zip whose folders are species (a zip of a dataset folder works too)."))
    upload = st.file_uploader(tr("Zip file"), type=["zip"], key=f"zip_{st.session_state.get('zip_n', 0)}")
    if upload is not None and st.button(tr("Check the zip"), key="check_zip", type="primary"):
        check(upload.getvalue(), None, upload.name)
with folder_tab:
    st.caption(tr("A folder from your computer with one sub-folder per species."))
    files = st.file_uploader(
        tr("Folder"), type=PHOTO_TYPES, accept_multiple_files="directory", key=f"dir_{st.session_state.get('dir_n', 0)}"
    )
    if files and st.button(tr("Check the folder"), key="check_dir", type="primary"):
        check([(f.name, f.getvalue()) for f in files], None, tr("{n} files", n=num(len(files))))
with photos_tab:
    target = class_choice("photos")
    files = st.file_uploader(
        tr("Photos"), type=PHOTO_TYPES, accept_multiple_files=True, key=f"photos_{st.session_state.get('photos_n', 0)}"
    )
    if files and st.button(tr("Check the photos"), key="check_photos", type="primary", disabled=not target):
        check([(f.name, f.getvalue()) for f in files], target, tr("{n} photos", n=num(len(files))))
    if files and not target:
        st.info(tr("Choose the species these photos show."))
with camera_tab:
    st.caption(
        tr("Point the camera at one fish, take a photo, turn the fish or move, take another. Each photo is added at once.")
    )
    target = class_choice("camera")
    shot = (
        st.camera_input(tr("Camera"), key=f"camera_{st.session_state.get('camera_n', 0)}", disabled=not target)
        if camera_tab.open is not False
        else None
    )
    if shot is not None and target and state().camera_last != shot.file_id:
        state().camera_last = shot.file_id
        n = state().camera_count + 1
        state().camera_count = n
        try:
            plan, written = area.import_photos(dataset, [(f"camera-{shot.file_id[:8]}-{n:03d}.jpg", shot.getvalue())], target)
        except FishcoreError as exc:
            st.error(error_text(exc))
        else:
            if written:
                state().photos_message = tr(
                    "Added a photo to {species} ({n} now).", species=target, n=num(area.classes(dataset).get(target, 0))
                )
            else:
                why = (plan.skipped or plan.duplicates or [("", tr("not added"))])[0][1]
                state().photos_message = tr("That photo was not added: {why}", why=why)
            bump("camera_n")
            st.rerun()
    if target:
        st.caption(tr("{species}: {n} photos", species=target, n=num(counts.get(target, 0))))
with server_tab:
    st.caption(tr("A folder on the machine this app runs on, with one sub-folder per species."))
    path = st.text_input(tr("Folder path"), key="server_path")
    if path and st.button(tr("Check the folder"), key="check_server", type="primary"):
        check(readable_path(path), None, path)

# --- preview, then write ---------------------------------------------------------------------
pending = state().photos_plan
if pending and pending[0] == dataset:
    plan: ImportPlan = pending[1]
    with st.container(border=True):
        st.markdown("**" + tr("Before anything is written") + "**")
        c = st.columns(4)
        c[0].metric(tr("Photos to add"), num(len(plan.add)))
        c[1].metric(tr("New species"), num(len(plan.new_classes)))
        c[2].metric(tr("Already there"), num(len(plan.duplicates)))
        c[3].metric(tr("Skipped"), num(len(plan.skipped)))
        if plan.counts:
            rows = [{tr("species"): k, tr("photos to add"): v, tr("new"): k in plan.new_classes} for k, v in plan.counts.items()]
            st.dataframe(pd.DataFrame(rows), hide_index=True)
        lists = [
            (plan.skipped, tr("{n} file(s) skipped, and why", n=len(plan.skipped)), tr("why")),
            (plan.duplicates, tr("{n} photo(s) already in the dataset (not added again)", n=len(plan.duplicates)), tr("same as")),
            (
                plan.near_duplicates,
                tr("{n} photo(s) nearly the same as one already there (added)", n=len(plan.near_duplicates)),
                tr("looks like"),
            ),
        ]
        for pairs, title, second in lists:
            if pairs:
                with st.expander(title):
                    st.dataframe(pd.DataFrame(pairs, columns=[tr("file"), second]), hide_index=True, width="stretch")
        b1, b2 = st.columns(2)
        if b1.button(
            tr("Add {n} photos", n=num(len(plan.add))),
            type="primary",
            disabled=not plan.add,
            icon=":material/add_photo_alternate:",
        ):
            bar, update = bar_progress(tr("Adding photos..."))
            try:
                written = area.apply_import(plan, progress=update)
            except (FishcoreError, OSError) as exc:
                st.error(tr("Stopped: {error}", error=exc))
            else:
                del state().photos_plan
                for key in ("zip_n", "dir_n", "photos_n"):
                    bump(key)
                state().photos_message = tr("Added {n} photos to '{dataset}'.", n=num(len(written)), dataset=dataset)
                st.rerun()
        if b2.button(tr("Cancel"), key="cancel_plan"):
            del state().photos_plan
            st.rerun()

# --- manage ------------------------------------------------------------------------------------
st.subheader(tr("Manage"))
if counts:
    rename_tab, merge_tab, delete_tab, browse_tab = st.tabs(
        [tr("Rename"), tr("Merge"), tr("Delete a species"), tr("Photos")], key="photos_manage", on_change="rerun"
    )
    with rename_tab, st.form("rename"):
        old = st.selectbox(tr("Species"), list(counts), key="rename_from")
        new = st.text_input(tr("New name"), key="rename_to")
        if st.form_submit_button(tr("Rename")):
            try:
                area.rename_class(dataset, old, new)
                st.rerun()
            except FishcoreError as exc:
                st.error(error_text(exc))
    with merge_tab, st.form("merge"):
        sources = st.multiselect(tr("Species to merge"), list(counts))
        into = st.text_input(tr("Into (an existing or a new name)"))
        if st.form_submit_button(tr("Merge")):
            try:
                moved = area.merge_classes(dataset, sources, into)
                state().photos_message = tr("Moved {n} photos into {species}.", n=num(moved), species=into)
                st.rerun()
            except FishcoreError as exc:
                st.error(error_text(exc))
    with delete_tab:
        victim = st.selectbox(tr("Species"), list(counts), key="delete_class")
        with st.popover(tr("Delete {species}", species=victim)):
            st.write(
                tr(
                    "Move all {n} photos of **{species}** to the trash? You can restore them below.",
                    n=num(counts.get(victim, 0)),
                    species=victim,
                )
            )
            if st.button(tr("Yes, move to trash"), type="primary", key="confirm_delete_class"):
                area.delete_class(dataset, victim)
                st.rerun()
    with browse_tab:
        label = st.selectbox(tr("Species"), list(counts), key="browse_class")
        folder = area.path(dataset) / label
        photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        pages = max(1, -(-len(photos) // PAGE_SIZE))
        page = st.number_input(tr("Page (of {pages})", pages=pages), 1, pages, 1, key=f"browse_page_{label}")
        chunk = photos[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        chosen = []
        for row in range(0, len(chunk), COLUMNS):
            for col, photo in zip(st.columns(COLUMNS), chunk[row : row + COLUMNS], strict=False):
                try:
                    col.image(str(thumbnail(photo, 160, ws.thumbnails)), width="stretch")
                except (FishcoreError, OSError) as exc:
                    col.warning(f"{photo.name}: {exc}")
                if col.checkbox(photo.name[:18], key=f"pick_{label}_{photo.name}"):
                    chosen.append(f"{label}/{photo.name}")
        if st.button(tr("Move {n} selected to the trash", n=len(chosen)), disabled=not chosen):
            area.delete_photos(dataset, chosen)
            st.rerun()

# --- dataset health ----------------------------------------------------------------------------
st.subheader(tr("Dataset health"))
st.caption(" · ".join(tr(HEALTH_WORDS[kind]) + ": " + tr(HEALTH_HOW[kind]) for kind in HEALTH_WORDS))
health_key = f"health_{dataset}"
if len(counts) >= 2 and st.button(tr("Check this dataset"), key="health_check", icon=":material/health_and_safety:"):
    bar, update = bar_progress(tr("Looking at every photo..."))
    try:
        st.session_state[health_key] = check_dataset(area.path(dataset), ws.cache, update)
    except FishcoreError as exc:
        st.error(error_text(exc))
    finally:
        bar.empty()
flags = st.session_state.get(health_key)
if flags is not None:
    root = area.path(dataset)
    flags = [f for f in flags if (root / f.path).is_file()]  # moved or deleted since the check
    if not flags:
        st.success(tr("Nothing to look at: no photo was flagged."))
    for n, f in enumerate(flags[:30]):
        with st.container(border=True):
            left, right = st.columns([1, 3])
            left.image(str(thumbnail(root / f.path, 160, ws.thumbnails)), width="stretch")
            right.markdown(f"**{tr(HEALTH_WORDS[f.kind])}** · `{f.path}`")
            if f.kind == "mislabel":
                right.caption(tr("Filed as {label}; looks like {other} ({p}).", label=f.label, other=f.suggested, p=pct(f.score)))
            elif f.kind == "near_copy":
                right.caption(
                    tr(
                        "Filed as {label}; almost the same photo is filed as {other}: {path}.",
                        label=f.label,
                        other=f.suggested,
                        path=f.other,
                    )
                )
            else:
                right.caption(
                    tr("{x} times further from the other photos of {label} than usual.", x=num(f.score, 1), label=f.label)
                )
            b1, b2, b3 = right.columns(3)
            target = b1.selectbox(
                tr("Move to"),
                [c for c in counts if c != f.label],
                key=f"health_to_{n}",
                index=None,
                placeholder=f.suggested or tr("Move to..."),
            )
            if target and b1.button(tr("Move to {species}", species=target), key=f"health_move_{n}"):
                area.move_photos(dataset, [f.path], target)
                st.rerun()
            if b2.button(tr("Delete (to the trash)"), key=f"health_delete_{n}"):
                area.delete_photos(dataset, [f.path])
                st.rerun()
            if b3.button(tr("Keep, stop flagging"), key=f"health_keep_{n}"):
                keep(root, [f.path])
                st.session_state[health_key] = [x for x in st.session_state[health_key] if x.path != f.path]
                st.rerun()

trash = area.trash(dataset)
if trash:
    with st.expander(tr("Trash ({n} deletion(s))", n=len(trash))):
        for batch, held in trash:
            c1, c2 = st.columns([4, 1])
            c1.write(f"{batch}: {', '.join(held[:6])}{' ...' if len(held) > 6 else ''}")
            if c2.button(tr("Restore"), key=f"restore_{batch}"):
                n = area.restore(dataset, batch)
                state().photos_message = tr("Restored {n} photos.", n=num(n))
                st.rerun()
        with st.popover(tr("Empty the trash")):
            st.write(tr("Delete the photos in the trash for good?"))
            if st.button(tr("Yes, empty it"), type="primary"):
                area.empty_trash(dataset)
                st.rerun()
