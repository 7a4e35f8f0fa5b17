"""Phones: connect a phone or a landing site to this station (a link as a QR code and as text, shown once), see when
each last reached the station, how many entries it sent and whether it has the active model; revoke one."""

import streamlit as st

from fishcore.errors import FishcoreError
from fishcore.store.catchlog.devices import Devices
from fishcore.store.model_files import model_checksum
from fishcore.store.station import needs_https, phone_link, public_address, qr_png, set_public_address
from pages._catch import catch_log
from pages._i18n import error_text, num, tr, when
from pages._shared import workspace
from pages._state import state

st.title(tr("Phones"))
st.caption(
    tr(
        "Each phone or landing site gets its own link. Opened once on the phone with a network, the field app "
        "installs, takes the active model and then works offline; what it records comes back here at each sync, "
        "and a new active model goes to every phone at its next sync."
    )
)
ws = workspace()
devices = Devices(catch_log())

# --- the station's public address -------------------------------------------------------------------
address = None
try:
    address = public_address(ws)
except FishcoreError as exc:
    st.error(error_text(exc))
with st.expander(tr("This station's address for phones"), expanded=address is None, icon=":material/public:"):
    st.caption(
        tr(
            "The address phones open to reach this station's field server: on a network, the HTTPS address of the "
            "web server in front of it (ask whoever set up the station), e.g. https://fish.example.org. Given once."
        )
    )
    typed = st.text_input(tr("Address"), value=address or "", placeholder="https://fish.example.org", key="phones_address",
                          max_chars=300)  # fmt: skip
    if st.button(tr("Save the address"), key="phones_address_save"):
        try:
            address = set_public_address(typed, ws)
        except FishcoreError as exc:
            st.error(error_text(exc))
        else:
            state().phones_message = tr("Saved: phones will open {address}.", address=address)
            st.rerun()
if state().phones_message:
    st.success(state().phones_message, icon=":material/check_circle:")
    del state().phones_message
if address and needs_https(address):
    st.warning(
        tr(
            "This address starts with http://: a phone's camera and its offline app work only over HTTPS. Put the "
            "station behind an HTTPS web server and give that address."
        )
    )

# --- add a phone ---------------------------------------------------------------------------------------
st.subheader(tr("Add a phone or a landing site"))
new = state().phones_new
if new is not None:
    with st.container(border=True):
        st.markdown("**" + tr("Scan this with {name}'s camera", name=new["name"]) + "**")
        left, right = st.columns([1, 2])
        left.image(new["png"], width=260, caption=tr("The link as a QR code"))
        with right:
            st.caption(tr("Or open this link on the phone (it connects the phone; keep it to yourself):"))
            st.code(new["link"], language=None, wrap_lines=True)
            st.info(
                tr(
                    "Shown only now: the station keeps no copy of this code. If it is lost, revoke this phone and add "
                    "it again."
                ),
                icon=":material/visibility_off:",
            )
            if st.button(tr("Done: the phone is connected"), key="phones_done", type="primary"):
                del state().phones_new
                st.rerun()
else:
    with st.form("phones_add", clear_on_submit=True, border=False):
        name = st.text_input(tr("Name"), placeholder=tr("e.g. Budi's phone, or Muara Angke"), max_chars=100)
        added = st.form_submit_button(tr("Add"), type="primary", icon=":material/add:", disabled=address is None)
    if address is None:
        st.caption(tr("Give this station's address first (above): the phone's link starts with it."))
    if added:
        try:
            device, token = devices.add(name)
            link = phone_link(address, token)
        except FishcoreError as exc:
            st.error(error_text(exc))
        else:
            state().phones_new = {"name": device.name, "link": link, "png": qr_png(link)}
            st.rerun()

# --- the phones -------------------------------------------------------------------------------------
st.subheader(tr("Phones and landing sites"))
try:
    found = devices.list()
except FishcoreError as exc:
    st.error(error_text(exc))
    st.stop()
active = ws.active_model()
current = model_checksum(active) if active is not None else None
if not found:
    st.info(tr("No phones yet: add one above."))
for d in sorted(found, key=lambda d: (d.revoked_at is not None, d.name.casefold())):
    with st.container(border=True):
        left, right = st.columns([4, 1])
        seen = tr("last reached the station {when}", when=when(d.last_seen.isoformat())) if d.last_seen else tr(
            "has not reached the station yet"
        )
        if d.model_checksum is None:
            model = tr("has no model yet")
        elif d.model_checksum == current:
            model = tr("has the active model")
        else:
            model = tr("has an older model (takes the active one at its next sync)")
        left.markdown(f"**{d.name}**" + ("  · " + tr("revoked") if d.revoked_at else ""))
        left.caption(f"{seen} · " + tr("{n} entries sent", n=num(d.entries)) + f" · {model}")
        if d.revoked_at is None:
            with right.popover(tr("Revoke"), icon=":material/block:"):
                st.write(tr("Stop **{name}** from reaching this station? What it sent stays.", name=d.name))
                if st.button(tr("Yes, revoke it"), type="primary", key=f"revoke_{d.id}"):
                    try:
                        devices.revoke(d.id)
                    except FishcoreError as exc:
                        st.error(error_text(exc))
                    else:
                        st.rerun()
