"""Hypothesis strategies for kio's types that kio does not register itself.

kio registers strategies for its phantom integer/string types, but not for ``Records`` (the
opaque record-set bytes of Produce requests and Fetch responses), so ``st.from_type`` on those
messages would fail without this.
"""

from __future__ import annotations

from hypothesis import strategies as st
from kio.static.primitive import Records

st.register_type_strategy(Records, st.binary(max_size=64))
