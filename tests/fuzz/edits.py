"""The byte-level edit strategy every fuzz test of a file reader starts from."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def byte_edits(draw, seed: bytes, tokens: list[bytes], swap_lines: bool = False) -> bytes:
    """``seed`` with one to four random edits: a cut, an insertion (one of the format's
    ``tokens`` or random bytes), a repeated run, a replaced run, a truncation and, for line-based
    formats (``swap_lines``), two lines swapped."""
    data = bytearray(seed)
    kinds = ["cut", "insert", "repeat", "replace", "truncate"] + (["swap"] if swap_lines else [])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        length = draw(st.integers(0, 12))
        edit = draw(st.sampled_from(kinds))
        if edit == "cut":
            del data[at:at + length]
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from(tokens) | st.binary(max_size=12))
        elif edit == "repeat":
            data[at:at] = data[at:at + length] * draw(st.integers(2, 50))
        elif edit == "replace":
            data[at:at + length] = draw(st.binary(min_size=length, max_size=length))
        elif edit == "swap":
            lines = bytes(data).split(b"\n")
            first, second = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
            lines[first], lines[second] = lines[second], lines[first]
            data = bytearray(b"\n".join(lines))
        else:
            del data[at:]
    return bytes(data)
