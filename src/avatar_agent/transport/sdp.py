"""What an offer must hold before aiortc sees it. Pure: text in, a reason out.

aiortc accepts an offer without a DTLS fingerprint and only fails later, inside its
own tasks; and it checks every remote candidate an offer lists, so one offer could
make the server send STUN to hundreds of addresses of the sender's choosing. Both are
refused here, with a reason the client can read.
"""

from __future__ import annotations

MAX_MEDIA_SECTIONS = 4  # the page sends audio, video and a data channel


def offer_problem(sdp: str, max_candidates: int) -> str | None:
    """Why this SDP offer cannot be taken, or None if it can."""
    lines = [ln.strip() for ln in sdp.splitlines()]
    session: list[str] = []
    sections: list[list[str]] = []
    for ln in lines:
        if ln.startswith("m="):
            sections.append([ln])
        elif sections:
            sections[-1].append(ln)
        else:
            session.append(ln)
    if not sections:
        return None  # aiortc's own check says what is missing
    if len(sections) > MAX_MEDIA_SECTIONS:
        return f"the offer has {len(sections)} media sections (at most {MAX_MEDIA_SECTIONS})"

    def has(section: list[str], prefix: str) -> bool:
        return any(ln.startswith(prefix) for ln in section) or any(
            ln.startswith(prefix) for ln in session)

    for section in sections:
        if section[0].split()[1:2] == ["0"]:
            continue  # a rejected section (port 0) carries nothing
        if not has(section, "a=fingerprint:"):
            return "the offer has no DTLS fingerprint (a=fingerprint)"
        if not (has(section, "a=ice-ufrag:") and has(section, "a=ice-pwd:")):
            return "the offer has no ICE credentials (a=ice-ufrag, a=ice-pwd)"
    candidates = sum(ln.startswith("a=candidate:") for ln in lines)
    if candidates > max_candidates:
        return f"the offer lists {candidates} candidates (at most {max_candidates})"
    return None
