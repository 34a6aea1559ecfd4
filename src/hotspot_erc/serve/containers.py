"""Which uploads may reach ffmpeg: recordings in common containers, recognised by their first
bytes.

ffprobe and ffmpeg detect a format from the content, and some formats name other files or
addresses (HLS and DASH playlists, ffconcat lists, SDP): run on an upload, they would read what
the uploader names. So an upload must start like one of the containers below; anything else is
refused before ffmpeg sees it.
"""

from __future__ import annotations

# The longest prefix any check reads (MPEG-TS: three packets' sync bytes).
SNIFF_BYTES = 2 * 188 + 1


def container_of(head: bytes) -> str | None:
    """The container the bytes ``head`` (a file's first :data:`SNIFF_BYTES`) start, or None."""
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "wav" if head[8:12] == b"WAVE" else "avi"
    if head[4:8] == b"ftyp":
        return "mp4"  # also mov, m4a, 3gp: the ISO base media family
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # also webm
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame (mp3) or an ADTS header (aac): 11 sync bits.
        return "mpeg-audio"
    if len(head) >= SNIFF_BYTES and all(head[i] == 0x47 for i in (0, 188, 376)):
        return "mpeg-ts"
    return None


ACCEPTED = "wav, mp3, aac, flac, ogg/opus, mp4/m4a/mov, webm/mkv, avi or MPEG-TS"
